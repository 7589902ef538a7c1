"""The only place with MongoDB queries and Redis commands for scoring: townships, attempts,
residents' quiz state and leaderboards."""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from redis.exceptions import NoScriptError

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


async def get_attempts(db: AsyncDatabase, attempt_ids: list[str]) -> dict[str, Document]:
    """The stored attempts among these ids, by id (one query for a batch of submissions)."""
    if not attempt_ids:
        return {}
    found = await store.find(db[ATTEMPTS], {"_id": {"$in": attempt_ids}}).to_list()
    return {doc["_id"]: doc for doc in found}


async def user_attempts(
    db: AsyncDatabase, user_id: str, *, skip: int, limit: int
) -> tuple[list[Document], int]:
    query = {"user_id": user_id}
    cursor = store.find(db[ATTEMPTS], query, {"profile": 0, "review": 0})
    docs = await cursor.sort("submitted_at", -1).skip(skip).limit(limit).to_list()
    return docs, await db[ATTEMPTS].count_documents(query)


async def anonymise_attempts(db: AsyncDatabase, user_id: str) -> None:
    """Cut what ties the resident's attempts to them, keeping what the statistics read.

    Gone: the user id, the signed quiz id (it carries the user id) and the once-per-period
    key (it starts with it), and the markers of their first assessment each year. Kept: the
    answers, scores and the profile snapshot the literacy cells count. Still there: the
    attempt `_id`, `<user_id>:<nonce>`; re-keying stored attempts races with the cells sweep
    and the item statistics fold, which find attempts by `_id` (see docs/privacy.md)."""
    await db[ATTEMPTS].update_many(
        {"user_id": user_id},
        {
            "$set": {"user_id": None, "anonymised": True},
            # The device and network pseudonyms would link the erased attempts to the other
            # residents behind the same phone or network.
            "$unset": {
                "quiz_id": "",
                "once_key": "",
                "paradata.device_hash": "",
                "paradata.ip_hash": "",
            },
        },
    )
    await db["assessment_firsts"].delete_many({"_id": {"$regex": f"^{re.escape(user_id)}:"}})
    await db[ADAPTIVE_STEPS].delete_many({"user_id": user_id})


# ------------------------------------------------------------------ residents' quiz state in Redis
# A resident's quiz state shares one hash-tag group (`{<prefix>u:<user_id>}:<name>...`), so
# a quiz start's reads and a submit's writes go to one Redis Cluster node in one round trip,
# and MGET / DEL over them work there. The streak keeps its untagged name: it is used alone,
# and renaming it would reset every resident's streak once (it exists only in Redis).


def _resident_key(kv: Kv, user_id: str, name: str, *parts: str) -> str:
    return kv.tagged(f"u:{user_id}", name, *parts)


async def get_daily(kv: Kv, user_id: str, day: str) -> tuple[str | None, bool]:
    """The quiz id issued today (if any) and whether today's daily quiz is done."""
    issued, done = await kv.redis.mget(
        _resident_key(kv, user_id, "daily", day), _resident_key(kv, user_id, "daily_done", day)
    )
    return (text(issued) if issued else None), bool(done)


async def remember_daily(kv: Kv, user_id: str, day: str, quiz_id: str, ttl: int) -> str:
    """Keep the first daily quiz issued today (SET NX), so two taps get the same quiz."""
    key = _resident_key(kv, user_id, "daily", day)
    await kv.redis.set(key, quiz_id, ex=ttl, nx=True)
    stored = await kv.redis.get(key)
    return text(stored) if stored else quiz_id


async def contest_done(kv: Kv, user_id: str, window: str) -> bool:
    return bool(await kv.redis.exists(_resident_key(kv, user_id, "contest_done", window)))


