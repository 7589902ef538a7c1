"""Reading a helper's spreadsheet of filled paper forms: pure functions, no I/O.

One row per filled form: 表单编号 (the code printed on the form), 居民编号 (the resident's
card), then one column per question numbered as on the form (1, 2, … or 第1题 …) holding
the ticked options' letters; 作答日期 (the day it was filled in) is optional. Letters may be
typed in either case and separated or not (A、C / a,c / AC); 对/√ and 错/× stand for A and B
of a true/false question. An empty cell is an unanswered question.

Every problem is reported by row and column in Chinese, as the question import does; a row
with a problem is left out whole, the others go in."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from server.kernel.errors import PayloadTooLarge, ValidationFailed

FORM_COLUMN = "表单编号"
RESIDENT_COLUMN = "居民编号"
DATE_COLUMN = "作答日期"
MAX_ROWS = 2_000
MAX_QUESTIONS = 60
_QUESTION_HEADER = re.compile(r"^(?:第\s*)?(\d{1,2})(?:\s*题)?$")
_SEPARATORS = re.compile(r"[\s,，、;；/|]+")
_TRUE_FALSE = {"对": "A", "√": "A", "✓": "A", "错": "B", "×": "B", "✗": "B"}


@dataclass(frozen=True)
class SheetRow:
    row: int
    form_code: str
    resident_code: str
    answers: dict[int, tuple[str, ...]]  # question number on the form -> shown letters
    answered_on: date | None


@dataclass
class Sheet:
    rows: list[SheetRow] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def problem(self, row: int, column: str, message: str) -> None:
        self.errors.append({"row": row, "field": column, "message": message})


def read_sheet(rows: Iterable[list[Any]]) -> Sheet:
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None:
        raise ValidationFailed(
            "文件是空的：第一行应为表头（表单编号、居民编号、1、2、3……）",
            details=[{"field": "file", "message": "没有表头"}],
        )
    names = [_text(cell) for cell in header]
    missing = [c for c in (FORM_COLUMN, RESIDENT_COLUMN) if c not in names]
    if missing:
        raise ValidationFailed(
            f"缺少列：{'、'.join(missing)}（第一行为表头：表单编号、居民编号、1、2、3……）",
            details=[{"field": c, "message": "缺少该列"} for c in missing],
        )
    questions = _question_columns(names)
    if not questions:
        raise ValidationFailed(
            "没有题号列：表头应有 1、2、3……（或 第1题、第2题……），每列填该题勾选的选项字母",
            details=[{"field": "file", "message": "没有题号列"}],
        )
    positions = {name: i for i, name in enumerate(names) if name}
    sheet = Sheet()
    for number, values in enumerate(iterator, start=2):
        cells = [_text(v) for v in values]
        if not any(cells):
            continue
        if len(sheet.rows) + len({e["row"] for e in sheet.errors}) >= MAX_ROWS:
            raise PayloadTooLarge(
                f"一次最多上传 {MAX_ROWS} 行答卷，请拆分后分批上传",
                details=[{"field": "file", "message": f"最多 {MAX_ROWS} 行"}],
            )
        _read_row(sheet, number, cells, positions, questions)
    return sheet


def normalise_form_code(text: str) -> str:
    """A form code as typed (any case, full-width or missing dashes, without "PF") in its
    printed form "PF-XXXX-XXXX"."""
    raw = "".join(ch for ch in unicodedata.normalize("NFKC", text).upper() if ch.isalnum())
    raw = raw.removeprefix("PF")
    return f"PF-{raw[:4]}-{raw[4:]}" if len(raw) == 8 else text.strip().upper()


def _question_columns(names: list[str]) -> dict[int, int]:
    """Question number -> column index, for headers like 1 or 第1题."""
    found: dict[int, int] = {}
    for index, name in enumerate(names):
        match = _QUESTION_HEADER.match(name)
        if match and 1 <= int(match.group(1)) <= MAX_QUESTIONS:
            number = int(match.group(1))
            if number in found:
                raise ValidationFailed(
                    f"表头中第 {number} 题出现了两次，请删去重复的列",
                    details=[{"field": name, "message": "重复的题号列"}],
                )
            found[number] = index
    return found


def _read_row(
    sheet: Sheet,
    number: int,
    cells: list[str],
    positions: dict[str, int],
    questions: dict[int, int],
) -> None:
    def cell(index: int | None) -> str:
        return cells[index] if index is not None and index < len(cells) else ""

    before = len(sheet.errors)
    form_code = normalise_form_code(cell(positions[FORM_COLUMN]))
    resident_code = cell(positions[RESIDENT_COLUMN]).upper().replace(" ", "")
    if not form_code:
        sheet.problem(number, FORM_COLUMN, "表单编号为空，请照答卷右上角的编号填写")
    if not resident_code:
        sheet.problem(number, RESIDENT_COLUMN, "居民编号为空，请照居民卡上的编号填写")
    answers: dict[int, tuple[str, ...]] = {}
    for question, index in sorted(questions.items()):
        text = cell(index)
        if not text:
            continue
        letters = _letters(text)
        if letters is None:
            sheet.problem(
                number, str(question), f"第 {question} 题填的是「{text[:20]}」，应为选项字母 A—F"
            )
        else:
            answers[question] = letters
    answered_on = None
    if DATE_COLUMN in positions and (raw := cell(positions[DATE_COLUMN])):
        answered_on = _date(raw)
        if answered_on is None:
            sheet.problem(number, DATE_COLUMN, f"作答日期「{raw[:20]}」无法识别，请写成 2026-12-05")
    if not answers and form_code and resident_code:
        sheet.problem(number, "答案", "这一行没有任何答案，请核对是否漏录")
    if len(sheet.errors) == before:
        sheet.rows.append(SheetRow(number, form_code, resident_code, answers, answered_on))


def _letters(text: str) -> tuple[str, ...] | None:
    """The option letters in a cell, sorted and distinct; None if anything else is in it."""
    text = _TRUE_FALSE.get(text.strip(), text)
    joined = _SEPARATORS.sub("", text).upper()
    if not joined or any(ch not in "ABCDEF" for ch in joined):
        return None
    return tuple(sorted(set(joined)))


def _date(text: str) -> date | None:
    for pattern in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
