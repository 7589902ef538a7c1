"""Spreadsheet and JSON import/export with the Chinese template columns of API.md.

Rows are numbered as the editor sees them: in a spreadsheet the header is row 1, so the first
question is row 2; in a JSON file the first object is row 1.

Every upload's work is bounded before and while it is parsed (an upload is parsed in the
event loop): the file's bytes, the questions in it, the columns and cell lengths read, and
for an .xlsx (a zip) its entries, their uncompressed size and compression ratio, checked
from the zip's directory before openpyxl opens it. A zip reader never returns more than an
entry's declared size, so a directory that lies is a broken file, not a bomb."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openpyxl
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import ValidationError

from question_bank.models import QuestionContent
from server.county.vocab import AUDIENCE_LABELS, DIMENSION_LABELS, OPTION_KEYS, TOPICS, TYPE_LABELS
from server.kernel.errors import ApiError, PayloadTooLarge, ValidationFailed
from server.kernel.http import chinese_message, describe_bytes

MAX_ROWS = 20_000  # questions in one file
MAX_BYTES = 10 * 1024 * 1024  # the uploaded file
MAX_COLUMNS = 50  # columns read from a sheet (the template has 18)
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell
# An .xlsx of 20,000 ordinary questions unpacks to about 20 MB (sheet XML compresses ~18x).
XLSX_MAX_UNCOMPRESSED = 50 * 1024 * 1024
XLSX_MAX_ENTRIES = 1_000  # parts in the zip (a workbook has a dozen or so)
XLSX_MAX_RATIO = 100  # an entry's uncompressed / compressed size, for entries over 1 MiB
_RATIO_FROM = 1024 * 1024
XLSX_LAST_ROW = 1_048_576  # Excel's last row (openpyxl pads every missing row up to a row read)

OPTION_COLUMNS = [f"选项{key}" for key in OPTION_KEYS]
COLUMNS = [
    "题型",
    "题干",
    *OPTION_COLUMNS,
    "答案",
    "解析",
    "维度",
    "主题",
    "适用人群",
    "难度",
    "来源",
    "标签",
    "音频链接",
]
REQUIRED_COLUMNS = ("题型", "题干", "答案", "维度", "主题", "适用人群")

_TYPE_BY_LABEL = {label: code for code, label in TYPE_LABELS.items()} | {c: c for c in TYPE_LABELS}
_DIMENSION_BY_LABEL = {label: code for code, label in DIMENSION_LABELS.items()} | {
    c: c for c in DIMENSION_LABELS
}
_AUDIENCE_BY_LABEL = {label: code for code, label in AUDIENCE_LABELS.items()} | {
    c: c for c in AUDIENCE_LABELS
}
_TRUE_WORDS = {"对", "正确", "√", "是", "T", "TRUE", "A"}
_FALSE_WORDS = {"错", "错误", "×", "否", "F", "FALSE", "B"}
_FIELD_COLUMNS = {
    "type": "题型",
    "stem": "题干",
    "options": "选项",
    "answer": "答案",
    "explanation": "解析",
    "dimension": "维度",
    "topic": "主题",
    "audiences": "适用人群",
    "difficulty": "难度",
    "source": "来源",
    "tags": "标签",
    "audio_url": "音频链接",
}
_FORMULA_START = ("=", "+", "-", "@")


class RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class ParsedFile:
    rows: list[tuple[int, QuestionContent]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------ reading


def parse_upload(filename: str, data: bytes) -> ParsedFile:
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"文件超过 {describe_bytes(MAX_BYTES)}，请拆分后分批导入")
    extension = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if extension == "json":
        return _validate_all(_json_records(data))
    if extension == "xlsx":
        return _validate_all(_table_records(_xlsx_rows(data)))
    if extension == "csv":
        return _validate_all(_table_records(_csv_rows(data)))
    raise ValidationFailed(
        "只支持 .xlsx、.csv 或 .json 文件", details=[{"field": "file", "message": "文件类型不支持"}]
    )


def sheet_rows(filename: str, data: bytes) -> Iterator[list[Any]]:
    """The rows of an uploaded .xlsx or .csv, with the same guards as the question import
    (zip bombs, Excel's row bound, encodings): for other domains' spreadsheet uploads."""
    extension = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if extension == "xlsx":
        return _xlsx_rows(data)
    if extension == "csv":
        return _csv_rows(data)
    raise ValidationFailed(
        "只支持 .xlsx 或 .csv 文件", details=[{"field": "file", "message": "文件类型不支持"}]
    )


def _too_many_rows() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"文件超过 {MAX_ROWS} 行（道题），请拆分后分批导入",
        details=[{"field": "file", "message": f"最多 {MAX_ROWS} 道题"}],
    )


def _validate_all(records: Iterator[tuple[int, dict[str, Any] | RowError]]) -> ParsedFile:
    parsed = ParsedFile()
    for row_number, record in records:
        if isinstance(record, RowError):
            parsed.errors.append(
                {"row": row_number, "field": record.column, "message": record.message}
            )
            continue
        try:
            parsed.rows.append((row_number, QuestionContent.model_validate(record)))
        except ValidationError as error:
            parsed.errors.extend(_row_errors(row_number, error))
    return parsed


def _row_errors(row_number: int, error: ValidationError) -> list[dict[str, Any]]:
    errors = []
    for item in error.errors(include_url=False, include_input=False):
        loc = item["loc"]
        message = chinese_message(item)
        column = _FIELD_COLUMNS.get(str(loc[0]), "") if loc else _column_from_message(message)
        errors.append({"row": row_number, "field": column, "message": message})
    return errors


def _column_from_message(message: str) -> str:
    for word in ("答案", "选项", "题干", "判断题", "多选题"):
        if word in message:
            return {"判断题": "选项", "多选题": "答案"}.get(word, word)
    return ""


def _json_records(data: bytes) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    try:
        payload = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # too deeply nested
        raise ValidationFailed(
            "JSON 文件格式不正确", details=[{"field": "file", "message": "无法解析 JSON"}]
        ) from None
    if isinstance(payload, dict):
        payload = payload.get("questions")
    if not isinstance(payload, list):
        raise ValidationFailed(
            "JSON 文件应为题目数组", details=[{"field": "file", "message": "应为数组"}]
        )
    if len(payload) > MAX_ROWS:
        raise _too_many_rows()
    for index, item in enumerate(payload, start=1):
        yield index, item if isinstance(item, dict) else RowError("", "每一项应为一个题目对象")


def _unreadable_xlsx() -> ValidationFailed:
    return ValidationFailed(
        "无法读取 Excel 文件，请确认是 .xlsx 格式",
        details=[{"field": "file", "message": "文件损坏或格式不对"}],
    )


def check_xlsx_archive(data: bytes) -> None:
    """Refuse a zip bomb from the zip's directory alone, before anything is decompressed."""
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise _unreadable_xlsx() from None
    if len(entries) > XLSX_MAX_ENTRIES:
        raise PayloadTooLarge(
            f"Excel 文件包含的部件过多（超过 {XLSX_MAX_ENTRIES} 个），"
            "请删去多余的工作表和图片，或另存为新的 .xlsx 后再导入",
            details=[{"field": "file", "message": f"最多 {XLSX_MAX_ENTRIES} 个部件"}],
        )
    if sum(entry.file_size for entry in entries) > XLSX_MAX_UNCOMPRESSED:
        raise PayloadTooLarge(
            f"Excel 文件解压后超过 {describe_bytes(XLSX_MAX_UNCOMPRESSED)}，"
            "请删去图片和多余的工作表，或拆分后分批导入",
            details=[{"field": "file", "message": "解压后过大"}],
        )
    for entry in entries:
        if entry.file_size > _RATIO_FROM and entry.file_size > XLSX_MAX_RATIO * max(
            entry.compress_size, 1
        ):
            raise PayloadTooLarge(
                f"Excel 文件中的「{entry.filename[:80]}」压缩比异常（超过 {XLSX_MAX_RATIO} 倍），"
                "不像正常的表格；请用 Excel 打开后另存为新的 .xlsx 再导入",
                details=[{"field": "file", "message": "压缩比异常"}],
            )


def _xlsx_rows(data: bytes) -> Iterator[list[Any]]:
    check_xlsx_archive(data)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise _unreadable_xlsx() from None
    try:
        # Bounded: openpyxl pads missing rows and cells up to these (a tiny sheet declaring
        # cell XFD1048576 would otherwise be 17 billion empty cells).
        rows = workbook.worksheets[0].iter_rows(
            max_row=XLSX_LAST_ROW + 1, max_col=MAX_COLUMNS + 1, values_only=True
        )
        for number, row in enumerate(rows, start=1):
            if number > XLSX_LAST_ROW:  # only a forged file numbers a row past Excel's last
                raise ValidationFailed(
                    f"工作表的行号超过 Excel 的上限 {XLSX_LAST_ROW}，文件已损坏；"
                    "请用 Excel 打开后另存为新的 .xlsx 再导入",
                    details=[{"field": "file", "message": "行号超出范围"}],
                )
            yield list(row)
    except ApiError:
        raise
    except Exception:
        # Damage past the sheet's start (a truncated or corrupt part, a CRC mismatch) only
        # shows while reading rows.
        raise _unreadable_xlsx() from None
    finally:
        workbook.close()


def _csv_rows(data: bytes) -> Iterator[list[Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")  # what Excel on Chinese Windows writes
        except UnicodeDecodeError:
            raise ValidationFailed(
                "CSV 文件编码无法识别，请另存为 UTF-8 或 GB18030",
                details=[{"field": "file", "message": "编码无法识别"}],
            ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            yield [_unescape_formula(cell) for cell in row[: MAX_COLUMNS + 1]]
    except csv.Error:  # a cell over the csv module's 131,072 characters, a stray quote, ...
        raise ValidationFailed(
            f"CSV 文件第 {reader.line_num} 行格式有误或单元格过长（每格最多 {MAX_CELL_CHARS} 个字符）",
            details=[{"row": reader.line_num, "field": "file", "message": "格式有误"}],
        ) from None


def _unescape_formula(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def _table_records(rows: Iterator[list[Any]]) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    header = next(rows, None)
    if header is None:
        raise ValidationFailed(
            "文件是空的，请使用导入模板", details=[{"field": "file", "message": "没有表头"}]
        )
    names = [_cell(value) for value in header]
    if len(names) > MAX_COLUMNS and any(names[MAX_COLUMNS:]):
        raise ValidationFailed(
            f"表头超过 {MAX_COLUMNS} 列，请删去多余的列（导入模板共 {len(COLUMNS)} 列）",
            details=[{"field": "file", "message": f"最多 {MAX_COLUMNS} 列"}],
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise ValidationFailed(
            f"缺少列：{'、'.join(missing)}（请使用导入模板，第一行为中文表头）",
            details=[{"field": column, "message": "缺少该列"} for column in missing],
        )
    positions = {name: index for index, name in enumerate(names) if name}
    for row_number, row in enumerate(rows, start=2):
        if row.count(None) + row.count("") == len(row):  # fast for rows openpyxl pads
            continue
        values = {name: _cell(row[i]) if i < len(row) else "" for name, i in positions.items()}
        if not any(values.values()):
            continue  # blank lines between blocks are common in hand-edited sheets
        if row_number - 1 > MAX_ROWS:
            raise _too_many_rows()
        try:
            yield row_number, _record_from_columns(_within_cell_limit(values))
        except RowError as error:
            yield row_number, error


def _within_cell_limit(values: dict[str, str]) -> dict[str, str]:
    for column, text in values.items():
        if len(text) > MAX_CELL_CHARS:
            raise RowError(column, f"单元格超过 {MAX_CELL_CHARS} 个字符，请删减")
    return values


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _split_list(text: str) -> list[str]:
    for separator in "，、;；|/ ":
        text = text.replace(separator, ",")
    return [part for part in (p.strip() for p in text.split(",")) if part]


def _record_from_columns(values: dict[str, str]) -> dict[str, Any]:
    type_code = _TYPE_BY_LABEL.get(values.get("题型", ""))
    if type_code is None:
        raise RowError("题型", f"题型「{values.get('题型', '')}」无效，应为 单选、多选 或 判断")
    record: dict[str, Any] = {
        "type": type_code,
        "stem": values.get("题干", ""),
        "explanation": values.get("解析", ""),
        "topic": values.get("主题", ""),
        "source": values.get("来源", ""),
        "tags": _split_list(values.get("标签", "")),
    }
    record["options"], record["answer"] = _options_and_answer(type_code, values)
    record["dimension"] = _lookup(
        _DIMENSION_BY_LABEL, values.get("维度", ""), "维度", "、".join(DIMENSION_LABELS.values())
    )
    record["audiences"] = [
        _lookup(_AUDIENCE_BY_LABEL, name, "适用人群", "、".join(AUDIENCE_LABELS.values()))
        for name in _split_list(values.get("适用人群", ""))
    ]
    record["difficulty"] = _difficulty(values.get("难度", ""))
    if values.get("音频链接"):
        record["audio_url"] = values["音频链接"]
    return record


def _lookup(table: dict[str, str], value: str, column: str, allowed: str) -> str:
    if value not in table:
        raise RowError(column, f"{column}「{value}」无效，可选：{allowed}")
    return table[value]


def _difficulty(text: str) -> int:
    if not text:
        return 3
    if not text.isdigit() or not 1 <= int(text) <= 5:
        raise RowError("难度", f"难度「{text}」无效，应为 1 到 5 的整数")
    return int(text)


def _options_and_answer(
    type_code: str, values: dict[str, str]
) -> tuple[list[dict[str, str]], list[str]]:
    answer_text = values.get("答案", "").replace(" ", "").upper()
    if type_code == "true_false":
        options = [{"key": "A", "text": "对"}, {"key": "B", "text": "错"}]
        if answer_text in _TRUE_WORDS:
            return options, ["A"]
        if answer_text in _FALSE_WORDS:
            return options, ["B"]
        raise RowError("答案", f"判断题答案「{values.get('答案', '')}」无效，应为 对 或 错")
    options = [
        {"key": key, "text": values.get(column, "")}
        for key, column in zip(OPTION_KEYS, OPTION_COLUMNS, strict=True)
        if values.get(column, "")
    ]
    letters = [c for c in answer_text if c not in ",，、"]
    if not letters or any(c not in OPTION_KEYS for c in letters):
        raise RowError("答案", f"答案「{values.get('答案', '')}」无效，应为选项字母，如 B 或 ACD")
    return options, letters


# ------------------------------------------------------------------ writing


def to_columns(content: dict[str, Any]) -> list[str | int]:
    options = {option["key"]: option["text"] for option in content["options"]}
    if content["type"] == "true_false":
        answer = "对" if content["answer"] == ["A"] else "错"
        option_cells = [""] * len(OPTION_KEYS)
    else:
        answer = "".join(content["answer"])
        option_cells = [options.get(key, "") for key in OPTION_KEYS]
    return [
        TYPE_LABELS[content["type"]],
        content["stem"],
        *option_cells,
        answer,
        content.get("explanation", ""),
        DIMENSION_LABELS[content["dimension"]],
        content["topic"],
        ",".join(AUDIENCE_LABELS[a] for a in content["audiences"]),
        content.get("difficulty", 3),
        content.get("source", ""),
        ",".join(content.get("tags", [])),
        content.get("audio_url") or "",
    ]


def export_xlsx(contents: list[dict[str, Any]]) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("题目")
    sheet.append(COLUMNS)
    for content in contents:
        sheet.append([_text_cell(sheet, value) for value in to_columns(content)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet: Any, value: str | int) -> Any:
    """Write strings as strings: openpyxl would turn a text starting with '=' into a formula."""
    if isinstance(value, str) and value.startswith("="):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def export_csv(contents: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for content in contents:
        # Guard against formula injection when the file is opened in Excel; import undoes it.
        writer.writerow(
            [
                f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA_START) else v
                for v in to_columns(content)
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel then reads it as UTF-8


def export_json(contents: list[dict[str, Any]]) -> bytes:
    return json.dumps(contents, ensure_ascii=False, indent=2).encode("utf-8")


def template_xlsx() -> bytes:
    """An empty import template with drop-downs for the coded columns and a sheet of notes."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "题目"
    sheet.append(COLUMNS)
    for column, choices in (
        ("A", list(TYPE_LABELS.values())),
        (_letter("维度"), list(DIMENSION_LABELS.values())),
        (_letter("主题"), list(TOPICS)),
        (_letter("难度"), ["1", "2", "3", "4", "5"]),
    ):
        validation = DataValidation(
            type="list", formula1='"' + ",".join(choices) + '"', allow_blank=True
        )
        validation.add(f"{column}2:{column}{MAX_ROWS + 1}")
        sheet.add_data_validation(validation)
    notes = workbook.create_sheet("填写说明")
    for line in (
        ["列", "说明"],
        ["题型", "单选 / 多选 / 判断"],
        ["选项A…选项F", "至少两个选项，从 A 开始依次填写；判断题不填选项"],
        ["答案", "填选项字母，如 B 或 ACD；判断题填 对 或 错"],
        ["维度", "、".join(DIMENSION_LABELS.values())],
        ["主题", "、".join(TOPICS)],
        ["适用人群", "用逗号分隔：" + ",".join(AUDIENCE_LABELS.values())],
        ["难度", "1（最易）到 5（最难）"],
        ["标签、音频链接", "可不填"],
    ):
        notes.append(line)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _letter(column: str) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(COLUMNS.index(column) + 1)
