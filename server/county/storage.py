"""The only place with queries of the county: townships, census margins, targets and the
version tokens the estimates' caches follow."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from server.kernel import store

Document = dict[str, Any]


async def upsert_townships(db: AsyncDatabase, townships: list[Document]) -> int:
    ops = [UpdateOne({"code": t["code"]}, {"$set": t}, upsert=True) for t in townships]
    if ops:
        await db["townships"].bulk_write(ops, ordered=False)
    return len(ops)


async def list_townships(db: AsyncDatabase, *, skip: int, limit: int) -> tuple[list[Document], int]:
    cursor = store.find(db["townships"], {}, {"_id": 0, "code": 1, "name": 1}).sort(
        "code", ASCENDING
    )
    items = await cursor.skip(skip).limit(limit).to_list()
    return items, await db["townships"].count_documents({})


async def township_exists(db: AsyncDatabase, code: str) -> bool:
    return await db["townships"].count_documents({"code": code}, limit=1) > 0


async def township_names(db: AsyncDatabase) -> dict[str, Document]:
    return {t["code"]: t async for t in store.find(db["townships"], {}, {"_id": 0})}


async def stats_version(db: AsyncDatabase) -> Document:
    """Tokens replaced on every change of the cells or the census (estimates caches key on
    them; one lookup by `_id`, cheap on every backend)."""
    return await db["county_settings"].find_one({"_id": "stats_version"}) or {}


async def bump_stats_version(db: AsyncDatabase, *parts: str) -> None:
    # Fresh random tokens, not counters: two processes bumping at once can't collide.
    await db["county_settings"].update_one(
        {"_id": "stats_version"},
        {"$set": {part: uuid.uuid4().hex for part in parts}},
        upsert=True,
    )


async def get_census(db: AsyncDatabase) -> Document | None:
    return await db["county_settings"].find_one({"_id": "census"})


async def put_census(db: AsyncDatabase, doc: Document) -> None:
    """One document, replaced whole: readers never see half of an old and half of a new census."""
    await db["county_settings"].replace_one({"_id": "census"}, doc, upsert=True)


async def get_targets(db: AsyncDatabase) -> dict[str, float]:
    doc = await db["county_settings"].find_one({"_id": "targets"})
    return dict(doc["by_year"]) if doc else {}


async def put_target(db: AsyncDatabase, year: int, share: float, actor: str) -> None:
    await db["county_settings"].update_one(
        {"_id": "targets"},
        {"$set": {f"by_year.{year}": share, f"set_by.{year}": actor}},
        upsert=True,
    )