async def recent_history(
    kv: Kv, user_id: str, since: float
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Questions answered since `since` and the topics answered wrong most recently."""
    async with kv.redis.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(_resident_key(kv, user_id, "answered"), since, "+inf")
        pipe.zrevrange(_resident_key(kv, user_id, "wrong_topics"), 0, 2)
        answered, weak = await pipe.execute()
    return frozenset(a.decode() for a in answered), tuple(t.decode() for t in weak)


async def record_progress(
    kv: Kv,
    *,
    user_id: str,
    answered: list[str],
    wrong_topics: list[str],
    at: float,
    done: list[tuple[str, str, int]],
) -> None:
    """What a stored attempt leaves behind; `done` holds (marker, period, TTL) triples such
    as ("daily_done", today, two days)."""
    answered_key = _resident_key(kv, user_id, "answered")
    async with kv.redis.pipeline(transaction=False) as pipe:
        if answered:
            pipe.zadd(answered_key, dict.fromkeys(answered, at))
            pipe.zremrangebyscore(answered_key, "-inf", at - 31 * 86400)
        for topic in wrong_topics:
            pipe.zadd(_resident_key(kv, user_id, "wrong_topics"), {topic: at})
        for marker, period, ttl in done:
            pipe.set(_resident_key(kv, user_id, marker, period), "1", ex=ttl)
        await pipe.execute()


async def streak(kv: Kv, user_id: str) -> tuple[str | None, int]:
    raw = await kv.redis.hmget(kv.key("streak", user_id), "day", "count")
    return (text(raw[0]) if raw[0] else None), int(raw[1] or 0)


async def set_streak(kv: Kv, user_id: str, day: str, count: int) -> None:
    await kv.redis.hset(kv.key("streak", user_id), mapping={"day": day, "count": count})
    await kv.redis.expire(kv.key("streak", user_id), 3 * 86400)


async def forget_user_state(kv: Kv, user_id: str) -> None:
    tagged = (_resident_key(kv, user_id, name) for name in ("answered", "wrong_topics"))
    await kv.redis.delete(*tagged)
    await kv.redis.delete(kv.key("streak", user_id))
    await remove_from_boards(kv, user_id)


# ------------------------------------------------------------------ leaderboards
# Every leaderboard key is in one hash-tag group, so the award script may touch all of them
# (one Redis Cluster slot per deployment). Points reach a board through `award` only, which
# counts each attempt once (a per-week set of applied attempt ids); the `alive` marker holds
# the floor of the last rebuild and disappears only if Redis loses its data, which is how a
# missing board (nothing scored yet this week) is told from a lost one.

BOARDS = "lb"
APPLIED_TTL_SECONDS = 45 * 86400  # longer than a rebuild's detailed window (see rebuild)

_AWARD = """
local floor = redis.call('GET', KEYS[1])
if not floor then return -1 end
if tonumber(ARGV[4]) < tonumber(floor) then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[6])
local boards = tonumber(ARGV[5])
for i = 3, 2 + boards do redis.call('ZINCRBY', KEYS[i], ARGV[3], ARGV[2]) end
for i = 3 + boards, #KEYS do redis.call('SADD', KEYS[i], ARGV[2]) end
return 1
"""
# Redis names a loaded script by its SHA-1 (EVALSHA sends the name, not the source).
_AWARD_SHA = hashlib.sha1(_AWARD.encode(), usedforsecurity=False).hexdigest()


def board_key(kv: Kv, township: str | None, period: str, period_key: str) -> str:
    """The county's board, or a township's when `township` is given."""
    return kv.tagged(BOARDS, f"t:{township}" if township else "county", period, period_key)


def participants_key(kv: Kv, township: str, period: str, period_key: str) -> str:
    """The residents of a township who took part in a period (any mode)."""
    return kv.tagged(BOARDS, "part", period, period_key, township)


def _alive_key(kv: Kv) -> str:
    return kv.tagged(BOARDS, "alive")


def _applied_key(kv: Kv, week: str) -> str:
    return kv.tagged(BOARDS, "applied", week)


def _lock_key(kv: Kv) -> str:
    return kv.tagged(BOARDS, "rebuilding")


async def award(
    kv: Kv,
    *,
    attempt_id: str,
    user_id: str,
    points: int,
    submitted: float,
    week: str,
    boards: list[str],
    participations: list[str],
) -> int:
    """Count one attempt on its boards and participation sets, once. Returns 1 when counted,
    0 when it already was (or is older than the last rebuild's floor, which counted it), and
    -1 when the boards are lost and must be rebuilt before anything is added."""
    keys = [_alive_key(kv), _applied_key(kv, week), *boards, *participations]
    args: list[str | int | float] = [
        attempt_id,
        user_id,
        points,
        submitted,
        len(boards),
        APPLIED_TTL_SECONDS,
    ]
    try:
        return int(await kv.redis.evalsha(_AWARD_SHA, len(keys), *keys, *args))
    except NoScriptError:  # a restarted Redis forgot the script
        return int(await kv.redis.eval(_AWARD, len(keys), *keys, *args))


async def boards_alive(kv: Kv) -> bool:
    return bool(await kv.redis.exists(_alive_key(kv)))


async def forget_boards(kv: Kv) -> None:
    """Declare the boards lost (an award was missed), so they are rebuilt from MongoDB."""
    await kv.redis.delete(_alive_key(kv))


async def take_rebuild_lock(kv: Kv, token: str, seconds: int) -> bool:
    """One rebuild at a time across every app process."""
    return bool(await kv.redis.set(_lock_key(kv), token, nx=True, ex=seconds))


async def release_rebuild_lock(kv: Kv, token: str) -> None:
    # Only our own lock: if it expired and another process took it, it is theirs.
    script = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
    await kv.redis.eval(script, 1, _lock_key(kv), token)


async def replace_boards(
    kv: Kv,
    *,
    floor: float,
    boards: dict[str, dict[str, float]],
    participants: dict[str, set[str]],
    applied: dict[str, list[str]],
) -> None:
    """Write rebuilt boards, participation and applied sets in place of whatever is left,
    then mark the boards alive with the rebuild's floor. Nothing is added meanwhile: awards
    wait for the marker."""
    stale = [
        key
        async for key in kv.redis.scan_iter(match=kv.tagged(BOARDS, "*"), count=1000)
        if text(key) != _lock_key(kv)
    ]
    async with kv.redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(stale), 500):
            pipe.delete(*stale[start : start + 500])
        for board, points in boards.items():
            for chunk in _chunks(list(points.items())):
                pipe.zadd(board, dict(chunk))
        for key, members in participants.items():
            for chunk in _chunks(sorted(members)):
                pipe.sadd(key, *chunk)
        for week, ids in applied.items():
            for chunk in _chunks(ids):
                pipe.sadd(_applied_key(kv, week), *chunk)
            pipe.expire(_applied_key(kv, week), APPLIED_TTL_SECONDS)
        pipe.set(_alive_key(kv), repr(floor))
        await pipe.execute()


def _chunks(items: list[Any], size: int = 1000) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


async def read_board(
    kv: Kv, board: str, *, start: int, stop: int, user_id: str
) -> tuple[list[tuple[str, float]], int, int | None, float | None]:
    """A page of the board, its size, and the resident's rank and points, in one round trip."""
    async with kv.redis.pipeline(transaction=False) as pipe:
        pipe.zrevrange(board, start, stop, withscores=True)
        pipe.zcard(board)
        pipe.zrevrank(board, user_id)
        pipe.zscore(board, user_id)
        rows, total, rank, score = await pipe.execute()
    page = [(text(member), float(points)) for member, points in rows]
    return page, int(total), (None if rank is None else int(rank) + 1), score


async def participant_counts(kv: Kv, keys: list[str]) -> list[int]:
    async with kv.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.scard(key)
        return [int(count) for count in await pipe.execute()]


async def remove_from_boards(kv: Kv, user_id: str) -> None:
    """Take an erased resident off every board and participation set."""
    async for key in kv.redis.scan_iter(match=kv.tagged(BOARDS, "*"), count=500):
        kind = await kv.redis.type(key)
        if text(kind) == "zset":
            await kv.redis.zrem(key, user_id)
        elif text(kind) == "set" and ":applied:" not in text(key):
            await kv.redis.srem(key, user_id)


# ------------------------------------------------------------------ attempts read for the boards


async def points_before(db: AsyncDatabase, floor: Any) -> list[Document]:
    """Points per resident and township over attempts submitted before `floor` (all time)."""
    pipeline = [
        {"$match": {"user_id": {"$ne": None}, "submitted_at": {"$lt": floor}}},
        {
            "$group": {
                "_id": {"u": "$user_id", "t": "$profile.township_code"},
                "points": {"$sum": "$points"},
            }
        },
    ]
    return await store.aggregate(db[ATTEMPTS], pipeline)


def attempts_since(db: AsyncDatabase, since: Any) -> Any:
    """Attempts submitted since `since`, with what the boards need, one by one."""
    query = {"user_id": {"$ne": None}, "submitted_at": {"$gte": since}}
    fields = {
        "user_id": 1,
        "points": 1,
        "periods": 1,
        "submitted_at": 1,
        "profile.township_code": 1,
    }
    return store.find(db[ATTEMPTS], query, fields)


# ------------------------------------------------------------------ assessments and their cells

CELLS = "literacy_cells"


async def assessment_stored(db: AsyncDatabase, user_id: str, month: str) -> bool:
    """Whether the resident's assessment of this month is stored (by its once-a-month key)."""
    found = await db[ATTEMPTS].find_one({"once_key": f"{user_id}:assessment:{month}"}, {"_id": 1})
    return found is not None


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


_CELL_INPUT = {"assessment": 1, "profile": 1, "channel": 1, "cells_pending": 1, "excluded": 1}


async def uncounted_assessments(db: AsyncDatabase, *, before: Any) -> list[Document]:
    """Stored assessments not yet counted in the cells (served by a sparse index that holds
    only those)."""
    query = {"cells_pending": True, "submitted_at": {"$lt": before}}
    return await store.find(db[ATTEMPTS], query, _CELL_INPUT).limit(500).to_list()


def scored_assessments(db: AsyncDatabase) -> Any:
    """Every stored assessment that counts (not excluded after an integrity review), for a
    rebuild of the cells."""
    query = {"mode": "assessment", "excluded": {"$ne": True}}
    return store.find(db[ATTEMPTS], query, _CELL_INPUT)


async def cell_input(db: AsyncDatabase, attempt_id: str) -> Document | None:
    """What the cells need of one attempt, and whether it is excluded."""
    return await db[ATTEMPTS].find_one({"_id": attempt_id}, {**_CELL_INPUT, "mode": 1})


async def set_excluded(db: AsyncDatabase, attempt_id: str, *, excluded: bool, seq: int) -> bool:
    """Record an integrity decision on the attempt unless a later one is already recorded
    (`seq` grows with each decision on its flag, so racing reviewers settle on the last)."""
    newer = {"$or": [{"excluded_seq": {"$lt": seq}}, {"excluded_seq": {"$exists": False}}]}
    fields = {"excluded": excluded, "excluded_seq": seq, "decided_at": datetime.now(UTC)}
    result = await db[ATTEMPTS].update_one({"_id": attempt_id, **newer}, {"$set": fields})
    return result.modified_count == 1


async def decided_since(db: AsyncDatabase, since: datetime) -> list[str]:
    """Attempts whose integrity decision was recorded at or after `since`."""
    docs = await store.find(db[ATTEMPTS], {"decided_at": {"$gte": since}}, {"_id": 1}).to_list()
    return [str(doc["_id"]) for doc in docs]


def assessments_between(db: AsyncDatabase, start: Any, end: Any) -> Any:
    """Stored assessments submitted in [start, end), with what the integrity checks read."""
    fields = {
        "user_id": 1,
        "mode": 1,
        "quiz_id": 1,
        "channel": 1,
        "issued_at": 1,
        "submitted_at": 1,
        "profile.township_code": 1,
        "items": 1,
        "paradata": 1,
        "review.seconds": 1,
        "assessment.counts_in": 1,
        "assessment.total_hundredths": 1,
        "assessment.literate": 1,
        "excluded": 1,
    }
    query = {"mode": "assessment", "submitted_at": {"$gte": start, "$lt": end}}
    return store.find(db[ATTEMPTS], query, fields)


async def assessment_totals_between(db: AsyncDatabase, start: Any, end: Any) -> list[Document]:
    """Township, time and total of the assessments submitted in [start, end): all that the
    township-week jumps read (no answers)."""
    fields = {"_id": 0, "profile.township_code": 1, "submitted_at": 1, "assessment.total": 1}
    query = {"mode": "assessment", "submitted_at": {"$gte": start, "$lt": end}}
    return await store.find(db[ATTEMPTS], query, fields).to_list()


async def assessments_by_id(db: AsyncDatabase, attempt_ids: list[str]) -> list[Document]:
    """These stored assessments, as the cells see them."""
    query = {"_id": {"$in": attempt_ids}, "mode": "assessment"}
    return await store.find(db[ATTEMPTS], query, _CELL_INPUT).to_list()


def assessments_for_rescoring(db: AsyncDatabase) -> Any:
    """Every stored assessment's answers and scores (a re-scoring after a calibration)."""
    fields = {"assessment": 1, "items.question_id": 1, "items.version": 1, "items.mark": 1}
    return store.find(db[ATTEMPTS], {"mode": "assessment"}, fields)


async def set_assessment_totals(db: AsyncDatabase, totals: dict[str, Document]) -> None:
    """Rewrite the total fields of these assessments (by attempt id)."""
    ops = [
        UpdateOne({"_id": attempt_id}, {"$set": {f"assessment.{k}": v for k, v in fields.items()}})
        for attempt_id, fields in totals.items()
    ]
    for start in range(0, len(ops), 500):
        await db[ATTEMPTS].bulk_write(ops[start : start + 500], ordered=False)


def calibration_input(db: AsyncDatabase) -> Any:
    """Every stored attempt's answers, who gave them and when, and the profile snapshot: what
    an IRT calibration reads (scoring.irt, through the response source the app wires)."""
    fields = {
        "user_id": 1,
        "submitted_at": 1,
        "profile": 1,
        "items.question_id": 1,
        "items.version": 1,
        "items.mark": 1,
        "items.order": 1,  # how many options were shown
        "review.too_fast": 1,
    }
    return store.find(db[ATTEMPTS], {}, fields)


ADAPTIVE_STEPS = "adaptive_steps"


async def adaptive_step(db: AsyncDatabase, step_id: str) -> Document | None:
    return await db[ADAPTIVE_STEPS].find_one({"_id": step_id})


async def record_adaptive_step(db: AsyncDatabase, doc: Document) -> Document | None:
    """Store the first answer to a step; if a concurrent repeat stored one first, return it."""
    from pymongo.errors import DuplicateKeyError

    try:
        await db[ADAPTIVE_STEPS].insert_one(doc)
    except DuplicateKeyError:
        return await db[ADAPTIVE_STEPS].find_one({"_id": doc["_id"]})
    return None


async def adaptive_steps(db: AsyncDatabase, nonce: str, count: int) -> dict[int, list[str]]:
    """The options chosen at each step of an adaptive practice, by step number."""
    ids = [f"{nonce}:{step}" for step in range(1, count + 1)]
    docs = await store.find(db[ADAPTIVE_STEPS], {"_id": {"$in": ids}}, {"chosen": 1}).to_list()
    return {int(d["_id"].rsplit(":", 1)[1]): list(d.get("chosen", [])) for d in docs}


async def insert_new_attempts(db: AsyncDatabase, docs: list[Document]) -> None:
    """Insert attempts, skipping ids already stored (the demo seed runs again and again)."""
    from pymongo.errors import BulkWriteError

    for start in range(0, len(docs), 500):
        try:
            await db[ATTEMPTS].insert_many(docs[start : start + 500], ordered=False)
        except BulkWriteError as error:
            if not store.only_duplicates(error):
                raise


async def attempts_by_helper(db: AsyncDatabase) -> dict[str, Document]:
    pipeline: list[Document] = [
        {"$match": {"paradata.helper_id": {"$ne": None}}},
        {
            "$group": {
                "_id": {"helper": "$paradata.helper_id", "channel": "$channel"},
                "n": {"$sum": 1},
            }
        },
    ]
    counts: dict[str, Document] = {}
    for row in await store.aggregate(db[ATTEMPTS], pipeline):
        held = counts.setdefault(row["_id"]["helper"], {"assisted": 0, "paper": 0})
        held[row["_id"]["channel"] or "self"] = int(row["n"])
    return counts
