"""The only place with queries of the literacy cells.

Each cell records the ids of the attempts applied to it (`applied`, never read back by the
estimates), and an increment is guarded by that list: it applies only if the attempt is not
yet in it, and adds it in the same single-document update. So an assessment counts exactly
once in each cell, whichever process applies it, however often a timed-out write is retried
and whether or not the sweep gets to it too."""

from __future__ import annotations

from typing import Any

from bson.int64 import Int64
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.kernel import store

Document = dict[str, Any]
CELLS = "literacy_cells"


async def apply_once(
    db: AsyncDatabase, *, cell_id: str, fields: Document, inc: dict[str, int], attempt_id: str
) -> None:
    """Add one attempt's increments to one cell unless it was added before."""
    create = UpdateOne({"_id": cell_id}, {"$setOnInsert": {**fields, "applied": []}}, upsert=True)
    guarded = UpdateOne(
        {"_id": cell_id, "applied": {"$ne": attempt_id}},
        {"$inc": {k: Int64(v) for k, v in inc.items()}, "$push": {"applied": attempt_id}},
    )
    try:
        await db[CELLS].bulk_write([create, guarded], ordered=True)
    except BulkWriteError as error:
        # Two first assessments of a new cell raced to create it; the cell exists now.
        if not store.only_duplicates(error):
            raise
        await db[CELLS].bulk_write([guarded])


# What the estimates read: everything but the list of applied attempt ids.
_SUMS_ONLY = {"applied": 0}


async def read_cells(db: AsyncDatabase, periods: list[str]) -> list[Document]:
    cursor = store.find(db[CELLS], {"period": {"$in": periods}}, _SUMS_ONLY)
    return await cursor.to_list()


async def cell_periods(db: AsyncDatabase) -> list[Document]:
    pipeline = [{"$group": {"_id": "$period", "respondents": {"$sum": "$n"}}}]
    return await store.aggregate(db[CELLS], pipeline)


async def replace_cells(db: AsyncDatabase, docs: list[Document]) -> None:
    """Swap in rebuilt cells: written to a staging collection, then renamed over the live one
    in one step, so readers see the old cells or the new, never a half-written set."""
    staging = db[f"{CELLS}_rebuild"]
    await staging.drop()
    for start in range(0, len(docs), 1000):
        await staging.insert_many(docs[start : start + 1000], ordered=False)
    if not docs:
        await db[CELLS].delete_many({})
        return
    await staging.rename(CELLS, dropTarget=True)
    await db[CELLS].create_index("period", name="period")
