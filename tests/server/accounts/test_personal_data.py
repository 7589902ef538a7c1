"""The resident's rights over their data (PIPL): a full copy on request, audited, with no
secret in it; deletion forgets what they read as well as who they are."""

from __future__ import annotations

from typing import Any

from content.keys import ARTICLES
from server.kernel.keys import DB, KV
from tests.factories import auth, correct_answers, resident

EXPORT = "/api/v1/me/export"


async def test_the_export_holds_profile_answers_scores_and_reading_and_is_audited(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "export")
    other = await resident(resident_client, "someone-else")
    started = await resident_client.post(
        "/api/v1/quizzes", json={"mode": "practice"}, headers=auth(token)
    )
    quiz = await started.json()
    answers = correct_answers(resident_client, quiz)
    answers[0]["choice"] = ["A"] if answers[0]["choice"] != ["A"] else ["B"]  # one wrong
    submitted = await resident_client.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
    )
    assert submitted.status == 200
    article = next(iter(resident_client.app[ARTICLES].published))
    assert (
        await resident_client.get(f"/api/v1/articles/{article}", headers=auth(token))
    ).status == 200
    await resident_client.post(  # another resident's attempt must not appear
        "/api/v1/quizzes", json={"mode": "practice"}, headers=auth(other)
    )

    reply = await resident_client.get(EXPORT, headers=auth(token))
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    export = await reply.json()
    raw = await reply.text()
    account = export["account"]
    assert account["profile"]["township_code"] == "450223102" and account["wechat_linked"]
    [attempt] = export["attempts"]
    assert attempt["quiz_id"] == quiz["quiz_id"] and attempt["mode"] == "practice"
    assert attempt["score"] == (await submitted.json())["score"]
    first = next(r for r in attempt["results"] if r["question_id"] == answers[0]["question_id"])
    assert first["your_answer"] == answers[0]["choice"] and first["correct"] is False
    assert [a["id"] for a in export["articles_read"]] == [article]
    for secret in ("oid-export", "uid-export", "SESSIONKEY", token):
        assert secret not in raw

    logged = await resident_client.app[DB]["access_log"].find({"action": "export"}).to_list()
    assert [(r["actor"], r["subject"]) for r in logged] == [(account["id"], account["id"])]


async def test_deleting_the_account_forgets_what_the_resident_read(resident_client: Any) -> None:
    token = await resident(resident_client, "reader")
    article = next(iter(resident_client.app[ARTICLES].published))
    await resident_client.get(f"/api/v1/articles/{article}", headers=auth(token))
    me = await (await resident_client.get("/api/v1/me", headers=auth(token))).json()
    kv = resident_client.app[KV]
    assert await kv.redis.exists(kv.key("read", me["id"]))
    assert (await resident_client.delete("/api/v1/me", headers=auth(token))).status == 204
    assert not await kv.redis.exists(kv.key("read", me["id"]))
    erased = await resident_client.app[DB]["access_log"].find({"action": "erase"}).to_list()
    assert [(r["actor"], r["subject"]) for r in erased] == [(me["id"], me["id"])]
    assert (await resident_client.get(EXPORT, headers=auth(token))).status == 401


async def test_consent_to_the_privacy_notice_is_recorded_and_reported_at_login(
    resident_client: Any,
) -> None:
    from tests.factories import DEMO_PROFILE

    first = await (await resident_client.post("/api/v1/auth/wechat", json={"code": "ok-c"})).json()
    current = first["user"]["privacy"]["current_version"]
    assert first["user"]["privacy"] == {
        "current_version": current,
        "accepted_version": None,
        "accepted": False,
    }
    token = first["token"]
    stale = await resident_client.put(
        "/api/v1/me", json={**DEMO_PROFILE, "consent_version": "2000-01"}, headers=auth(token)
    )
    assert stale.status == 422
    assert (await stale.json())["error"]["details"][0]["field"] == "consent_version"
    accepted = await resident_client.put(
        "/api/v1/me", json={**DEMO_PROFILE, "consent_version": current}, headers=auth(token)
    )
    assert accepted.status == 200
    assert (await accepted.json())["privacy"]["accepted"] is True
    assert "consent_version" not in (await accepted.json())["profile"]
    again = await (await resident_client.post("/api/v1/auth/wechat", json={"code": "ok-c"})).json()
    assert again["user"]["privacy"]["accepted_version"] == current
    export = await (await resident_client.get(EXPORT, headers=auth(again["token"]))).json()
    assert [c["version"] for c in export["account"]["consents"]] == [current]


async def test_a_resident_under_14_needs_a_guardians_consent(resident_client: Any) -> None:
    from datetime import datetime

    from tests.factories import DEMO_PROFILE

    token = await resident(resident_client, "adult")
    child = {**DEMO_PROFILE, "birth_year": datetime.now().year - 10, "group": "youth"}
    refused = await resident_client.put("/api/v1/me", json=child, headers=auth(token))
    assert refused.status == 422
    assert (await refused.json())["error"]["code"] == "guardian_consent_required"
    allowed = await resident_client.put(
        "/api/v1/me", json={**child, "guardian_consent": True}, headers=auth(token)
    )
    assert allowed.status == 200 and (await allowed.json())["profile"]["guardian_consent"] is True
    teenager = {**DEMO_PROFILE, "birth_year": datetime.now().year - 15, "group": "youth"}
    assert (
        await resident_client.put("/api/v1/me", json=teenager, headers=auth(token))
    ).status == 200


async def test_downloads_of_figures_and_questions_are_audited(
    resident_client: Any, staff_in: Any
) -> None:
    report = await resident_client.get("/api/v1/stats/export", headers=auth(staff_in.analyst))
    assert report.status == 200
    questions = await resident_client.get(
        "/api/v1/admin/questions/export?format=csv", headers=auth(staff_in.editor)
    )
    assert questions.status == 200
    logged = await resident_client.app[DB]["access_log"].find({"action": "download"}).to_list()
    assert sorted((r["role"], r["subject"]) for r in logged) == [
        ("analyst", "literacy_report"),
        ("editor", "questions"),
    ]
    assert all(r["actor"] and r["at"] for r in logged)
