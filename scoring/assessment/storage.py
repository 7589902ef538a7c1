"""The only place with queries of the literacy cells.

Each cell records the ids of the attempts applied to it (`applied`, never read back by the
estimates), and an increment is guarded by that list: it applies only if the attempt is not
yet in it, and adds it in the same single-document update. So an assessment counts exactly
once in each cell, whichever process applies it, however often a timed-out write is retried
and whether or not the sweep gets to it too."""

from __future__ import annotations

import uuid
from typing import Any

from bson.int64 import Int64
from pymongo import ReplaceOne, UpdateOne
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


async def remove_once(
    db: AsyncDatabase, *, cell_id: str, inc: dict[str, int], attempt_id: str
) -> None:
    """Take one attempt's increments out of one cell if they are in it (the inverse of
    `apply_once`, guarded the same way: a repeat or a race takes them out once)."""
    await db[CELLS].update_one(
        {"_id": cell_id, "applied": attempt_id},
        {"$inc": {k: Int64(-v) for k, v in inc.items()}, "$pull": {"applied": attempt_id}},
    )
    # A cell left with nobody stays (n = 0): deleting it could race apply_once between its
    # upsert and its guarded increment and lose that attempt. Readers skip empty channels.


# What the estimates read: the sums, not the applied attempt ids nor the rebuild's tag.
_SUMS_ONLY = {"applied": 0, "rebuild": 0}


async def read_cells(db: AsyncDatabase, periods: list[str]) -> list[Document]:
    cursor = store.find(db[CELLS], {"period": {"$in": periods}}, _SUMS_ONLY)
    return await cursor.to_list()


async def cell_periods(db: AsyncDatabase) -> list[Document]:
    pipeline = [{"$group": {"_id": "$period", "respondents": {"$sum": "$n"}}}]
    return await store.aggregate(db[CELLS], pipeline)


async def replace_cells(db: AsyncDatabase, docs: list[Document]) -> None:
    """Put rebuilt cells in place of the live ones: each is replaced whole (tagged with this
    rebuild's token), then every cell the rebuild did not produce is deleted. Readers may see
    a mix for the moment it runs; the version token replaced after a rebuild makes every
    estimate refit from the finished cells. (No staging collection renamed over the live
    one: mongo-java-server's H2 store loses a renamed collection's documents at the next
    restart - see tests/storage/test_durability.py.)"""
    token = uuid.uuid4().hex
    ops = [ReplaceOne({"_id": doc["_id"]}, {**doc, "rebuild": token}, upsert=True) for doc in docs]
    if ops:
        await db[CELLS].bulk_write(ops, ordered=False)
    await db[CELLS].delete_many({"rebuild": {"$ne": token}})
