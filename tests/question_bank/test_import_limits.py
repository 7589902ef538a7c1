"""Import limits through HTTP: an .xlsx is a zip, so bombs are refused from its directory
before openpyxl opens it; rows, columns and cells are capped the same way for .xlsx, .csv
and .json; a damaged file is a 422, never a 500; and the 64 KiB JSON body limit does not
touch uploads."""

from __future__ import annotations

import io
import json
import re
import struct
import time
import zipfile
from typing import Any

import openpyxl

from question_bank import importing
from question_bank.importing import COLUMNS, MAX_CELL_CHARS, MAX_COLUMNS, MAX_ROWS
from server.kernel.http import JSON_MAX_BODY
from server.kernel.keys import DB
from tests.question_bank.test_import_export import csv_bytes, good_row, upload, xlsx_bytes

MIB = 1024 * 1024


def with_entries(data: bytes, extra: dict[str, bytes]) -> bytes:
    """The workbook `data` with more parts added (deflated)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        for name, content in extra.items():
            target.writestr(name, content)
    return buffer.getvalue()


def with_sheet(data: bytes, change: Any) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = change(content)
            target.writestr(info.filename, content)
    return buffer.getvalue()


def sheet_with_dimension(rows: int) -> bytes:
    """A workbook as Excel writes it: the sheet starts with its <dimension>."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(COLUMNS)
    for n in range(rows):
        sheet.append(good_row(n))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def error_of(body: dict[str, Any], code: str) -> str:
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


# ------------------------------------------------------------------ zip bombs


async def test_an_xlsx_unpacking_past_50_mb_is_413(client: Any, staff: Any) -> None:
    # 51 parts of 1 MiB of zeros: each too small for the ratio rule, together over the cap.
    padding = {f"xl/media/pad{n}.bin": bytes(MIB) for n in range(51)}
    data = with_entries(xlsx_bytes([good_row(1)]), padding)
    assert len(data) < MIB
    response = await upload(client, staff.editor, "bomb.xlsx", data)
    assert response.status == 413
    assert "解压后超过 50 MB" in error_of(await response.json(), "payload_too_large")
    assert await client.app[DB]["questions"].count_documents({}) == 0


async def test_an_xlsx_part_with_a_bomb_like_ratio_is_413(client: Any, staff: Any) -> None:
    data = with_entries(xlsx_bytes([good_row(1)]), {"xl/media/zeros.bin": bytes(4 * MIB)})
    response = await upload(client, staff.editor, "ratio.xlsx", data)
    assert response.status == 413
    message = error_of(await response.json(), "payload_too_large")
    assert "压缩比异常" in message and "zeros.bin" in message


async def test_an_xlsx_with_too_many_parts_is_413(client: Any, staff: Any) -> None:
    parts = {f"xl/x/{n}.xml": b"<a/>" for n in range(importing.XLSX_MAX_ENTRIES)}
    data = with_entries(xlsx_bytes([good_row(1)]), parts)
    response = await upload(client, staff.editor, "parts.xlsx", data)
    assert response.status == 413
    assert "部件过多" in error_of(await response.json(), "payload_too_large")


