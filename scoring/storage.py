"""MongoDB queries for the county's geography (townships)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


async def upsert_townships(db: AsyncDatabase, townships: list[Document]) -> int:
    ops = [UpdateOne({"code": t["code"]}, {"$set": t}, upsert=True) for t in townships]
    if ops:
        await db["townships"].bulk_write(ops, ordered=False)
    return len(ops)


async def list_townships(db: AsyncDatabase, *, skip: int, limit: int) -> tuple[list[Document], int]:
    cursor = db["townships"].find({}, {"_id": 0, "code": 1, "name": 1}).sort("code", ASCENDING)
    items = await cursor.skip(skip).limit(limit).to_list()
    return items, await db["townships"].count_documents({})


async def township_exists(db: AsyncDatabase, code: str) -> bool:
    return await db["townships"].count_documents({"code": code}, limit=1) > 0
