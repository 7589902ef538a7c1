"""Integrity through HTTP on the demo county: paradata stored with each assessment, a helper
answering for five residents on one phone flagged by a screening pass, the analyst's review
(exclude, keep, reversed), the literacy cells and figures following the decisions only, and
the reporting fields (flag counts, the share without open flags, the selection band)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scoring.assessment import storage as cell_storage
from scoring.integrity import service as integrity_service
from scoring.integrity.service import Screening, flag_id_of
from scoring.quizzes import service as quiz_service
from server import seed
from server.county.periods import period_keys
from server.kernel.keys import DB
from tests.factories import auth, correct_answers, resident, staff_tokens

QUIZZES = "/api/v1/quizzes"
INTEGRITY = "/api/v1/admin/integrity"
TOWNSHIP = "450223102"  # the residents' township (tests.factories.DEMO_PROFILE)
PHONE = "helper-phone-0001"


@pytest.fixture
async def county(resident_client: Any) -> dict[str, str]:
    await seed.seed_demo(resident_client.app[DB], assessments=True)
    staff = await staff_tokens(resident_client)
    return {"analyst": staff.analyst, "admin": staff.admin, "editor": staff.editor}


async def proxy_assessments(client: Any, count: int) -> list[str]:
    """`count` residents' assessments answered at once from one phone (all right, no time
    spent): what a helper collecting a village's answers does. Returns the user ids."""
    users = []
    for n in range(count):
        token = await resident(client, f"proxy-{n}")
        started = await client.post(QUIZZES, json={"mode": "assessment"}, headers=auth(token))
        assert started.status == 201, await started.text()
        quiz = await started.json()
        answers = correct_answers(client, quiz)
        answers[0]["durations_ms"] = 900
        answers[1]["durations_ms"] = [400, 300]
        submitted = await client.post(
            f"{QUIZZES}/{quiz['quiz_id']}/submit",
            json={"answers": answers},
            headers={**auth(token), "X-Device-Id": PHONE},
        )
        assert submitted.status == 200, await submitted.text()
        me = await client.get("/api/v1/me", headers=auth(token))
        users.append(str((await me.json())["id"]))
    return users


async def month_respondents(client: Any, month: str) -> int:
    cells = await client.app[DB][cell_storage.CELLS].find({"period": month}).to_list()
    return sum(int(c["n"]) for c in cells)


async def literacy(client: Any, token: str, month: str) -> Any:
    response = await client.get(f"/api/v1/stats/literacy?period={month}", headers=auth(token))
    assert response.status == 200, await response.text()
    return await response.json()


async def screen(client: Any, token: str) -> Any:
    response = await client.post(f"{INTEGRITY}/screen", headers=auth(token))
    assert response.status == 200, await response.text()
    return await response.json()


async def open_strong_flags(client: Any, token: str, **query: str) -> list[Any]:
    params = "&".join(f"{k}={v}" for k, v in {"status": "open", "strong": "true", **query}.items())
    response = await client.get(f"{INTEGRITY}/flags?{params}&page_size=100", headers=auth(token))
    assert response.status == 200, await response.text()
    return list((await response.json())["items"])


async def decide(client: Any, token: str, flag_id: str, decision: str) -> Any:
    return await client.post(
        f"{INTEGRITY}/flags/{flag_id}/decision",
        json={"decision": decision, "reason": "核实：志愿者代答"},
        headers=auth(token),
    )