def declare_size(data: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s uncompressed size in both headers replaced by `size` (a lie)."""
    patched = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        local = archive.getinfo(name).header_offset
    struct.pack_into("<I", patched, local + 22, size)
    at = patched.find(b"PK\x01\x02")
    while at != -1:
        (name_length,) = struct.unpack_from("<H", patched, at + 28)
        if patched[at + 46 : at + 46 + name_length] == name.encode():
            struct.pack_into("<I", patched, at + 24, size)
        at = patched.find(b"PK\x01\x02", at + 4)
    return bytes(patched)


async def test_an_xlsx_whose_directory_understates_a_part_is_422(client: Any, staff: Any) -> None:
    """The zip reader stops at the declared size, so the lie can't inflate past the checks:
    the sheet reads as damaged."""
    data = declare_size(sheet_with_dimension(300), "xl/worksheets/sheet1.xml", 20_000)
    response = await upload(client, staff.editor, "liar.xlsx", data)
    assert response.status == 422
    assert "无法读取 Excel 文件" in error_of(await response.json(), "validation_error")


async def test_a_sheet_declaring_its_last_cell_is_not_padded_out(client: Any, staff: Any) -> None:
    """A few bytes naming cell XFD1048576: openpyxl would pad 17 billion empty cells."""

    def far_cell(row: int) -> Any:
        def change(xml: bytes) -> bytes:
            xml, found = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', xml)
            assert found == 1
            far = (
                f'<row r="{row}"><c r="A{row}" t="inlineStr"><is><t>单选</t></is></c>'
                f'<c r="XFD{row}" t="inlineStr"><is><t>x</t></is></c></row>'
            )
            return xml.replace(b"</sheetData>", far.encode() + b"</sheetData>")

        return change

    for row, status, words in (
        (1_048_576, 413, f"超过 {MAX_ROWS} 行"),
        (5_000_000, 422, "行号超过"),
    ):
        data = with_sheet(sheet_with_dimension(1), far_cell(row))
        began = time.monotonic()
        response = await upload(client, staff.editor, "far.xlsx", data)
        assert time.monotonic() - began < 10
        assert response.status == status, await response.text()
        assert words in (await response.json())["error"]["message"]


async def test_a_sheet_damaged_after_its_start_is_422_not_500(client: Any, staff: Any) -> None:
    data = with_sheet(sheet_with_dimension(300), lambda xml: xml[: len(xml) * 9 // 10])
    response = await upload(client, staff.editor, "cut.xlsx", data)
    assert response.status == 422
    assert "无法读取 Excel 文件" in error_of(await response.json(), "validation_error")


# ------------------------------------------------------------------ rows, columns, cells


async def test_a_header_wider_than_the_column_cap_is_422(client: Any, staff: Any) -> None:
    header = [*COLUMNS, *(f"备注{n}" for n in range(MAX_COLUMNS))]
    wide_csv = ",".join(header).encode() + b"\n" + ",".join(map(str, good_row(1))).encode()
    for name, data in (
        ("wide.xlsx", xlsx_bytes([good_row(1)], header=header)),
        ("wide.csv", wide_csv),
    ):
        response = await upload(client, staff.editor, name, data)
        assert response.status == 422, name
        assert f"超过 {MAX_COLUMNS} 列" in error_of(await response.json(), "validation_error")


async def test_a_cell_over_excels_limit_is_a_row_error(client: Any, staff: Any) -> None:
    long_row = good_row(2)
    long_row[COLUMNS.index("标签")] = "长" * (MAX_CELL_CHARS + 1)
    # (openpyxl, like Excel, cuts a cell to 32,767 characters on writing: a .csv shows it)
    data = csv_bytes([good_row(1), long_row], "utf-8")
    response = await upload(client, staff.editor, "cell.csv", data, dry_run=True)
    assert response.status == 200
    result = await response.json()
    assert result["imported"] == 1
    assert [(e["row"], e["field"]) for e in result["errors"]] == [(3, "标签")]
    assert str(MAX_CELL_CHARS) in result["errors"][0]["message"]


async def test_a_csv_cell_past_the_csv_readers_limit_is_422_not_500(
    client: Any, staff: Any
) -> None:
    row = good_row(1)
    row[COLUMNS.index("解析")] = "x" * 200_000
    response = await upload(client, staff.editor, "huge-cell.csv", csv_bytes([row], "utf-8"))
    assert response.status == 422
    assert "CSV 文件第 2 行" in error_of(await response.json(), "validation_error")


async def test_json_has_the_same_row_cap_and_refuses_deep_nesting(client: Any, staff: Any) -> None:
    item = {"type": "single"}
    too_many = json.dumps([item] * (MAX_ROWS + 1)).encode()
    response = await upload(client, staff.editor, "many.json", too_many)
    assert response.status == 413
    assert f"超过 {MAX_ROWS} 行" in error_of(await response.json(), "payload_too_large")
    nested = b"[" * 100_000 + b"]" * 100_000
    deep = await upload(client, staff.editor, "deep.json", nested)
    assert deep.status == 422
    assert "JSON" in error_of(await deep.json(), "validation_error")


def test_exactly_the_row_cap_is_accepted_in_every_format() -> None:
    rows = [good_row(n) for n in range(MAX_ROWS)]
    records = [
        {
            "type": "single",
            "stem": f"第{n}题",
            "options": [{"key": "A", "text": "对的"}, {"key": "B", "text": "错的"}],
            "answer": ["A"],
            "dimension": "knowledge",
            "topic": "健康",
            "audiences": ["general"],
        }
        for n in range(MAX_ROWS)
    ]
    for name, data in (
        ("cap.csv", csv_bytes(rows, "utf-8")),
        ("cap.json", json.dumps(records).encode()),
    ):
        parsed = importing.parse_upload(name, data)
        assert len(parsed.rows) == MAX_ROWS and parsed.errors == [], name


async def test_an_upload_larger_than_the_json_body_limit_still_imports(
    client: Any, staff: Any
) -> None:
    data = csv_bytes([good_row(n) for n in range(800)], "utf-8")
    assert len(data) > 2 * JSON_MAX_BODY
    response = await upload(client, staff.editor, "questions.csv", data)
    assert response.status == 200, await response.text()
    assert (await response.json())["imported"] == 800
