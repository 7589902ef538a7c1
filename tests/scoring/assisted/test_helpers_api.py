"""Assisted answering through HTTP on the demo county: an admin creates helpers scoped to
townships; a helper registers 30 residents without WeChat, takes a quiz with one, prints their
paper forms, uploads a filled sheet with broken rows (each reported by row), and the attempts
appear in the township's statistics under `paper`. Scope, daily limits and idempotency hold."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import FormData
from openpyxl import Workbook

from question_bank.keys import BANK
from scoring.integrity.service import flag_id_of
from server import seed
from server.county.periods import COUNTY_TZ
from server.kernel.keys import DB
from tests.factories import PASSWORD, auth, correct_answers, login, staff_tokens

TOWNSHIP_A = "450223101"
TOWNSHIP_B = "450223102"
HELPER = "/api/v1/helper"
TODAY = datetime.now(COUNTY_TZ).date().isoformat()
CODE = re.compile(r"^[34679ACDEFGHJKMNPQRTUVWXY]{4}-[34679ACDEFGHJKMNPQRTUVWXY]{4}$")


@pytest.fixture
async def county(resident_client: Any) -> dict[str, str]:
    await seed.seed_demo(resident_client.app[DB])
    staff = await staff_tokens(resident_client)
    return {"analyst": staff.analyst, "admin": staff.admin}


async def create_helper(
    client: Any, admin: str, name: str, townships: list[str], daily_limit: int = 200
) -> str:
    response = await client.post(
        "/api/v1/admin/helpers",
        json={
            "username": name,
            "password": PASSWORD,
            "townships": townships,
            "daily_limit": daily_limit,
        },
        headers=auth(admin),
    )
    assert response.status == 201, await response.text()
    return await login(client, name)


async def register(client: Any, token: str, township: str, **overrides: Any) -> Any:
    body = {
        "township_code": township,
        "birth_year": 1950,
        "gender": "female",
        "group": "elderly",
        "education": "primary_or_less",
        "consent": {"oral": True},
        **overrides,
    }
    return await client.post(f"{HELPER}/residents", json=body, headers=auth(token))


async def register_many(client: Any, token: str, township: str, count: int) -> list[str]:
    codes = []
    for n in range(count):
        response = await register(client, token, township, birth_year=1958 + n % 10)
        assert response.status == 201, await response.text()
        codes.append((await response.json())["code"])
    return codes


def form_answers(client: Any, form: dict[str, Any], right: int) -> list[str]:
    """Letters as ticked on the printed form: the first `right` questions right, the others
    wrong (the first wrong option shown)."""
    bank = client.app[BANK]
    letters = []
    for number, item in enumerate(form["questions"]):
        question = bank.published[item["question_id"]]
        order = item["order"]
        if number < right:
            shown = sorted("ABCDEF"[order.index(key)] for key in question.answer)
        else:
            shown = ["ABCDEF"[next(i for i, k in enumerate(order) if k not in question.answer)]]
        letters.append("".join(shown))
    return letters


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(client: Any, token: str, name: str, data: bytes) -> Any:
    form = FormData()
    form.add_field("file", data, filename=name)
    return await client.post(f"{HELPER}/forms/upload", data=form, headers=auth(token))


async def test_a_helper_registers_prints_uploads_and_the_figures_count_paper(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, db = resident_client, resident_client.app[DB]
    helper = await create_helper(client, county["admin"], "helper_a", [TOWNSHIP_A])
    codes = await register_many(client, helper, TOWNSHIP_A, 30)
    assert len(set(codes)) == 30 and all(CODE.match(code) for code in codes)
    stored = await db["users"].find({"resident_code": {"$in": codes}}).to_list()
    assert len(stored) == 30
    for user in stored:  # no name, phone or WeChat id; the oral consent and who noted it
        assert not {"name", "phone", "openid", "username"} & set(user)
        assert user["consents"][0]["version"] == "oral" and user["consents"][0]["noted_by"]

    response = await client.get(f"{HELPER}/forms?mode=assessment&count=30", headers=auth(helper))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pdf"
    pdf = await response.read()
    assert pdf.startswith(b"%PDF")
    forms = await db["paper_forms"].find({"township_code": TOWNSHIP_A}).to_list()
    assert len(forms) == 30 and all(len(f["questions"]) == 30 for f in forms)
    import pdfplumber

    with pdfplumber.open(io.BytesIO(pdf)) as document:
        text = "".join(page.extract_text() or "" for page in document.pages[:12])
    first = client.app[BANK].published[forms[0]["questions"][0]["question_id"]]
    assert forms[0]["_id"] in text and first.stem[:10] in text.replace("\n", "")

    header = ["表单编号", "居民编号", *[str(n) for n in range(1, 31)], "作答日期"]
    rows: list[list[Any]] = [header]
    for n, (form, code) in enumerate(zip(forms[:27], codes[:27], strict=True)):
        rows.append([form["_id"], code, *form_answers(client, form, 10 + n % 20), TODAY])
    broken = [
        ["PF-XXXX-XXXX", codes[27], *form_answers(client, forms[27], 20), ""],  # unknown form
        [forms[28]["_id"], "AAAA-AAAA", *form_answers(client, forms[28], 20), ""],  # resident
        [forms[29]["_id"], codes[29], "Z", *form_answers(client, forms[29], 20)[1:], ""],
    ]
    rows += broken
    response = await upload(client, helper, "sheet.xlsx", xlsx(rows))
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["accepted"] == 27 and result["duplicates"] == 0 and result["rejected"] == 3
    assert {e["row"] for e in result["errors"]} == {29, 30, 31}
    messages = " ".join(e["message"] for e in result["errors"])
    assert "表单编号" in messages and "居民编号" in messages and "第 1 题" in messages

    attempts = await db["attempts"].find({"channel": "paper"}).to_list()
    assert len(attempts) == 27
    for attempt in attempts:
        assert attempt["mode"] == "assessment" and attempt["paradata"]["helper_id"]
        assert attempt["paradata"]["form_code"] and attempt["paradata"]["uploaded_at"]
        assert attempt["paradata"]["form_issued_at"]

    again = await (await upload(client, helper, "sheet.xlsx", xlsx(rows))).json()
    assert again["accepted"] == 0 and again["duplicates"] == 27 and again["rejected"] == 3
    assert await db["attempts"].count_documents({"channel": "paper"}) == 27

    month = attempts[0]["assessment"]["month"]
    figures = await client.get(
        f"/api/v1/stats/literacy?by=channel&period={month}", headers=auth(county["analyst"])
    )
    assert figures.status == 200, await figures.text()
    body = await figures.json()
    paper_row = next(r for r in body["rows"] if r["key"] == "paper")
    assert paper_row["respondents"] == 27 and paper_row["name"] == "纸质答卷"
    assert body["county"]["respondents"] >= 27  # the headline counts every channel
    participation = await client.get(
        f"/api/v1/stats/participation?by=channel&period={month}", headers=auth(county["analyst"])
    )
    items = (await participation.json())["items"]
    assert next(i for i in items if i["key"] == "paper")["respondents"] == 27


async def test_a_helper_takes_a_quiz_with_a_resident_and_the_attempt_records_the_helper(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, db = resident_client, resident_client.app[DB]
    helper = await create_helper(client, county["admin"], "helper_quiz", [TOWNSHIP_A])
    [code] = await register_many(client, helper, TOWNSHIP_A, 1)
    path = f"{HELPER}/residents/{code.lower().replace('-', '')}/quizzes"  # typed loosely
    started = await client.post(path, json={"mode": "assessment"}, headers=auth(helper))
    assert started.status == 201, await started.text()
    quiz = await started.json()
    answers = correct_answers(client, quiz)
    submit = f"{HELPER}/residents/{code}/quizzes/{quiz['quiz_id']}/submit"
    first, second = await asyncio.gather(
        client.post(submit, json={"answers": answers}, headers=auth(helper)),
        client.post(submit, json={"answers": answers}, headers=auth(helper)),
    )
    assert first.status == second.status == 200
    assert await first.json() == await second.json()
    assert (await first.json())["total"] == 100
    [attempt] = await db["attempts"].find({"channel": "assisted"}).to_list()
    helper_id = (await (await client.get("/api/v1/me", headers=auth(helper))).json())["id"]
    assert attempt["paradata"]["helper_id"] == helper_id
    again = await client.post(path, json={"mode": "assessment"}, headers=auth(helper))
    assert again.status == 409  # the month's one assessment
    bad = await client.post(path, json={"mode": "adaptive"}, headers=auth(helper))
    assert bad.status == 422
    unknown = await client.post(
        f"{HELPER}/residents/AAAA-AAAA/quizzes", json={"mode": "practice"}, headers=auth(helper)
    )
    assert unknown.status == 404


async def test_scope_and_limits_hold(resident_client: Any, county: dict[str, str]) -> None:
    client, admin = resident_client, county["admin"]
    helper_a = await create_helper(client, admin, "scope_a", [TOWNSHIP_A])
    helper_b = await create_helper(client, admin, "scope_b", [TOWNSHIP_B], daily_limit=3)
    [code_a] = await register_many(client, helper_a, TOWNSHIP_A, 1)
    assert (await register(client, helper_a, TOWNSHIP_B)).status == 403
    for method, path, body in (
        ("GET", f"{HELPER}/residents/{code_a}", None),
        ("POST", f"{HELPER}/residents/{code_a}/quizzes", {"mode": "practice"}),
        ("DELETE", f"{HELPER}/residents/{code_a}", None),
        ("GET", f"{HELPER}/forms?township={TOWNSHIP_A}&count=1", None),
    ):
        response = await client.request(method, path, json=body, headers=auth(helper_b))
        assert response.status == 403, (method, path, response.status)
        assert (await response.json())["error"]["message"]
    listed = await (await client.get(f"{HELPER}/residents", headers=auth(helper_b))).json()
    assert code_a not in {r["code"] for r in listed["items"]}
    listed = await (await client.get(f"{HELPER}/residents", headers=auth(helper_a))).json()
    assert code_a in {r["code"] for r in listed["items"]}

    # Helper B's limit is 3 actions a day: the fourth is refused, whatever it is.
    assert (await register(client, helper_b, TOWNSHIP_B)).status == 201
    assert (await register(client, helper_b, TOWNSHIP_B)).status == 201
    forms = await client.get(f"{HELPER}/forms?count=2", headers=auth(helper_b))
    assert forms.status == 429 and forms.headers["Retry-After"]
    assert (await register(client, helper_b, TOWNSHIP_B)).status == 201
    limited = await register(client, helper_b, TOWNSHIP_B)
    assert limited.status == 429 and "上限" in (await limited.json())["error"]["message"]

    activity = await client.get("/api/v1/admin/helpers", headers=auth(admin))
    by_name = {h["username"]: h for h in (await activity.json())["items"]}
    assert by_name["scope_b"]["used_today"] == 3 and by_name["scope_b"]["townships"] == [TOWNSHIP_B]


async def test_registration_and_helper_input_is_checked(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, admin = resident_client, county["admin"]
    helper = await create_helper(client, admin, "checks", [TOWNSHIP_A])
    assert (await register(client, helper, TOWNSHIP_A, birth_year=2020)).status == 422
    minor = await register(
        client, helper, TOWNSHIP_A, birth_year=2020, consent={"oral": True, "guardian": True}
    )
    assert minor.status == 201
    assert (await register(client, helper, TOWNSHIP_A, consent={"oral": False})).status == 422
    assert (await register(client, helper, "999999999")).status == 422
    assert (await register(client, helper, TOWNSHIP_A, name="张三")).status == 422
    for body in (
        {"username": "x", "password": PASSWORD, "townships": [TOWNSHIP_A]},
        {"username": "nobody", "password": PASSWORD, "townships": ["999999999"]},
        {"username": "nobody", "password": PASSWORD, "townships": []},
        {"username": "nobody", "password": PASSWORD, "townships": [TOWNSHIP_A], "role": "admin"},
    ):
        response = await client.post("/api/v1/admin/helpers", json=body, headers=auth(admin))
        assert response.status == 422, body
    taken = await client.post(
        "/api/v1/admin/helpers",
        json={"username": "checks", "password": PASSWORD, "townships": [TOWNSHIP_A]},
        headers=auth(admin),
    )
    assert taken.status == 409
    assert (await client.get(f"{HELPER}/forms?count=0", headers=auth(helper))).status == 422
    assert (await client.get(f"{HELPER}/forms?count=51", headers=auth(helper))).status == 422
    for name, data in (
        ("sheet.txt", b"hello"),
        ("sheet.csv", "表单编号,居民编号\nPF-1,AAAA-AAAA\n".encode()),
        ("sheet.csv", b""),
    ):
        response = await upload(client, helper, name, data)
        assert response.status == 422, (name, await response.text())
    text = io.StringIO()
    csv.writer(text).writerows([["表单编号", "居民编号", "1", "2"], ["", "", "A", "B"]])
    rows = await (await upload(client, helper, "sheet.csv", text.getvalue().encode())).json()
    assert rows["rejected"] == 1 and {e["field"] for e in rows["errors"]} >= {
        "表单编号",
        "居民编号",
    }


async def test_paper_rows_are_checked_against_the_form_and_other_helpers_results_stay_hidden(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, db = resident_client, resident_client.app[DB]
    first = await create_helper(client, county["admin"], "paper_one", [TOWNSHIP_A])
    second = await create_helper(client, county["admin"], "paper_two", [TOWNSHIP_A])
    codes = await register_many(client, first, TOWNSHIP_A, 3)
    assert (await client.get(f"{HELPER}/forms?count=2", headers=auth(first))).status == 200
    forms = await db["paper_forms"].find({}).sort("_id", 1).to_list()
    header = ["表单编号", "居民编号", *[str(n) for n in range(1, 31)], "作答日期"]
    answers = form_answers(client, forms[0], 30)
    loose = forms[0]["_id"].lower().replace("-", "－").removeprefix("pf")  # typed loosely
    tomorrow = (datetime.now(COUNTY_TZ) + timedelta(days=1)).date().isoformat()
    rows = [
        header,
        [loose, codes[0], *answers, TODAY],
        [forms[0]["_id"], codes[1], *answers, TODAY],  # the same sheet for another resident
        [forms[1]["_id"], codes[1], *form_answers(client, forms[1], 30), "2019-03-01"],
        [forms[1]["_id"], codes[2], *form_answers(client, forms[1], 30), tomorrow],
    ]
    result = await (await upload(client, first, "sheet.xlsx", xlsx(rows))).json()
    assert result["accepted"] == 1 and result["rejected"] == 3, result
    assert {e["row"]: e["field"] for e in result["errors"]} == {
        3: "居民编号",
        4: "作答日期",
        5: "作答日期",
    }
    [stored] = await db["attempts"].find({"channel": "paper"}).to_list()
    assert stored["review"]["seconds"] is None and stored["assessment"]["total"] == 100
    # The other helper re-uploading it learns it is stored, not the resident's result.
    again = await (await upload(client, second, "sheet.xlsx", xlsx(rows[:2]))).json()
    assert again["duplicates"] == 1 and again["rows"][0]["score"] is None
    mine = await (await upload(client, first, "sheet.xlsx", xlsx(rows[:2]))).json()
    assert mine["rows"][0]["total"] == 100
    # The month's assessment is done on paper: a session assessment is refused at start.
    start = await client.post(
        f"{HELPER}/residents/{codes[0]}/quizzes", json={"mode": "assessment"}, headers=auth(first)
    )
    assert start.status == 409
    # Erasure at the resident's request takes the printed code too.
    assert (
        await client.delete(f"{HELPER}/residents/{codes[0]}", headers=auth(first))
    ).status == 204
    assert await db["users"].count_documents({"resident_code": codes[0]}) == 0
    assert (await client.get(f"{HELPER}/residents/{codes[0]}", headers=auth(first))).status == 404


async def test_a_helper_who_submits_sessions_back_to_back_is_flagged_by_the_per_helper_check(
    resident_client: Any, county: dict[str, str]
) -> None:
    """Six residents' assessments issued "an hour ago" and submitted one after another within
    seconds on one tablet: no session alone is fast (each took an hour), the tablet is a
    helper's (not shared_device), but the helper cannot have read six forms aloud in seconds."""
    client, db = resident_client, resident_client.app[DB]
    helper = await create_helper(client, county["admin"], "helper_rushed", [TOWNSHIP_A])
    codes = await register_many(client, helper, TOWNSHIP_A, 6)
    quizzes = []
    for code in codes:
        started = await client.post(
            f"{HELPER}/residents/{code}/quizzes", json={"mode": "assessment"}, headers=auth(helper)
        )
        assert started.status == 201, await started.text()
        quizzes.append((code, await started.json()))
    for code, quiz in quizzes:
        submitted = await client.post(
            f"{HELPER}/residents/{code}/quizzes/{quiz['quiz_id']}/submit",
            json={"answers": correct_answers(client, quiz)},
            headers={**auth(helper), "X-Device-Id": "village-tablet-01"},
        )
        assert submitted.status == 200, await submitted.text()
    # As if issued at nine and submitted from ten: each session's own time is an hour.
    stored = await db["attempts"].find({"channel": "assisted"}).sort("submitted_at", 1).to_list()
    assert len(stored) == 6
    for attempt in stored:
        await db["attempts"].update_one(
            {"_id": attempt["_id"]},
            {
                "$set": {
                    "issued_at": attempt["submitted_at"] - timedelta(hours=1),
                    "paradata.seconds": 3600.0,
                }
            },
        )
    screened = await client.post("/api/v1/admin/integrity/screen", headers=auth(county["analyst"]))
    assert screened.status == 200, await screened.text()
    listing = await client.get(
        f"/api/v1/admin/integrity/flags?township={TOWNSHIP_A}&page_size=100",
        headers=auth(county["analyst"]),
    )
    assert listing.status == 200
    by_id = {f["id"]: f for f in (await listing.json())["items"]}
    helper_id = stored[0]["paradata"]["helper_id"]
    assert flag_id_of(stored[0]["_id"]) not in by_id  # the first has no session before it
    for attempt in stored[1:]:
        flag = by_id[flag_id_of(attempt["_id"])]
        reasons = {r["code"]: r for r in flag["reasons"]}
        assert set(reasons) == {"helper_speed"}, reasons
        assert flag["strong"] and flag["channel"] == "assisted"
        evidence = reasons["helper_speed"]["evidence"]
        assert evidence["helper_id"] == helper_id and evidence["own_seconds"] == 3600.0
        assert evidence["fast_sessions"] == 5 and evidence["helper_sessions"] == 6
        assert "科普员" in reasons["helper_speed"]["label"]
