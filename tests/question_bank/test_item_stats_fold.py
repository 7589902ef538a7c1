"""Item statistics count every stored answer exactly once: concurrent submits and retries,
concurrent folds, a fold that died half-way, submits that never stored their attempt, and
several app processes on one database."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from question_bank import item_stats_fold, storage
from question_bank import service as question_service
from question_bank.item_stats import batch_increments, pending_entry
from question_bank.item_stats_fold import fold_once
from scoring.quizzes.keys import ATTEMPT_WRITER
from server.kernel.clock import now
from server.kernel.keys import DB, SETTINGS
from tests.factories import auth, correct_answers, fold_item_stats, resident

QUIZZES = "/api/v1/quizzes"


async def fold_all(db: Any) -> None:
    await fold_item_stats(db)


async def start_quiz(client: Any, token: str) -> dict[str, Any]:
    response = await client.post(QUIZZES, json={"mode": "practice"}, headers=auth(token))
    assert response.status == 201, await response.text()
    quiz: dict[str, Any] = await response.json()
    return quiz


async def submit(client: Any, token: str, quiz: dict[str, Any], n: int) -> Any:
    """Answer some items right and leave others out, varying with `n`, so marks differ."""
    answers = [a for j, a in enumerate(correct_answers(client, quiz)) if (n + j) % 3]
    response = await client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def expected_from_attempts(db: Any) -> dict[str, tuple[int, float]]:
    """Per "question:version": the answers stored in attempts and the sum of their marks."""
    counts: Counter[str] = Counter()
    marks: Counter[str] = Counter()
    async for attempt in db["attempts"].find({}, {"items": 1}):
        for item in attempt["items"]:
            key = storage.item_id(item["question_id"], item["version"])
            counts[key] += 1
            marks[key] += item["mark"]
    return {key: (counts[key], round(marks[key], 6)) for key in counts}


async def counted(db: Any) -> dict[str, tuple[int, float]]:
    docs = await db["item_stats"].find({}, {"n": 1, "sx": 1}).to_list()
    return {doc["_id"]: (doc.get("n", 0), round(doc.get("sx", 0), 6)) for doc in docs}


async def test_concurrent_submits_and_retries_count_each_answer_once(resident_client: Any) -> None:
    client, db = resident_client, resident_client.app[DB]
    tokens = await asyncio.gather(*(resident(client, f"fold{i}") for i in range(30)))
    quizzes = await asyncio.gather(*(start_quiz(client, token) for token in tokens))
    # All thirty at once, each sent twice (a client retrying while the first is in flight).
    pairs = [(t, q, i) for i, (t, q) in enumerate(zip(tokens, quizzes, strict=True))]
    await asyncio.gather(*(submit(client, t, q, i) for t, q, i in [*pairs, *pairs]))
    await fold_all(db)

    expected = await expected_from_attempts(db)
    assert await db["attempts"].count_documents({}) == 30
    assert sum(n for n, _ in expected.values()) == 300
    assert await counted(db) == expected
    assert await db["item_stats_pending"].count_documents({}) == 0


async def one_stored_attempt(client: Any, key: str = "a") -> tuple[dict[str, Any], str]:
    """A practice quiz submitted through HTTP; its attempt and first item's statistics id."""
    token = await resident(client, f"one-{key}")
    quiz = await start_quiz(client, token)
    await submit(client, token, quiz, 1)
    attempt = await client.app[DB]["attempts"].find_one({"user_id": {"$ne": None}})
    assert attempt is not None
    item = attempt["items"][0]
    return attempt, storage.item_id(item["question_id"], item["version"])


async def test_five_processes_folding_at_once_count_an_entry_once(resident_client: Any) -> None:
    """Five folders (as five processes) racing for the same pending entry: one holds the
    lease and folds it; the others fold nothing, and the item counts it once."""
    db = resident_client.app[DB]
    _, item = await one_stored_attempt(resident_client)
    await asyncio.gather(*(fold_once(db, owner=f"process-{i}") for i in range(5)))
    await fold_all(db)
    stats = await db["item_stats"].find_one({"_id": item})
    assert stats is not None and stats["n"] == 1
    assert await counted(db) == await expected_from_attempts(db)


def storage_entry(attempt: dict[str, Any]) -> dict[str, Any]:
    """The attempt's outbox entry as the writer stores it."""
    return pending_entry(attempt)


async def test_a_batch_left_by_a_dead_folder_is_finished_once_and_a_late_one_adds_nothing(
    resident_client: Any,
) -> None:
    """A folder that died after applying its batch but before marking it leaves the batch
    recorded; the next folder finishes it under the same number and adds nothing twice. The
    dead one waking up late and applying its batch again is refused too."""
    db = resident_client.app[DB]
    attempt, item = await one_stored_attempt(resident_client)
    await fold_all(db)
    assert (await db["item_stats"].find_one({"_id": item}))["n"] == 1
    state = await db["item_stats_fold"].find_one({"_id": "state"})
    assert state is not None
    seq = state["seq"]
    # As the dead folder left things: entry still pending, batch recorded, lease run out.
    await db["item_stats_pending"].replace_one(
        {"_id": attempt["_id"]}, storage_entry(attempt), upsert=True
    )
    await db["item_stats_fold"].update_one(
        {"_id": "state"},
        {
            "$set": {
                "batch": {"seq": seq, "entries": [attempt["_id"]]},
                "owner": "dead",
                "lease_until": now() - timedelta(seconds=1),
            }
        },
    )

    await fold_all(db)
    await storage.apply_batch(db, seq, batch_increments([storage_entry(attempt)]))

    assert (await db["item_stats"].find_one({"_id": item}))["n"] == 1
    assert await counted(db) == await expected_from_attempts(db)
    assert await db["item_stats_pending"].find_one({"_id": attempt["_id"]}) is None
    assert await db["item_stats_folded"].find_one({"_id": attempt["_id"]}), "marked folded"


