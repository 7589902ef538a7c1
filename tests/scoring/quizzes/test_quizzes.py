"""Residents take quizzes through HTTP: what they see, scoring, idempotent submits, expiry,
other residents' quizzes, elderly-friendly rules, points and item statistics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from question_bank.keys import BANK
from scoring.quizzes import tickets
from server.kernel.keys import DB, KV, SETTINGS
from server.kernel.settings import quiz_signing_key
from tests.factories import auth, correct_answers, fold_item_stats, resident

QUIZZES = "/api/v1/quizzes"


async def start(client: Any, token: str, **body: Any) -> Any:
    return await client.post(QUIZZES, json={"mode": "daily", **body}, headers=auth(token))


def hidden_text(client: Any, quiz: dict[str, Any]) -> list[str]:
    bank = client.app[BANK].published
    return [bank[q["id"]].explanation for q in quiz["questions"] if bank[q["id"]].explanation]


async def test_quiz_shows_no_answer_explanation_or_dimension(resident_client: Any) -> None:
    token = await resident(resident_client, "a")
    response = await start(resident_client, token)
    assert response.status == 201
    quiz = await response.json()
    raw = await response.text()
    assert len(quiz["questions"]) == 5
    for question in quiz["questions"]:
        assert set(question) == {"id", "type", "stem", "options"}
        assert [o["key"] for o in question["options"]] == list("ABCDEF"[: len(question["options"])])
    for forbidden in ("answer", "explanation", "dimension", *hidden_text(resident_client, quiz)):
        assert forbidden not in raw
    dimensions = {resident_client.app[BANK].published[q["id"]].dimension for q in quiz["questions"]}
    assert len(dimensions) == 4, "a daily quiz mixes the four dimensions"


async def test_daily_quiz_is_the_same_until_submitted_then_done(resident_client: Any) -> None:
    token = await resident(resident_client, "b")
    first = await (await start(resident_client, token)).json()
    second = await (await start(resident_client, token)).json()
    assert first == second
    submitted = await resident_client.post(
        f"{QUIZZES}/{first['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    assert submitted.status == 200
    again = await start(resident_client, token)
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_done"


async def test_scoring_maps_shuffled_options_back(resident_client: Any) -> None:
    token = await resident(resident_client, "c")
    quiz = await (await start(resident_client, token, mode="practice", topic="健康")).json()
    assert len(quiz["questions"]) == 10
    assert all(
        resident_client.app[BANK].published[q["id"]].topic == "健康" for q in quiz["questions"]
    )
    answers = correct_answers(resident_client, quiz)
    answers[0]["choice"] = [k for k in "ABCD" if [k] != answers[0]["choice"]][
        :1
    ]  # one wrong on purpose
    result = await (
        await resident_client.post(
            f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
        )
    ).json()
    assert result["correct_count"] == 9 and result["max_score"] == 100 and result["score"] == 90
    by_id = {r["question_id"]: r for r in result["results"]}
    first = quiz["questions"][0]["id"]
    assert by_id[first]["correct"] is False
    expected = correct_answers(resident_client, quiz)[0]["choice"]
    assert by_id[first]["answer"] == expected, "the key is given in the keys the resident saw"
    assert by_id[first]["explanation"] == resident_client.app[BANK].published[first].explanation


async def test_repeated_submits_store_once_and_answer_identically(resident_client: Any) -> None:
    token = await resident(resident_client, "d")
    quiz = await (await start(resident_client, token, mode="practice")).json()
    path = f"{QUIZZES}/{quiz['quiz_id']}/submit"
    body = {"answers": correct_answers(resident_client, quiz)}
    concurrent = await asyncio.gather(
        *(resident_client.post(path, json=body, headers=auth(token)) for _ in range(6))
    )
    assert {r.status for r in concurrent} == {200}
    responses = [await r.json() for r in concurrent]
    later = await (
        await resident_client.post(path, json={"answers": []}, headers=auth(token))
    ).json()
    assert all(r == responses[0] for r in [*responses, later])
    db = resident_client.app[DB]
    assert await db["attempts"].count_documents({}) == 1
    board = await (
        await resident_client.get(
            "/api/v1/leaderboards?scope=county&period=all", headers=auth(token)
        )
    ).json()
    assert board["items"][0]["points"] == responses[0]["points"] == 100
    await fold_item_stats(db)
    stats = await db["item_stats"].find_one({"question_id": quiz["questions"][0]["id"]})
    assert stats["n"] == 1, "item statistics count the attempt once"


async def test_other_residents_quiz_is_404(resident_client: Any) -> None:
    owner, other = await resident(resident_client, "e"), await resident(resident_client, "f")
    quiz = await (await start(resident_client, owner)).json()
    response = await resident_client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": []}, headers=auth(other)
    )
    assert response.status == 404
    await resident_client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": []}, headers=auth(owner)
    )
    mine = await (await resident_client.get("/api/v1/me/attempts", headers=auth(owner))).json()
    theirs = await (await resident_client.get("/api/v1/me/attempts", headers=auth(other))).json()
    assert mine["total"] == 1 and theirs["total"] == 0
    forged = quiz["quiz_id"][:-3] + ("AAA" if not quiz["quiz_id"].endswith("AAA") else "BBB")
    assert (
        await resident_client.post(
            f"{QUIZZES}/{forged}/submit", json={"answers": []}, headers=auth(owner)
        )
    ).status == 404


async def test_expired_quiz_is_409(resident_client: Any) -> None:
    token = await resident(resident_client, "g")
    quiz = await (await start(resident_client, token, mode="practice")).json()
    key = quiz_signing_key(resident_client.app[SETTINGS])
    ticket = tickets.decode(quiz["quiz_id"], key)
    past = int(time.time()) - 3600
    expired = tickets.encode(
        tickets.Ticket(
            ticket.mode, ticket.user_id, past - 600, past, tickets.new_nonce(), ticket.questions
        ),
        key,
    )
    response = await resident_client.post(
        f"{QUIZZES}/{expired}/submit", json={"answers": []}, headers=auth(token)
    )
    assert response.status == 409 and (await response.json())["error"]["code"] == "quiz_expired"


async def test_malformed_submissions_are_422_naming_the_field(resident_client: Any) -> None:
    token = await resident(resident_client, "h")
    quiz = await (await start(resident_client, token)).json()
    path = f"{QUIZZES}/{quiz['quiz_id']}/submit"
    missing = await resident_client.post(path, json={}, headers=auth(token))
    assert (
        missing.status == 422
        and (await missing.json())["error"]["details"][0]["field"] == "answers"
    )
    bad_key = await resident_client.post(
        path,
        json={"answers": [{"question_id": quiz["questions"][0]["id"], "choice": ["Z"]}]},
        headers=auth(token),
    )
    assert (await bad_key.json())["error"]["details"][0]["field"] == "answers.0.choice.0"
    foreign = await resident_client.post(
        path, json={"answers": [{"question_id": "0" * 24, "choice": ["A"]}]}, headers=auth(token)
    )
    assert foreign.status == 422
    assert (await foreign.json())["error"]["details"][0]["field"] == "answers.0.question_id"
    assert await resident_client.app[DB]["attempts"].count_documents({}) == 0


async def test_elderly_get_fewer_options_no_multiple_and_more_time(resident_client: Any) -> None:
    elder = await resident(resident_client, "i", {"group": "elderly", "birth_year": 1950})
    farmer = await resident(resident_client, "j")
    for _ in range(3):
        quiz = await (await start(resident_client, elder, mode="practice")).json()
        assert all(len(q["options"]) <= 3 for q in quiz["questions"] if q["type"] == "single")
    daily = await (await start(resident_client, elder)).json()
    assert all(q["type"] != "multiple" for q in daily["questions"])
    young = await (await start(resident_client, farmer)).json()
    from datetime import datetime

    def minutes(quiz: dict[str, Any]) -> float:
        return (
            datetime.fromisoformat(quiz["deadline"])
            - datetime.now(datetime.fromisoformat(quiz["deadline"]).tzinfo)
        ).total_seconds() / 60

    assert minutes(daily) > 15 > minutes(young) > 5


async def test_contest_once_per_window(resident_client: Any) -> None:
    token = await resident(resident_client, "k")
    quiz = await (await start(resident_client, token, mode="contest")).json()
    assert len(quiz["questions"]) == 20
    await resident_client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    again = await start(resident_client, token, mode="contest")
    assert again.status == 409


async def test_instant_submission_is_flagged_not_rejected(resident_client: Any) -> None:
    token = await resident(resident_client, "l")
    quiz = await (await start(resident_client, token, mode="practice")).json()
    response = await resident_client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit",
        json={"answers": correct_answers(resident_client, quiz)},
        headers=auth(token),
    )
    assert response.status == 200
    stored = await resident_client.app[DB]["attempts"].find_one({})
    assert stored["review"]["too_fast"] is True


async def test_leaderboard_is_rebuilt_from_mongodb_when_redis_loses_it(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "m")
    quiz = await (await start(resident_client, token, mode="practice")).json()
    await resident_client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit",
        json={"answers": correct_answers(resident_client, quiz)},
        headers=auth(token),
    )
    kv = resident_client.app[KV]
    before = await (
        await resident_client.get(
            "/api/v1/leaderboards?scope=township&period=week", headers=auth(token)
        )
    ).json()
    async for key in kv.redis.scan_iter(match=kv.tagged("lb", "*")):
        await kv.redis.delete(key)  # as if Redis restarted without its data
    after = await (
        await resident_client.get(
            "/api/v1/leaderboards?scope=township&period=week", headers=auth(token)
        )
    ).json()
    assert (
        after["items"] == before["items"]
        and after["items"][0]["points"] == 100
        and after["me"]["rank"] == 1
    )
    ranking = await (
        await resident_client.get("/api/v1/leaderboards/townships", headers=auth(token))
    ).json()
    top = ranking["items"][0]
    assert top["code"] == "450223102" and top["participants"] == 1 and top["per_1000"] > 0


async def test_deleting_the_account_erases_personal_data_and_keeps_anonymous_answers(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "o")
    quiz = await (await start(resident_client, token)).json()
    await resident_client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    assert (await resident_client.delete("/api/v1/me", headers=auth(token))).status == 204
    db = resident_client.app[DB]
    user = await db["users"].find_one({"role": "resident", "deleted_at": {"$ne": None}})
    assert "openid" not in user and "unionid" not in user and user["profile"] == {}
    attempt = await db["attempts"].find_one({})
    assert attempt["user_id"] is None and attempt["anonymised"] is True
    assert "quiz_id" not in attempt, "the signed quiz id carries the user id"
    assert "once_key" not in attempt, "the once-per-period key starts with the user id"
    assert attempt["profile"]["township_code"] == "450223102", "kept for statistics"
    assert (await resident_client.get("/api/v1/me", headers=auth(token))).status == 401
    # Idempotent: a retry (its first answer lost on a flaky network) is answered the same.
    assert (await resident_client.delete("/api/v1/me", headers=auth(token))).status == 204
    assert (await resident_client.get("/api/v1/me", headers=auth(token))).status == 401
    assert await db["sessions"].count_documents({"user_id": str(user["_id"])}) == 0
    # Another revoked or made-up token still gets 401 from the deletion route.
    assert (await resident_client.delete("/api/v1/me", headers=auth("nope"))).status == 401
    again = await (await resident_client.post("/api/v1/auth/wechat", json={"code": "ok-o"})).json()
    assert again["is_new"] is True


async def test_300_residents_submitting_at_once_are_all_stored_once(resident_client: Any) -> None:
    """A contest burst: 300 residents submit practice quizzes at the same moment (each tap
    sent twice, as a flaky network retries). Every submit gets its result, every attempt is
    stored exactly once, and each resident's points reach the county board once."""
    tokens = [await resident(resident_client, f"burst{i}") for i in range(300)]
    quizzes = []
    for token in tokens:
        started = await resident_client.post(
            "/api/v1/quizzes", json={"mode": "practice"}, headers=auth(token)
        )
        assert started.status == 201
        quizzes.append(await started.json())

    async def submit(token: str, quiz: dict[str, Any]) -> Any:
        return await resident_client.post(
            f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
            json={"answers": correct_answers(resident_client, quiz)},
            headers=auth(token),
        )

    replies = await asyncio.gather(
        *(submit(t, q) for t, q in zip(tokens, quizzes, strict=True) for _ in range(2))
    )
    assert sorted({reply.status for reply in replies}) == [200]
    bodies = [await reply.json() for reply in replies]
    assert all(a == b for a, b in zip(bodies[::2], bodies[1::2], strict=True)), "replays differ"
    db = resident_client.app[DB]
    assert await db["attempts"].count_documents({"mode": "practice"}) == 300
    board = await resident_client.get(
        "/api/v1/leaderboards?scope=county&period=all&page_size=100", headers=auth(tokens[0])
    )
    assert board.status == 200
    assert (await board.json())["total"] == 300


