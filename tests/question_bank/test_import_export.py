"""Import and export through HTTP with real files: xlsx, csv (UTF-8, BOM, GB18030), json."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import openpyxl
from aiohttp import FormData

from question_bank.importing import COLUMNS
from server.kernel.keys import DB
from tests.factories import auth, create_question

BASE = "/api/v1/admin/questions"


def good_row(n: int) -> list[Any]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        {
            "题型": "单选",
            "题干": f"第{n}号：下列哪种做法有助于预防高血压？",
            "选项A": "少吃盐",
            "选项B": "多喝酒",
            "选项C": f"熬夜{n}次",
            "答案": "A",
            "解析": "减少钠盐摄入可以降低血压。",
            "维度": "应用科学的能力",
            "主题": "健康",
            "适用人群": "老年人,公众",
            "难度": 2,
            "来源": "县卫生健康局",
        }
    )
    return [row[c] for c in COLUMNS]


BROKEN_KINDS = [
    ("答案", "E"),  # answer not among options
    ("题型", "填空"),  # unknown type
    ("维度", "运气"),  # unknown dimension
    ("适用人群", "外星人"),  # unknown audience
    ("难度", "9"),  # out of range
    ("题干", ""),  # empty stem
]


def broken_row(n: int) -> tuple[list[Any], str]:
    column, value = BROKEN_KINDS[n % len(BROKEN_KINDS)]
    row = good_row(100_000 + n)
    row[COLUMNS.index(column)] = value
    return row, column


def xlsx_bytes(rows: list[list[Any]], header: list[str] = COLUMNS) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


async def upload(client: Any, token: str, name: str, data: bytes, *, dry_run: bool = False) -> Any:
    form = FormData()
    form.add_field("file", io.BytesIO(data), filename=name)
    return await client.post(
        f"{BASE}/import" + ("?dry_run=true" if dry_run else ""), data=form, headers=auth(token)
    )


async def test_thousand_valid_and_twenty_broken_rows(client: Any, staff: Any) -> None:
    rows: list[list[Any]] = []
    expected_errors: dict[int, str] = {}
    for n in range(1020):
        if n % 51 == 50:  # 20 broken rows spread through the file
            row, column = broken_row(n)
            expected_errors[len(rows) + 2] = column  # +2: header is row 1
            rows.append(row)
        else:
            rows.append(good_row(n))
    assert len(expected_errors) == 20
    data = xlsx_bytes(rows)
    response = await upload(client, staff.editor, "questions.xlsx", data)
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["imported"] == 1000 and result["duplicates"] == 0
    assert {e["row"]: e["field"] for e in result["errors"]} == expected_errors
    assert all(e["message"] for e in result["errors"])
    db = client.app[DB]
    assert await db["questions"].count_documents({"status": "draft"}) == 1000
    assert await db["audit_log"].count_documents({"action": "import"}) == 1000

    again = await (await upload(client, staff.editor, "questions.xlsx", data)).json()
    assert again["imported"] == 0 and again["duplicates"] == 1000 and len(again["errors"]) == 20
    assert await db["questions"].count_documents({}) == 1000


async def test_dry_run_reports_without_writing(client: Any, staff: Any) -> None:
    row, _ = broken_row(0)
    result = await (
        await upload(client, staff.editor, "q.xlsx", xlsx_bytes([good_row(1), row]), dry_run=True)
    ).json()
    assert result == {
        "imported": 1,
        "duplicates": 0,
        "errors": result["errors"],
        "dry_run": True,
        "near_duplicates": 0,
    }
    assert result["errors"][0]["row"] == 3
    assert await client.app[DB]["questions"].count_documents({}) == 0


async def test_csv_in_utf8_bom_and_gb18030(client: Any, staff: Any) -> None:
    for n, encoding in enumerate(("utf-8", "utf-8-sig", "gb18030")):
        data = csv_bytes([good_row(10 * n), good_row(10 * n + 1)], encoding)
        result = await (await upload(client, staff.editor, "题目.csv", data)).json()
        assert result["imported"] == 2 and result["errors"] == [], encoding
    stored = await client.app[DB]["questions"].find_one({"content.stem": good_row(20)[1]})
    assert stored["content"]["audiences"] == ["elderly", "general"]


async def test_true_false_and_multiple_rows(client: Any, staff: Any) -> None:
    tf = dict.fromkeys(COLUMNS, "")
    tf.update(
        {
            "题型": "判断",
            "题干": "接到自称公安的电话要求转账到安全账户，应立即转账。",
            "答案": "错",
            "维度": "科学知识",
            "主题": "防诈骗与数字生活",
            "适用人群": "老年人",
        }
    )
    multi = dict.fromkeys(COLUMNS, "")
    multi.update(
        {
            "题型": "多选",
            "题干": "下列属于可再生能源的有？",
            "选项A": "太阳能",
            "选项B": "风能",
            "选项C": "煤炭",
            "选项D": "水能",
            "答案": "ABD",
            "维度": "科学知识",
            "主题": "能源",
            "适用人群": "青少年、公众",
            "难度": "3",
        }
    )
    data = xlsx_bytes([[tf[c] for c in COLUMNS], [multi[c] for c in COLUMNS]])
    result = await (await upload(client, staff.editor, "q.xlsx", data)).json()
    assert result["imported"] == 2, result
    stored = {
        d["content"]["type"]: d["content"] async for d in client.app[DB]["questions"].find({})
    }
    assert stored["true_false"]["answer"] == ["B"]
    assert stored["true_false"]["options"] == [
        {"key": "A", "text": "对"},
        {"key": "B", "text": "错"},
    ]
    assert stored["multiple"]["answer"] == ["A", "B", "D"]
    assert stored["multiple"]["audiences"] == ["youth", "general"]


async def test_missing_columns_and_bad_files_are_422(client: Any, staff: Any) -> None:
    response = await upload(client, staff.editor, "q.xlsx", xlsx_bytes([], header=["题干", "答案"]))
    assert response.status == 422
    assert "题型" in (await response.json())["error"]["message"]
    assert (await upload(client, staff.editor, "q.xlsx", b"not a zip")).status == 422
    assert (await upload(client, staff.editor, "q.txt", b"hello")).status == 422
    assert (await upload(client, staff.editor, "q.json", b"{broken")).status == 422


async def test_a_multipart_request_without_boundary_or_with_a_broken_body_is_422(
    client: Any, staff: Any
) -> None:
    """Found by schemathesis: multipart/form-data without a boundary answered 500."""
    for content_type, body in (
        ("multipart/form-data", b"file=abc"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a part header\r\n"),
        ("multipart/form-data; boundary=xyz", b"garbage without any boundary"),
    ):
        response = await client.post(
            f"{BASE}/import",
            data=body,
            headers={**auth(staff.editor), "Content-Type": content_type},
        )
        assert response.status == 422, (content_type, body, response.status)
        error = (await response.json())["error"]
        assert error["code"] == "validation_error" and "multipart" in error["message"]
    assert await client.app[DB]["questions"].count_documents({}) == 0


async def test_too_many_rows_or_bytes_is_413(client: Any, staff: Any) -> None:
    lines = [COLUMNS] + [good_row(n) for n in range(20_001)]
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(lines)
    response = await upload(client, staff.editor, "big.csv", buffer.getvalue().encode())
    assert response.status == 413
    assert "20000" in (await response.json())["error"]["message"]
    huge = await upload(client, staff.editor, "huge.json", b" " * (10 * 1024 * 1024 + 1))
    assert huge.status == 413
    assert await client.app[DB]["questions"].count_documents({}) == 0


async def test_export_imports_back_unchanged(
    client: Any, staff: Any, client_for: Any, services: Any
) -> None:
    await create_question(
        client, staff.editor, n=1, stem="=SUM(A1) 开头像公式的题干", tags=["膳食", "盐"]
    )
    await create_question(
        client,
        staff.editor,
        n=2,
        type="true_false",
        options=[{"key": "A", "text": "对"}, {"key": "B", "text": "错"}],
        answer=["B"],
        audio_url="https://media.example.cn/a.mp3",
    )
    await create_question(client, staff.editor, n=3, type="multiple", answer=["A", "C"])
    originals = sorted(
        [d["content"] async for d in client.app[DB]["questions"].find({})], key=lambda c: c["stem"]
    )
    from tests import factories
    from tests.conftest import make_settings

    for fmt in ("xlsx", "csv", "json"):
        exported = await client.get(f"{BASE}/export?format={fmt}", headers=auth(staff.analyst))
        assert exported.status == 200
        data = await exported.read()
        # Into the same bank: everything is a duplicate.
        same = await (await upload(client, staff.editor, f"x.{fmt}", data)).json()
        assert same["imported"] == 0 and same["duplicates"] == 3 and same["errors"] == [], fmt
        # Into an empty bank: the same content, field for field.
        fresh = await client_for(make_settings(services))
        editor = await factories.staff_token(fresh, "editor")
        result = await (await upload(fresh, editor, f"x.{fmt}", data)).json()
        assert result["imported"] == 3, (fmt, result)
        copies = sorted(
            [d["content"] async for d in fresh.app[DB]["questions"].find({})],
            key=lambda c: c["stem"],
        )
        assert copies == originals, fmt


async def test_json_export_is_the_api_shape(client: Any, staff: Any) -> None:
    await create_question(client, staff.editor)
    exported = json.loads(
        await (await client.get(f"{BASE}/export?format=json", headers=auth(staff.editor))).read()
    )
    assert exported[0]["answer"] == ["A"] and exported[0]["dimension"] == "knowledge"


async def test_template_has_the_chinese_columns(client: Any, staff: Any) -> None:
    response = await client.get(f"{BASE}/template.xlsx", headers=auth(staff.editor))
    assert response.status == 200
    workbook = openpyxl.load_workbook(io.BytesIO(await response.read()))
    header = [cell.value for cell in workbook.worksheets[0][1]]
    assert header[:14] == [
        "题型",
        "题干",
        "选项A",
        "选项B",
        "选项C",
        "选项D",
        "选项E",
        "选项F",
        "答案",
        "解析",
        "维度",
        "主题",
        "适用人群",
        "难度",
    ]
    assert workbook.worksheets[0].max_row == 1