async def test_a_retried_submit_after_the_fold_is_not_queued_again(
    resident_client: Any,
) -> None:
    """A retry of an already folded submit, after other attempts on the same items were
    folded, adds nothing: its entry is kept, folded, and cannot be queued again."""
    client, db = resident_client, resident_client.app[DB]
    token = await resident(client, "retry")
    quiz = await start_quiz(client, token)
    first = await submit(client, token, quiz, 1)
    await fold_all(db)
    attempt = await db["attempts"].find_one({})
    assert attempt is not None
    # Another attempt on the same items pushes this one out of every item's guard.
    other = {**attempt, "_id": "other-attempt", "user_id": None, "submitted_at": now()}
    other.pop("once_key", None)
    assert await client.app[ATTEMPT_WRITER].insert(other)
    await fold_all(db)

    again = await submit(client, token, quiz, 1)  # the client retries, long after
    await fold_all(db)

    assert again == first
    assert all(n == 2 for n, _ in (await counted(db)).values())
    assert await counted(db) == await expected_from_attempts(db)


async def test_an_entry_whose_attempt_never_came_is_dropped_after_the_grace(
    resident_client: Any,
) -> None:
    db = resident_client.app[DB]
    attempt, item = await one_stored_attempt(resident_client)
    await fold_all(db)
    before = await counted(db)
    late = now() - item_stats_fold.ORPHAN_GRACE - timedelta(seconds=5)
    never = {**attempt, "_id": "never-stored", "submitted_at": late}
    young = {**attempt, "_id": "on-its-way", "submitted_at": now()}
    await question_service.record_pending_responses(db, [never, young])

    await fold_all(db)

    assert await db["item_stats_pending"].find_one({"_id": "never-stored"}) is None
    assert await db["item_stats_pending"].find_one({"_id": "on-its-way"}) is not None
    assert await counted(db) == before
    # The young one's attempt is stored after all: it counts then, once.
    await db["attempts"].insert_one({**young, "user_id": None})
    await fold_all(db)
    assert (await db["item_stats"].find_one({"_id": item}))["n"] == 2
    assert await counted(db) == await expected_from_attempts(db)


async def test_a_retry_writing_its_entry_again_keeps_it_past_the_grace(
    resident_client: Any,
) -> None:
    """An old entry written again by a retry on its way to storing the attempt is not an
    orphan yet."""
    db = resident_client.app[DB]
    attempt, _ = await one_stored_attempt(resident_client)
    late = now() - item_stats_fold.ORPHAN_GRACE - timedelta(seconds=5)
    first = {**attempt, "_id": "retried", "submitted_at": late}
    await question_service.record_pending_responses(db, [first])
    await question_service.record_pending_responses(db, [{**first, "submitted_at": now()}])

    await fold_once(db)

    assert await db["item_stats_pending"].find_one({"_id": "retried"}) is not None


async def test_a_retry_landing_during_the_orphan_check_keeps_its_entry(
    resident_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold finds no attempt for an old entry; before it drops the entry, the client's
    retry writes the entry again and stores the attempt. The entry must survive and count."""
    db = resident_client.app[DB]
    attempt, item = await one_stored_attempt(resident_client)
    await fold_all(db)
    late = now() - item_stats_fold.ORPHAN_GRACE - timedelta(seconds=5)
    retried = {**attempt, "_id": "retried-during-fold", "user_id": None, "submitted_at": late}
    looked_up, landed = storage.stored_attempts, asyncio.Event()

    async def retry_lands_meanwhile(db: Any, attempt_ids: list[str]) -> set[str]:
        found = await looked_up(db, attempt_ids)
        if retried["_id"] in attempt_ids and not landed.is_set():
            landed.set()
            fresh = {**retried, "submitted_at": now()}
            await question_service.record_pending_responses(db, [fresh])
            await db["attempts"].insert_one(fresh)
        return found

    monkeypatch.setattr(storage, "stored_attempts", retry_lands_meanwhile)
    await question_service.record_pending_responses(db, [retried])
    await fold_once(db)
    assert landed.is_set()
    await fold_all(db)

    assert (await db["item_stats"].find_one({"_id": item}))["n"] == 2
    assert await counted(db) == await expected_from_attempts(db)


async def test_two_app_processes_submitting_and_folding_count_exactly(
    resident_client: Any, client_for: Any
) -> None:
    first = resident_client
    second = await client_for(first.app[SETTINGS])  # another process, same servers
    tokens = await asyncio.gather(*(resident(first, f"two{i}") for i in range(20)))
    quizzes = await asyncio.gather(*(start_quiz(first, token) for token in tokens))
    # Each quiz submitted to both processes at once; half of them a second time to the other.
    sends = [
        submit(app, token, quiz, i)
        for i, (token, quiz) in enumerate(zip(tokens, quizzes, strict=True))
        for app in ([first, second, first] if i % 2 else [second, first])
    ]
    await asyncio.gather(*sends)
    await asyncio.gather(fold_all(first.app[DB]), fold_all(second.app[DB]))

    db = first.app[DB]
    expected = await expected_from_attempts(db)
    assert await db["attempts"].count_documents({}) == 20
    assert sum(n for n, _ in expected.values()) == 200
    assert await counted(db) == expected