async def test_rotating_the_signing_key_keeps_quizzes_in_flight_valid(
    resident_client: Any, client_for: Any, services: Any, wechat: Any
) -> None:
    """A quiz started before QUIZ_SIGNING_KEY changes can still be submitted while the old key
    is QUIZ_SIGNING_KEY_PREVIOUS; new quizzes are signed with the new key; without the
    previous key the old quiz is unknown (404), like a forged one."""
    from tests.conftest import make_settings

    token = await resident(resident_client, "rotate")
    old_quiz = await (await start(resident_client, token, mode="practice")).json()
    old_key = resident_client.app[SETTINGS].quiz_signing_key.get_secret_value()
    new_key = "rotated-quiz-signing-key-" + "n" * 32
    base = {"wechat_api_base": wechat.url, "mongodb_db": resident_client.app[SETTINGS].mongodb_db}
    base["redis_prefix"] = resident_client.app[SETTINGS].redis_prefix
    rotated = await client_for(
        make_settings(services, quiz_signing_key=new_key, quiz_signing_key_previous=old_key, **base)
    )
    await rotated.app[BANK].load(rotated.app[DB])
    without_previous = await client_for(make_settings(services, quiz_signing_key=new_key, **base))
    await without_previous.app[BANK].load(without_previous.app[DB])

    answers = {"answers": correct_answers(resident_client, old_quiz)}
    path = f"{QUIZZES}/{old_quiz['quiz_id']}/submit"
    refused = await without_previous.post(path, json=answers, headers=auth(token))
    assert refused.status == 404
    accepted = await rotated.post(path, json=answers, headers=auth(token))
    assert accepted.status == 200 and (await accepted.json())["score"] == 100
    new_quiz = await (await start(rotated, token, mode="practice")).json()
    with pytest.raises(tickets.InvalidTicket):
        tickets.decode(new_quiz["quiz_id"], old_key.encode())
    assert tickets.decode(new_quiz["quiz_id"], new_key.encode()).user_id
