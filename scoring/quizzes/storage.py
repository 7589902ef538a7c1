"""The only place with MongoDB queries and Redis commands for scoring: townships, attempts,
residents' quiz state and leaderboards."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.kernel import store
from server.kernel.kv import Kv, text

Document = dict[str, Any]


# ------------------------------------------------------------------ attempts

ATTEMPTS = "attempts"


async def insert_attempts(db: AsyncDatabase, docs: list[Document]) -> list[str]:
    """Insert a batch (group commit) with journaled, majority-acknowledged writes; returns
    the ids that were duplicates (already stored, or a second daily/contest attempt)."""
    from pymongo import WriteConcern
    from pymongo.errors import BulkWriteError

    collection = db.get_collection(ATTEMPTS, write_concern=WriteConcern(w="majority", j=True))
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as error:
        others = [e for e in error.details["writeErrors"] if e.get("code") != 11000]
        if others:
            raise
        return [docs[e["index"]]["_id"] for e in error.details["writeErrors"]]
    return []


async def get_attempt(db: AsyncDatabase, attempt_id: str) -> Document | None:
    return await db[ATTEMPTS].find_one({"_id": attempt_id})


async def user_attempts(
    db: AsyncDatabase, user_id: str, *, skip: int, limit: int
) -> tuple[list[Document], int]:
    query = {"user_id": user_id}
    cursor = store.find(db[ATTEMPTS], query, {"profile": 0, "review": 0})
    docs = await cursor.sort("submitted_at", -1).skip(skip).limit(limit).to_list()
    return docs, await db[ATTEMPTS].count_documents(query)


async def anonymise_attempts(db: AsyncDatabase, user_id: str) -> None:
    await db[ATTEMPTS].update_many(
        {"user_id": user_id}, {"$set": {"user_id": None, "anonymised": True}}
    )


async def points_by_user(
    db: AsyncDatabase, *, period: str, period_key: str, township: str | None
) -> list[Document]:
    match: Document = {"user_id": {"$ne": None}}
    if period != "all":
        match[f"periods.{period}"] = period_key
    if township:
        match["profile.township_code"] = township
    pipeline = [{"$match": match}, {"$group": {"_id": "$user_id", "points": {"$sum": "$points"}}}]
    return await store.aggregate(db[ATTEMPTS], pipeline)


async def participants_by_township(
    db: AsyncDatabase, *, period: str, period_key: str
) -> list[Document]:
    match: Document = {"user_id": {"$ne": None}}
    if period != "all":
        match[f"periods.{period}"] = period_key
    pipeline = [
        {"$match": match},
        {"$group": {"_id": {"t": "$profile.township_code", "u": "$user_id"}}},
        {"$group": {"_id": "$_id.t", "participants": {"$sum": 1}}},
    ]
    return await store.aggregate(db[ATTEMPTS], pipeline)


# ------------------------------------------------------------------ residents' quiz state in Redis


async def get_daily(kv: Kv, user_id: str, day: str) -> tuple[str | None, bool]:
    """The quiz id issued today (if any) and whether today's daily quiz is done."""
    issued, done = await kv.redis.mget(
        kv.key("daily", user_id, day), kv.key("daily_done", user_id, day)
    )
    return (text(issued) if issued else None), bool(done)


async def remember_daily(kv: Kv, user_id: str, day: str, quiz_id: str, ttl: int) -> str:
    """Keep the first daily quiz issued today (SET NX), so two taps get the same quiz."""
    key = kv.key("daily", user_id, day)
    await kv.redis.set(key, quiz_id, ex=ttl, nx=True)
    stored = await kv.redis.get(key)
    return text(stored) if stored else quiz_id


async def contest_done(kv: Kv, user_id: str, window: str) -> bool:
    return bool(await kv.redis.exists(kv.key("contest_done", user_id, window)))


