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
    try:
        await db[HELPER_DAYS].update_one(
            {"_id": f"{helper_id}|{day}", "used": {"$lte": limit - amount}},
            {"$inc": {"used": amount}, "$setOnInsert": {"helper_id": helper_id, "day": day}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False  # the day's document exists and is at the limit
    return True


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
