"""Offline answering through HTTP (issue #17 item 3): a pack of practice quizzes valid for
seven days, answered without a connection and batch-submitted later, each stored once however
often the batch is sent; assessments never offline; late batches only within the grace."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from question_bank.keys import BANK
from scoring.quizzes import flow, offline_mode, tickets
from server.county.periods import period_keys
from server.kernel.keys import DB, SETTINGS
from server.kernel.settings import quiz_signing_key
from tests.factories import auth, correct_answers, resident

QUIZZES = "/api/v1/quizzes"
PACK = f"{QUIZZES}/offline-pack"
BATCH = f"{QUIZZES}/batch-submit"
DAY = 86400


def iso(moment: datetime) -> str:
    return moment.isoformat()


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def get_pack(client: Any, token: str, **body: Any) -> dict[str, Any]:
    response = await client.post(PACK, json=body, headers=auth(token))
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def send(client: Any, token: str, submissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await client.post(BATCH, json={"submissions": submissions}, headers=auth(token))
    assert response.status == 200, await response.text()
    return list((await response.json())["results"])


def answered(client: Any, quiz: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "quiz_id": quiz["quiz_id"],
        "answers": correct_answers(client, quiz),
        "answered_at": iso(at),
    }


def key_of(client: Any) -> bytes:
    return quiz_signing_key(client.app[SETTINGS])


def forged(
    client: Any,
    quiz: dict[str, Any],
    *,
    issued: float,
    deadline: float,
    mode: str = "practice",
    offline: bool = True,
) -> dict[str, Any]:
    """The same questions under a new ticket with the given times, signed with the app's
    key (as the server would have issued it then)."""
    ticket = tickets.decode(quiz["quiz_id"], key_of(client))
    again = tickets.Ticket(
        mode,
        ticket.user_id,
        int(issued),
        int(deadline),
        tickets.new_nonce(),
        ticket.questions,
        channel=ticket.channel,
        offline=offline,
    )
    return {**quiz, "quiz_id": tickets.encode(again, key_of(client))}


def hidden_text(client: Any, quiz: dict[str, Any]) -> list[str]:
    bank = client.app[BANK].published
    return [bank[q["id"]].explanation for q in quiz["questions"] if bank[q["id"]].explanation]


async def test_a_pack_holds_practice_quizzes_valid_seven_days_without_answer_keys(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "off-a")
    before = time.time()
    pack = await get_pack(resident_client, token)
    assert len(pack["quizzes"]) == 3, "three by default"
    raw = str(pack)
    seen: list[str] = []
    for quiz in pack["quizzes"]:
        assert quiz["mode"] == "practice" and len(quiz["questions"]) == 10
        assert quiz["deadline"] == pack["valid_until"]
        ticket = tickets.decode(quiz["quiz_id"], key_of(resident_client))
        assert ticket.offline and ticket.channel == "offline"
        assert ticket.deadline - ticket.issued_at == 7 * DAY
        for question in quiz["questions"]:
            assert set(question) == {"id", "type", "stem", "options"}
            seen.append(question["id"])
        for forbidden in hidden_text(resident_client, quiz):
            assert forbidden not in raw
    for forbidden in ("answer", "explanation", "dimension"):
        assert forbidden not in raw
    assert len(seen) == len(set(seen)), "no question twice in one pack"
    valid_until = datetime.fromisoformat(pack["valid_until"]).timestamp()
    assert before + 7 * DAY - 5 <= valid_until <= time.time() + 7 * DAY + 5
    assert await resident_client.app[DB]["attempts"].count_documents({}) == 0

    health = await get_pack(resident_client, token, count=1, topic="健康")
    assert len(health["quizzes"]) == 1
    assert all(
        resident_client.app[BANK].published[q["id"]].topic == "健康"
        for q in health["quizzes"][0]["questions"]
    )


async def test_answered_offline_the_batch_submits_once_even_if_sent_twice(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "off-b")
    pack = await get_pack(resident_client, token)
    # Taken home two days ago, answered yesterday evening and this morning.
    now = time.time()
    taken = [
        forged(resident_client, quiz, issued=now - 2 * DAY, deadline=now + 5 * DAY)
        for quiz in pack["quizzes"][:2]
    ]
    first_at, second_at = ago(20 * 3600), ago(3 * 3600)
    batch = [
        answered(resident_client, taken[0], first_at),
        answered(resident_client, taken[1], second_at),
    ]
    batch[1]["answers"][0]["durations_ms"] = 4200
    sent = await send(resident_client, token, batch)
    assert [r["status"] for r in sent] == ["accepted", "accepted"]
    assert [r["quiz_id"] for r in sent] == [s["quiz_id"] for s in batch]
    assert all(r["error"] is None and r["result"]["score"] == 100 for r in sent)
    assert sent[0]["result"]["quiz_id"] == batch[0]["quiz_id"]

    again = await send(resident_client, token, batch)
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert [r["result"] for r in again] == [r["result"] for r in sent], "identical results"

    db = resident_client.app[DB]
    stored = await db["attempts"].find({}).sort("answered_at", 1).to_list()
    assert len(stored) == 2
    for doc, at in zip(stored, (first_at, second_at), strict=True):
        assert doc["offline"] is True and doc["channel"] == "offline" and doc["mode"] == "practice"
        assert abs(doc["answered_at"].replace(tzinfo=UTC).timestamp() - at.timestamp()) < 0.01
        submitted = doc["submitted_at"].replace(tzinfo=UTC)
        assert submitted.timestamp() > at.timestamp(), "submitted_at is the server's receipt"
        assert doc["periods"] == period_keys(submitted)
        issued = doc["issued_at"].replace(tzinfo=UTC).timestamp()
        assert doc["paradata"]["offline"] is True
        assert doc["paradata"]["seconds"] == pytest.approx(at.timestamp() - issued, abs=0.1)
        assert doc["review"]["seconds"] == doc["paradata"]["seconds"]
    assert stored[1]["paradata"]["durations_ms"][0] == 4200

    board = await (
        await resident_client.get(
            "/api/v1/leaderboards?scope=county&period=all", headers=auth(token)
        )
    ).json()
    assert board["me"]["points"] == sum(r["result"]["points"] for r in sent) == 200
    history = await (await resident_client.get("/api/v1/me/attempts", headers=auth(token))).json()
    assert history["total"] == 2


async def test_a_mixed_batch_is_judged_submission_by_submission(resident_client: Any) -> None:
    token = await resident(resident_client, "off-c")
    other = await resident(resident_client, "off-c2")
    pack = await get_pack(resident_client, token, count=5)
    theirs = (await get_pack(resident_client, other, count=1))["quizzes"][0]
    assessment = await (
        await resident_client.post(QUIZZES, json={"mode": "assessment"}, headers=auth(token))
    ).json()
    daily = await (
        await resident_client.post(QUIZZES, json={"mode": "daily"}, headers=auth(token))
    ).json()
    now = time.time()
    ok, q1, q2, q3, q4 = pack["quizzes"]
    # Valid until two days ago: within the three days' grace, answered while it was valid.
    late_but_in_grace = forged(resident_client, q1, issued=now - 9 * DAY, deadline=now - 2 * DAY)
    # Valid until four days ago: past the grace, never submitted before.
    past_grace = forged(resident_client, q2, issued=now - 11 * DAY, deadline=now - 4 * DAY)
    # The same times, but answered a day after its deadline.
    answered_too_late = forged(resident_client, q1, issued=now - 9 * DAY, deadline=now - 2 * DAY)
    # An assessment can't be made offline by any ticket (the flag is the server's, but even
    # a ticket carrying it for an assessment is refused).
    flagged_assessment = forged(
        resident_client, assessment, issued=now - 60, deadline=now + DAY, mode="assessment"
    )
    sent = await send(
        resident_client,
        token,
        [
            answered(resident_client, ok, ago(60)),
            answered(resident_client, theirs, ago(60)),
            {"quiz_id": "not-a-ticket", "answers": [], "answered_at": iso(ago(60))},
            answered(resident_client, assessment, ago(60)),
            answered(resident_client, flagged_assessment, ago(30)),
            answered(resident_client, daily, ago(5)),
            answered(resident_client, late_but_in_grace, ago(3 * DAY)),
            answered(resident_client, past_grace, ago(6 * DAY)),
            answered(resident_client, q3, datetime.now(UTC) + timedelta(hours=1)),
            answered(resident_client, q4, ago(3600)),  # before the pack was issued
            answered(resident_client, answered_too_late, ago(DAY)),
        ],
    )
    statuses = [(r["status"], r["error"] and r["error"]["code"]) for r in sent]
    assert statuses == [
        ("accepted", None),
        ("rejected", "quiz_not_found"),
        ("rejected", "quiz_not_found"),
        ("rejected", "offline_not_allowed"),
        ("rejected", "offline_not_allowed"),
        ("rejected", "offline_not_allowed"),
        ("accepted", None),
        ("rejected", "quiz_expired"),
        ("rejected", "answered_in_future"),
        ("rejected", "answered_before_issue"),
        ("rejected", "quiz_expired"),
    ]
    assert "测评" in sent[3]["error"]["message"] and "离线" in sent[3]["error"]["message"]
    assert all(r["result"] is None for r in sent if r["status"] == "rejected")
    assert all(
        any("\u4e00" <= c <= "\u9fff" for c in r["error"]["message"]) for r in sent if r["error"]
    ), "messages in Chinese"

    db = resident_client.app[DB]
    stored = await db["attempts"].find({}).to_list()
    assert len(stored) == 2, "only the accepted ones are stored"
    assert {d["quiz_id"] for d in stored} == {ok["quiz_id"], late_but_in_grace["quiz_id"]}
    late = next(d for d in stored if d["quiz_id"] == late_but_in_grace["quiz_id"])
    received = late["submitted_at"].replace(tzinfo=UTC)
    assert late["periods"] == period_keys(received), "points count when the batch arrives"
    assert late["periods"]["day"] != period_keys(ago(3 * DAY))["day"]

    # The assessment is still the month's own, to be taken online.
    online = await resident_client.post(
        f"{QUIZZES}/{assessment['quiz_id']}/submit",
        json={"answers": correct_answers(resident_client, assessment)},
        headers=auth(token),
    )
    assert online.status == 200


async def test_a_stored_quiz_stays_a_duplicate_after_the_grace_period(
    resident_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await resident(resident_client, "off-d")
    quiz = (await get_pack(resident_client, token, count=1))["quizzes"][0]
    now = time.time()
    late = forged(resident_client, quiz, issued=now - 9 * DAY, deadline=now - 2 * DAY)
    batch = [answered(resident_client, late, ago(3 * DAY))]
    first = await send(resident_client, token, batch)
    assert first[0]["status"] == "accepted"
    # A day's grace instead of three: the same quiz is now past it, but it was stored.
    monkeypatch.setattr(flow, "OFFLINE_GRACE_SECONDS", DAY)
    monkeypatch.setattr(offline_mode, "OFFLINE_GRACE_SECONDS", DAY)
    again = await send(resident_client, token, batch)
    assert again[0]["status"] == "duplicate" and again[0]["result"] == first[0]["result"]
    unseen = forged(resident_client, quiz, issued=now - 9 * DAY, deadline=now - 2 * DAY)
    refused = await send(resident_client, token, [answered(resident_client, unseen, ago(3 * DAY))])
    assert refused[0]["status"] == "rejected" and refused[0]["error"]["code"] == "quiz_expired"
    assert await resident_client.app[DB]["attempts"].count_documents({}) == 1


async def test_the_same_quiz_twice_in_one_batch_is_stored_once(resident_client: Any) -> None:
    token = await resident(resident_client, "off-e")
    quiz = (await get_pack(resident_client, token, count=1))["quizzes"][0]
    right = answered(resident_client, quiz, ago(60))
    wrong = {**right, "answers": [], "answered_at": iso(ago(10))}
    sent = await send(resident_client, token, [right, wrong])
    assert [r["status"] for r in sent] == ["accepted", "duplicate"]
    assert sent[1]["result"] == sent[0]["result"] and sent[0]["result"]["score"] == 100
    assert await resident_client.app[DB]["attempts"].count_documents({}) == 1


async def test_two_copies_of_a_batch_racing_store_each_quiz_once(resident_client: Any) -> None:
    token = await resident(resident_client, "off-f")
    pack = await get_pack(resident_client, token)
    batch = [answered(resident_client, q, ago(60 + i)) for i, q in enumerate(pack["quizzes"])]
    one, two = await asyncio.gather(
        send(resident_client, token, batch), send(resident_client, token, batch)
    )
    for a, b in zip(one, two, strict=True):
        assert sorted([a["status"], b["status"]]) == ["accepted", "duplicate"]
        assert a["result"] == b["result"]
    db = resident_client.app[DB]
    assert await db["attempts"].count_documents({}) == 3
    board = await (
        await resident_client.get(
            "/api/v1/leaderboards?scope=county&period=all", headers=auth(token)
        )
    ).json()
    assert board["me"]["points"] == 300, "points counted once per quiz"


async def test_the_ordinary_submit_takes_an_offline_quiz_once_and_the_batch_agrees(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "off-g")
    quiz = (await get_pack(resident_client, token, count=1))["quizzes"][0]
    path = f"{QUIZZES}/{quiz['quiz_id']}/submit"
    body = {"answers": correct_answers(resident_client, quiz)}
    online = await resident_client.post(path, json=body, headers=auth(token))
    assert online.status == 200
    result = await online.json()
    repeat = await resident_client.post(path, json={"answers": []}, headers=auth(token))
    assert await repeat.json() == result
    sent = await send(resident_client, token, [answered(resident_client, quiz, ago(5))])
    assert sent[0]["status"] == "duplicate" and sent[0]["result"] == result
    stored = await resident_client.app[DB]["attempts"].find({}).to_list()
    assert len(stored) == 1 and stored[0]["offline"] is True and stored[0]["answered_at"]


async def test_the_ordinary_submit_gives_offline_quizzes_the_same_grace(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "off-h")
    quiz = (await get_pack(resident_client, token, count=1))["quizzes"][0]
    now = time.time()
    # Valid until yesterday: within the offline grace (the phone found a network today).
    old = forged(resident_client, quiz, issued=now - 8 * DAY, deadline=now - DAY)
    response = await resident_client.post(
        f"{QUIZZES}/{old['quiz_id']}/submit",
        json={"answers": correct_answers(resident_client, old)},
        headers=auth(token),
    )
    assert response.status == 200
    plain = forged(resident_client, quiz, issued=now - 8 * DAY, deadline=now - DAY, offline=False)
    expired = await resident_client.post(
        f"{QUIZZES}/{plain['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    assert expired.status == 409, "the grace of days is for offline tickets only"


async def test_malformed_requests_are_422_in_chinese_and_store_nothing(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "off-i")
    pack = await get_pack(resident_client, token, count=1)
    one = answered(resident_client, pack["quizzes"][0], ago(60))

    async def refused(path: str, body: Any, field: str) -> None:
        response = await resident_client.post(path, json=body, headers=auth(token))
        assert response.status == 422, (body, await response.text())
        error = (await response.json())["error"]
        assert any("\u4e00" <= c <= "\u9fff" for c in error["message"]), error
        assert error["details"][0]["field"] == field, error

    await refused(PACK, {"count": 0}, "count")
    await refused(PACK, {"count": 6}, "count")
    await refused(PACK, {"count": 2, "mode": "assessment"}, "mode")
    await refused(PACK, {"topic": "不存在的主题"}, "topic")
    await refused(BATCH, {"submissions": [one] * 21}, "submissions")
    await refused(BATCH, {"submissions": []}, "submissions")
    await refused(BATCH, {"submissions": [one], "extra": 1}, "extra")
    await refused(BATCH, {"submissions": [{**one, "offline": True}]}, "submissions.0.offline")
    await refused(
        BATCH,
        {"submissions": [{**one, "answered_at": "2025-03-01T08:30:00"}]},
        "submissions.0.answered_at",
    )
    await refused(
        BATCH, {"submissions": [{**one, "answered_at": 1_700_000_000}]}, "submissions.0.answered_at"
    )
    await refused(
        BATCH, {"submissions": [{**one, "answered_at": "昨天"}]}, "submissions.0.answered_at"
    )
    await refused(
        BATCH,
        {"submissions": [{"quiz_id": one["quiz_id"], "answers": []}]},
        "submissions.0.answered_at",
    )
    assert await resident_client.app[DB]["attempts"].count_documents({}) == 0


@pytest.mark.parametrize("channel", ["offline", "assisted", "paper", "self", "Offline"])
async def test_residents_cannot_claim_the_servers_own_channels(
    resident_client: Any, channel: str
) -> None:
    token = await resident(resident_client, f"off-j-{channel}")
    response = await resident_client.post(
        QUIZZES, json={"mode": "practice", "channel": channel}, headers=auth(token)
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["details"][0]["field"] == "channel" and "渠道代码不能为" in error["message"]
    fine = await resident_client.post(
        QUIZZES, json={"mode": "practice", "channel": "village-07"}, headers=auth(token)
    )
    assert fine.status == 201


def test_the_offline_flag_round_trips_and_older_tickets_still_decode() -> None:
    key, oid = b"k" * 32, "0123456789abcdef01234567"
    refs = (tickets.QuizRef(oid, 3, ("B", "A", "C")),)
    offline = tickets.Ticket(
        "practice",
        oid,
        1_700_000_000,
        1_700_604_800,
        "a1b2c3d4e5f6",
        refs,
        "offline",
        "健康",
        offline=True,
    )
    assert tickets.decode(tickets.encode(offline, key), key) == offline
    plain = tickets.Ticket(
        "practice", oid, 1_700_000_000, 1_700_000_600, "a1b2c3d4e5f6", refs, "vc01", "健康"
    )
    # Encoded by the code before the flag existed (version 1): decodes, not offline, and a
    # ticket without the flag is still written exactly so (older processes accept it).
    before = "AQEBI0VniavN7wEjRWdlU_EAZVPzWKGyw9Tl9gEBI0VniavN7wEjRWcAAxAv_wR2YzAxBuWBpeW6t4hNja-hYwbIxAK1z5yK8Ww"
    assert tickets.decode(before, key) == plain and not tickets.decode(before, key).offline
    assert tickets.encode(plain, key) == before
