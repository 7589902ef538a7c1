"""The only place with queries of the paper forms and the helpers' daily counters."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.kernel import store

Document = dict[str, Any]
PAPER_FORMS = "paper_forms"
HELPER_DAYS = "helper_days"


async def take_daily(db: AsyncDatabase, helper_id: str, day: str, amount: int, limit: int) -> bool:
    """Count `amount` actions against the helper's limit for the day, unless that would pass
    it. One conditional upsert: helpers' phones retrying, or two of a helper's devices at once,
    can't count past the limit."""
    if amount > limit:
        return False
    key = f"{helper_id}|{day}"
    try:  # the day's counter, created once (an equality-only upsert: racers meet one document)
        await db[HELPER_DAYS].update_one(
            {"_id": key},
            {"$setOnInsert": {"helper_id": helper_id, "day": day, "used": 0}},
            upsert=True,
        )
    except DuplicateKeyError:
        pass  # a concurrent first action of the day created it
    counted = await db[HELPER_DAYS].update_one(
        {"_id": key, "used": {"$lte": limit - amount}}, {"$inc": {"used": amount}}
    )
    return counted.modified_count == 1


async def claim_form(db: AsyncDatabase, code: str, user_id: str) -> bool:
    """Reserve a printed form for the resident it was filled in for (its first upload); True
    if it is theirs."""
    result = await db[PAPER_FORMS].update_one(
        {"_id": code, "$or": [{"used_by": {"$exists": False}}, {"used_by": user_id}]},
        {"$set": {"used_by": user_id}},
    )
    return result.matched_count == 1


async def used_on(db: AsyncDatabase, day: str) -> dict[str, int]:
    """Actions counted per helper on one day."""
    docs = await store.find(db[HELPER_DAYS], {"day": day}).to_list()
    return {doc["helper_id"]: int(doc["used"]) for doc in docs}


async def insert_forms(db: AsyncDatabase, docs: list[Document]) -> None:
    if docs:
        await db[PAPER_FORMS].insert_many(docs, ordered=False)


async def forms_by_code(db: AsyncDatabase, codes: list[str]) -> dict[str, Document]:
    docs = await store.find(db[PAPER_FORMS], {"_id": {"$in": codes}}).to_list()
    return {doc["_id"]: doc for doc in docs}


async def forms_issued_by(db: AsyncDatabase) -> dict[str, int]:
    pipeline = [{"$group": {"_id": "$helper_id", "forms": {"$sum": 1}}}]
    return {
        doc["_id"]: int(doc["forms"]) for doc in await store.aggregate(db[PAPER_FORMS], pipeline)
    }