async def test_proxy_answering_is_flagged_reviewed_and_only_decisions_move_the_figures(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, analyst = resident_client, county["analyst"]
    db = client.app[DB]
    month = period_keys(datetime.now(UTC))["month"]
    before = await month_respondents(client, month)
    users = await proxy_assessments(client, 5)

    # Paradata: server time, client times in form order, salted hashes (never the raw id).
    stored = await db["attempts"].find({"user_id": {"$in": users}}).to_list()
    assert len(stored) == 5
    for attempt in stored:
        paradata = attempt["paradata"]
        assert 0 <= paradata["seconds"] < 30
        assert paradata["device_hash"] and PHONE not in json.dumps(paradata, default=str)
        assert paradata["ip_hash"] and "127.0.0" not in paradata["ip_hash"]
        assert paradata["helper_id"] is None
        assert len(paradata["durations_ms"]) == len(attempt["items"])
        assert sorted(d for d in paradata["durations_ms"] if d is not None) == [700, 900]
    assert len({a["paradata"]["device_hash"] for a in stored}) == 1
    assert await month_respondents(client, month) == before + 5  # flags alone change nothing

    summary = await screen(client, analyst)
    assert summary["screened"] >= 5 and summary["strong"] >= 5
    flags = await open_strong_flags(client, analyst, township=TOWNSHIP, period=month)
    ours = {flag_id_of(a["_id"]) for a in stored}
    found = {f["id"]: f for f in flags if f["id"] in ours}
    assert set(found) == ours
    for flag in found.values():
        codes = {r["code"] for r in flag["reasons"]}
        assert {"speeding", "shared_device"} <= codes, codes
        assert flag["score"] >= 0.5 and flag["status"] == "open" and flag["township_code"]
        assert flag["quiz_id"] and all(r["label"] and r["evidence"] for r in flag["reasons"])
    # Reviewers see evidence, never who: no resident's id or attempt id in the listing.
    listing = json.dumps(flags, ensure_ascii=False)
    assert not any(user in listing for user in users)
    # Honest demo respondents are (almost) never flagged strongly.
    demo_flags = [f for f in await open_strong_flags(client, analyst) if f["id"] not in ours]
    demo_attempts = await db["attempts"].count_documents({"demo": True})
    assert len(demo_flags) <= 0.01 * demo_attempts, [f["reasons"] for f in demo_flags][:3]

    figures = await literacy(client, analyst, month)
    row = next(r for r in figures["rows"] if r["key"] == TOWNSHIP)
    assert row["integrity"]["flagged"] >= 5 and row["integrity"]["excluded"] == 0
    assert figures["county"]["integrity"]["flagged"] >= row["integrity"]["flagged"]
    if not row["suppressed"]:
        band = row["sensitivity"]["outcome_selection"]
        assert set(band) == {"1.25", "1.5", "2"}
        share = row["weighted_share"]
        assert band["2"][0] <= band["1.5"][0] <= band["1.25"][0] <= share
        assert share <= band["1.25"][1] <= band["1.5"][1] <= band["2"][1]
        # the five all-right proxy answers lift the township: without them it is lower
        assert row["sensitivity"]["without_open_flags"] < share
    county_band = figures["county"]["sensitivity"]["outcome_selection"]["2"]
    assert county_band[0] < figures["county"]["weighted_share"] < county_band[1]
    assert "Γ" in figures["method"]

    # Exclusion takes the attempts out of the cells and the figures; nothing else does.
    for flag_id in ours:
        response = await decide(client, analyst, flag_id, "exclude")
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == "excluded"
    assert await month_respondents(client, month) == before
    assert await db["attempts"].count_documents({"user_id": {"$in": users}, "excluded": True}) == 5
    figures = await literacy(client, analyst, month)
    row = next(r for r in figures["rows"] if r["key"] == TOWNSHIP)
    assert row["integrity"]["excluded"] == 5

    # Reversible: keeping one brings it back; every decision stays in the flag's history.
    kept = sorted(ours)[0]
    response = await decide(client, county["admin"], kept, "keep")
    assert response.status == 200
    flag = await response.json()
    assert flag["status"] == "kept"
    assert [d["decision"] for d in flag["decisions"]] == ["exclude", "keep"]
    assert await month_respondents(client, month) == before + 1
    audit = await db["access_log"].count_documents({"action": "integrity_decision"})
    assert audit == 6

    # A rebuild of the cells and a rescreening respect the decisions.
    await quiz_service.rebuild_cells(db)
    assert await month_respondents(client, month) == before + 1
    await screen(client, analyst)
    response = await client.get(f"{INTEGRITY}/flags/{kept}", headers=auth(analyst))
    assert (await response.json())["status"] == "kept"
    excluded = await open_strong_flags(client, analyst, township=TOWNSHIP)
    assert not set(f["id"] for f in excluded) & ours


async def test_an_erased_residents_flag_keeps_its_evidence_but_not_the_quiz_id(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, analyst = resident_client, county["analyst"]
    [user_id, *_] = await proxy_assessments(client, 4)
    await screen(client, analyst)
    [attempt] = await client.app[DB]["attempts"].find({"user_id": user_id}).to_list()
    flag_path = f"{INTEGRITY}/flags/{flag_id_of(attempt['_id'])}"
    flag = await (await client.get(flag_path, headers=auth(analyst))).json()
    assert flag["quiz_id"] and flag["strong"]
    token = await resident(client, "proxy-0")  # the same WeChat user signs in again
    assert (await client.delete("/api/v1/me", headers=auth(token))).status == 204
    response = await client.get(flag_path, headers=auth(analyst))
    assert response.status == 200
    erased = await response.json()
    assert erased["quiz_id"] is None
    assert erased["reasons"] == flag["reasons"] and erased["status"] == "open"


async def test_racing_decisions_settle_the_cells_on_the_last_one(
    resident_client: Any, county: dict[str, str]
) -> None:
    client = resident_client
    month = period_keys(datetime.now(UTC))["month"]
    before = await month_respondents(client, month)
    await proxy_assessments(client, 4)
    await screen(client, county["analyst"])
    flags = await open_strong_flags(client, county["analyst"], township=TOWNSHIP)
    target = flags[0]["id"]
    tokens = [county["analyst"], county["admin"]]
    decisions = [
        decide(client, tokens[i % 2], target, "exclude" if i % 2 else "keep") for i in range(20)
    ]
    assert {r.status for r in await asyncio.gather(*decisions)} == {200}
    final = await (await client.get(f"{INTEGRITY}/flags/{target}", headers=auth(tokens[0]))).json()
    assert len(final["decisions"]) == 20
    expected = before + 4 - (1 if final["status"] == "excluded" else 0)
    assert await month_respondents(client, month) == expected
    cells = await client.app[DB][cell_storage.CELLS].find({"period": month}).to_list()
    for cell in cells:
        assert len(cell["applied"]) == len(set(cell["applied"])) == cell["n"]


async def test_arrival_screening_is_single_flight_and_moves_its_watermark(
    resident_client: Any, county: dict[str, str]
) -> None:
    db = resident_client.app[DB]
    await proxy_assessments(resident_client, 4)
    later = datetime.now(UTC) + integrity_service.SETTLE + timedelta(seconds=5)
    first, second = Screening(db), Screening(db)
    from scoring.integrity import storage

    assert await storage.take_lease(db, first.owner, later, later + timedelta(minutes=1))
    assert await second.pass_once(later) is None  # the lease is held
    await storage.release_lease(db, first.owner)
    summary = await second.pass_once(later)
    assert summary is not None and summary.strong >= 4
    state = await storage.screening_state(db)
    watermark = state["screened_until"].replace(tzinfo=UTC)  # BSON keeps milliseconds
    assert abs(watermark - (later - integrity_service.SETTLE)) < timedelta(milliseconds=1)
    assert state["night_at"] is not None  # the first pass also ran the nightly one
    again = await second.pass_once(later + timedelta(seconds=1))
    assert again is not None and again.screened == 0


async def test_review_input_is_checked(resident_client: Any, county: dict[str, str]) -> None:
    client, analyst = resident_client, county["analyst"]
    missing = await decide(client, analyst, "0" * 24, "exclude")
    assert missing.status == 404
    bad = [
        {"decision": "delete", "reason": "核实"},
        {"decision": "exclude"},
        {"decision": "exclude", "reason": "核实", "status": "kept"},
    ]
    for body in bad:
        response = await client.post(
            f"{INTEGRITY}/flags/{'0' * 24}/decision", json=body, headers=auth(analyst)
        )
        assert response.status == 422, body
    for query in ("status=gone", "period=2026-13", "period=2026-W60", "strong=maybe"):
        response = await client.get(f"{INTEGRITY}/flags?{query}", headers=auth(analyst))
        assert response.status == 422, query
    for role in ("editor",):
        response = await client.get(f"{INTEGRITY}/flags", headers=auth(county[role]))
        assert response.status == 403
    token = await resident(client, "durations")
    started = await client.post(QUIZZES, json={"mode": "practice"}, headers=auth(token))
    quiz = await started.json()
    answers = correct_answers(client, quiz)
    for value in (-1, [], [1] * 21, 3_600_001, "fast"):
        answers[0]["durations_ms"] = value
        response = await client.post(
            f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
        )
        assert response.status == 422, value


async def test_the_sweep_takes_out_an_excluded_attempt_a_dead_submit_had_counted(
    resident_client: Any, county: dict[str, str]
) -> None:
    """An exclusion lands while a submit is on its way; the submit applies the attempt to the
    cells and its process dies before settling. The sweep must take the attempt out."""
    from scoring.assessment import service as assessment_service

    client, db = resident_client, resident_client.app[DB]
    month = period_keys(datetime.now(UTC))["month"]
    before = await month_respondents(client, month)
    [user_id] = await proxy_assessments(client, 1)
    [attempt] = await db["attempts"].find({"user_id": user_id}).to_list()
    await db["attempts"].update_one(
        {"_id": attempt["_id"]}, {"$set": {"excluded": True, "cells_pending": True}}
    )
    await assessment_service.apply(db, attempt)  # what the dying submit did
    assert await month_respondents(client, month) == before + 1
    await quiz_service.count_uncounted(db, before=datetime.now(UTC) + timedelta(minutes=5))
    assert await month_respondents(client, month) == before


async def test_look_flags_screening_lease_and_erasure_of_device_hashes(
    resident_client: Any, county: dict[str, str]
) -> None:
    client, analyst, db = resident_client, county["analyst"], resident_client.app[DB]
    await proxy_assessments(client, 4)
    await screen(client, analyst)
    look = await client.get(f"{INTEGRITY}/flags?strong=false", headers=auth(analyst))
    assert all(not f["strong"] for f in (await look.json())["items"])
    # A pass running elsewhere holds the lease: the on-demand pass answers 409, not twice.
    from scoring.integrity import storage

    now = datetime.now(UTC)
    assert await storage.take_lease(db, "elsewhere", now, now + timedelta(minutes=5))
    busy = await client.post(f"{INTEGRITY}/screen", headers=auth(analyst))
    assert busy.status == 409 and (await busy.json())["error"]["code"] == "screening_running"
    await storage.release_lease(db, "elsewhere")
    assert await db["access_log"].count_documents({"action": "integrity_screen"}) == 1
    token = await resident(client, "proxy-0")
    assert (await client.delete("/api/v1/me", headers=auth(token))).status == 204
    [erased] = await db["attempts"].find({"anonymised": True}).to_list()
    assert "device_hash" not in erased["paradata"] and "ip_hash" not in erased["paradata"]
