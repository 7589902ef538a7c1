"""The only place with queries of the integrity flags, the township-week jumps and the
screening's state.

A flag is one document per screened attempt (`_id` a digest of the attempt id, so that
reruns and racing screenings meet the same document), holding its reasons by code, its
review status and every decision taken on it. `decision_seq` grows with each decision; the
attempt records the number of the decision it follows, so reviewers racing each other settle
on the last one (scoring.quizzes.service.set_exclusion)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.kernel import store

Document = dict[str, Any]
FLAGS = "integrity_flags"
JUMPS = "integrity_jumps"
STATE = "integrity_state"
SCREENING = "screening"


async def record_reasons(
    db: AsyncDatabase, flag_id: str, attempt: Document, reasons: Document
) -> Document:
    """Add (or refresh) reasons on an attempt's flag, creating it open; the review status and
    decisions are left as they are. Returns the flag as stored after the change."""
    doc = await db[FLAGS].find_one_and_update(
        {"_id": flag_id},
        {
            "$set": {f"reasons.{code}": reason for code, reason in reasons.items()},
            "$setOnInsert": {**attempt, "status": "open", "decision_seq": 0, "decisions": []},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert doc is not None
    return doc


async def strong_before(db: AsyncDatabase, flag_ids: list[str]) -> dict[str, bool]:
    """Whether each existing flag was strong (flags not yet stored are absent)."""
    docs = await store.find(db[FLAGS], {"_id": {"$in": flag_ids}}, {"strong": 1}).to_list()
    return {doc["_id"]: bool(doc.get("strong")) for doc in docs}


async def set_score(
    db: AsyncDatabase, flag_id: str, score: float, strong: bool, at: datetime
) -> None:
    await db[FLAGS].update_one(
        {"_id": flag_id}, {"$set": {"score": score, "strong": strong, "updated_at": at}}
    )


async def get_flag(db: AsyncDatabase, flag_id: str) -> Document | None:
    return await db[FLAGS].find_one({"_id": flag_id})


async def decide(db: AsyncDatabase, flag_id: str, decision: Document) -> Document | None:
    """Record a decision: the status follows it, the decision joins the flag's history, and
    the flag's decision number grows by one (returned in the document)."""
    return await db[FLAGS].find_one_and_update(
        {"_id": flag_id},
        {
            "$set": {"status": decision["status"], "decided": decision},
            "$push": {"decisions": decision},
            "$inc": {"decision_seq": 1},
        },
        return_document=ReturnDocument.AFTER,
    )


def _flag_query(period: str | None, township: str | None, status: str | None) -> Document:
    query: Document = {}
    if period is not None:
        # A week as submitted; a month or year as the figures count it.
        query["week" if "W" in period else "counts_in"] = period
    if township is not None:
        query["township_code"] = township
    if status is not None:
        query["status"] = status
    return query


async def list_flags(
    db: AsyncDatabase,
    *,
    period: str | None,
    township: str | None,
    status: str | None,
    strong: bool | None,
    skip: int,
    limit: int,
) -> tuple[list[Document], int]:
    query = _flag_query(period, township, status)
    if strong is not None:
        query["strong"] = strong
    total = await db[FLAGS].count_documents(query)
    cursor = (
        store.find(db[FLAGS], query)
        .sort([("score", DESCENDING), ("_id", 1)])
        .skip(skip)
        .limit(limit)
    )
    return await cursor.to_list(), total


async def flags_counting_in(db: AsyncDatabase, period: str) -> list[Document]:
    """Every flag on an assessment that counts in this period's cells: what the reports
    count per township, and the open ones' attempts for the share without them."""
    fields = {"attempt_id": 1, "township_code": 1, "status": 1, "strong": 1}
    return await store.find(db[FLAGS], {"counts_in": period}, fields).to_list()


async def decided_flags(db: AsyncDatabase) -> list[Document]:
    """Flags with a decision, for the nightly check that each attempt follows its flag."""
    query = {"status": {"$ne": "open"}, "attempt_id": {"$ne": None}}
    fields = {"attempt_id": 1, "status": 1, "decision_seq": 1, "counts_in": 1}
    return await store.find(db[FLAGS], query, fields).to_list()


async def forget_resident(db: AsyncDatabase, user_id: str) -> None:
    """An erased resident's flags keep their evidence and decisions (the figures they
    changed) but lose the signed quiz id, which carries the user id."""
    prefix = {"$regex": f"^{re.escape(user_id)}:"}
    await db[FLAGS].update_many({"attempt_id": prefix}, {"$set": {"quiz_id": None}})


async def replace_jumps(db: AsyncDatabase, weeks: list[str], jumps: list[Document]) -> None:
    """The jumps found for these weeks, in place of those found before for them."""
    for jump in jumps:
        await db[JUMPS].replace_one({"_id": jump["_id"]}, jump, upsert=True)
    await db[JUMPS].delete_many(
        {"week": {"$in": weeks}, "_id": {"$nin": [jump["_id"] for jump in jumps]}}
    )


async def list_jumps(db: AsyncDatabase, *, township: str | None) -> list[Document]:
    query = {} if township is None else {"township_code": township}
    cursor = store.find(db[JUMPS], query).sort([("week", DESCENDING), ("_id", 1)]).limit(500)
    return await cursor.to_list()


async def screening_state(db: AsyncDatabase) -> Document:
    return await db[STATE].find_one({"_id": SCREENING}) or {}


async def take_lease(db: AsyncDatabase, owner: str, now: datetime, until: datetime) -> bool:
    """Hold the screening lease if it is free or its holder stopped renewing it."""
    try:
        await db[STATE].find_one_and_update(
            {"_id": SCREENING, "$or": [{"lease_until": {"$lt": now}}, {"lease_owner": owner}]},
            {"$set": {"lease_owner": owner, "lease_until": until}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False  # a live holder: the upsert met the existing document
    return True


async def advance(db: AsyncDatabase, owner: str, fields: Document) -> bool:
    """Record how far screening got, only while this process still holds the lease."""
    result = await db[STATE].update_one({"_id": SCREENING, "lease_owner": owner}, {"$set": fields})
    return result.matched_count == 1


async def release_lease(db: AsyncDatabase, owner: str) -> None:
    free = {"lease_owner": None, "lease_until": datetime.fromtimestamp(0, UTC)}
    await db[STATE].update_one({"_id": SCREENING, "lease_owner": owner}, {"$set": free})