async def recent_history(
    kv: Kv, user_id: str, since: float
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Questions answered since `since` and the topics answered wrong most recently."""
    async with kv.redis.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(kv.key("answered", user_id), since, "+inf")
        pipe.zrevrange(kv.key("wrong_topics", user_id), 0, 2)
        answered, weak = await pipe.execute()
    return frozenset(a.decode() for a in answered), tuple(t.decode() for t in weak)


async def record_progress(
    kv: Kv,
    *,
    user_id: str,
    answered: list[str],
    wrong_topics: list[str],
    at: float,
    done_keys: list[tuple[str, int]],
) -> None:
    async with kv.redis.pipeline(transaction=False) as pipe:
        if answered:
            pipe.zadd(kv.key("answered", user_id), dict.fromkeys(answered, at))
            pipe.zremrangebyscore(kv.key("answered", user_id), "-inf", at - 31 * 86400)
        for topic in wrong_topics:
            pipe.zadd(kv.key("wrong_topics", user_id), {topic: at})
        for key, ttl in done_keys:
            pipe.set(kv.key(key), "1", ex=ttl)
        await pipe.execute()


async def streak(kv: Kv, user_id: str) -> tuple[str | None, int]:
    raw = await kv.redis.hmget(kv.key("streak", user_id), "day", "count")
    return (text(raw[0]) if raw[0] else None), int(raw[1] or 0)


async def set_streak(kv: Kv, user_id: str, day: str, count: int) -> None:
    await kv.redis.hset(kv.key("streak", user_id), mapping={"day": day, "count": count})
    await kv.redis.expire(kv.key("streak", user_id), 3 * 86400)


async def forget_user_state(kv: Kv, user_id: str) -> None:
    await kv.redis.delete(
        *(kv.key(name, user_id) for name in ("answered", "wrong_topics", "streak"))
    )
    async for board in kv.redis.scan_iter(match=kv.key("lb", "*"), count=500):
        if not board.endswith(b":built"):
            await kv.redis.zrem(board, user_id)


# ------------------------------------------------------------------ leaderboards


def board_key(kv: Kv, township: str | None, period: str, period_key: str) -> str:
    """The county's board, or a township's when `township` is given."""
    return kv.key("lb", f"t:{township}" if township else "county", period, period_key)


async def boards_built(kv: Kv, boards: list[str]) -> list[bool]:
    """Which boards exist (were built from MongoDB), in one round trip."""
    async with kv.redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.exists(board + ":built")
        return [bool(found) for found in await pipe.execute()]


async def replace_board(kv: Kv, board: str, points: dict[str, float]) -> None:
    async with kv.redis.pipeline(transaction=True) as pipe:
        pipe.delete(board)
        if points:
            pipe.zadd(board, points)
        pipe.set(board + ":built", "1")
        await pipe.execute()


async def add_points(kv: Kv, boards: list[str], user_id: str, points: int) -> None:
    async with kv.redis.pipeline(transaction=False) as pipe:
        for board in boards:
            pipe.zincrby(board, points, user_id)
        await pipe.execute()


async def read_board(
    kv: Kv, board: str, *, start: int, stop: int
) -> tuple[list[tuple[str, float]], int]:
    async with kv.redis.pipeline(transaction=False) as pipe:
        pipe.zrevrange(board, start, stop, withscores=True)
        pipe.zcard(board)
        rows, total = await pipe.execute()
    return [(member.decode(), score) for member, score in rows], int(total)


async def rank_of(kv: Kv, board: str, user_id: str) -> tuple[int | None, float | None]:
    rank = await kv.redis.zrevrank(board, user_id)
    score = await kv.redis.zscore(board, user_id)
    return (None if rank is None else int(rank) + 1), score  # type: ignore[arg-type]


# ------------------------------------------------------------------ assessments and their cells

CELLS = "literacy_cells"


async def assessment_claim(db: AsyncDatabase, user_id: str, month: str) -> str | None:
    """The quiz id of the resident's assessment of this month, if one was started."""
    doc = await db["assessment_claims"].find_one({"_id": f"{user_id}:{month}"})
    return doc["quiz_id"] if doc else None


async def claim_assessment(
    db: AsyncDatabase, user_id: str, month: str, quiz_id: str, *, replacing: str | None
) -> str:
    """Record the month's assessment (or replace an expired, unsubmitted one); returns the
    quiz id that holds the claim, which is another one if a concurrent start won."""
    from pymongo.errors import DuplicateKeyError

    claims, claim_id = db["assessment_claims"], f"{user_id}:{month}"
    if replacing is not None:
        await claims.update_one(
            {"_id": claim_id, "quiz_id": replacing}, {"$set": {"quiz_id": quiz_id}}
        )
    else:
        with contextlib.suppress(DuplicateKeyError):
            await claims.insert_one({"_id": claim_id, "quiz_id": quiz_id})
    held = await claims.find_one({"_id": claim_id})
    return held["quiz_id"] if held else quiz_id


async def first_of_year(db: AsyncDatabase, user_id: str, year: str, attempt_id: str) -> bool:
    """Whether this attempt is the resident's first assessment of the year (idempotent: a
    retry of the same attempt gets the same answer)."""
    from pymongo.errors import DuplicateKeyError

    firsts, first_id = db["assessment_firsts"], f"{user_id}:{year}"
    try:
        await firsts.insert_one({"_id": first_id, "attempt_id": attempt_id})
        return True
    except DuplicateKeyError:
        held = await firsts.find_one({"_id": first_id})
    if held is None or held["attempt_id"] == attempt_id:
        return held is not None
    if await get_attempt(db, held["attempt_id"]) is not None:
        return False
    # The marker names an attempt that was never stored (its submit failed and expired):
    # it is not the year's first, so this one takes its place.
    taken = await firsts.update_one(
        {"_id": first_id, "attempt_id": held["attempt_id"]}, {"$set": {"attempt_id": attempt_id}}
    )
    return taken.modified_count == 1


async def mark_counted(db: AsyncDatabase, attempt_id: str) -> None:
    await db[ATTEMPTS].update_one({"_id": attempt_id}, {"$unset": {"cells_pending": ""}})


async def mark_all_counted(db: AsyncDatabase) -> None:
    await db[ATTEMPTS].update_many({"cells_pending": True}, {"$unset": {"cells_pending": ""}})


_CELL_INPUT = {"assessment": 1, "profile": 1, "channel": 1, "cells_pending": 1}


async def uncounted_assessments(db: AsyncDatabase, *, before: Any) -> list[Document]:
    """Stored assessments not yet counted in the cells (served by a sparse index that holds
    only those)."""
    query = {"cells_pending": True, "submitted_at": {"$lt": before}}
    return await store.find(db[ATTEMPTS], query, _CELL_INPUT).limit(500).to_list()


def scored_assessments(db: AsyncDatabase) -> Any:
    """Every stored assessment, for a rebuild of the cells."""
    return store.find(db[ATTEMPTS], {"mode": "assessment"}, _CELL_INPUT)


async def insert_new_attempts(db: AsyncDatabase, docs: list[Document]) -> None:
    """Insert attempts, skipping ids already stored (the demo seed runs again and again)."""
    from pymongo.errors import BulkWriteError

    for start in range(0, len(docs), 500):
        try:
            await db[ATTEMPTS].insert_many(docs[start : start + 500], ordered=False)
        except BulkWriteError as error:
            if not store.only_duplicates(error):
                raise
