"""The only place with MongoDB queries and Redis commands for articles."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from server.kernel import store
from server.kernel.kv import Kv, text

Document = dict[str, Any]
ARTICLES = "articles"


def _oid(article_id: str) -> ObjectId | None:
    return ObjectId(article_id) if ObjectId.is_valid(article_id) and len(article_id) == 24 else None


async def insert(db: AsyncDatabase, doc: Document) -> None:
    await db[ARTICLES].insert_one(doc)


async def get(db: AsyncDatabase, article_id: str) -> Document | None:
    oid = _oid(article_id)
    if oid is None:
        return None
    doc = await db[ARTICLES].find_one({"_id": oid})  # `_id` alone: indexed on every backend
    return doc if doc and not doc.get("deleted_at") else None


async def list_page(
    db: AsyncDatabase, *, status: str | None, skip: int, limit: int
) -> tuple[list[Document], int]:
    query: Document = {"deleted_at": None}
    if status:
        query["status"] = status
    docs = (
        await store.find(db[ARTICLES], query)
        .sort("changed_at", DESCENDING)
        .skip(skip)
        .limit(limit)
        .to_list()
    )
    return docs, await db[ARTICLES].count_documents(query)


async def all_live(db: AsyncDatabase) -> list[Document]:
    return await store.find(db[ARTICLES], {"deleted_at": None}).to_list()


async def insert_many(db: AsyncDatabase, docs: list[Document]) -> None:
    if docs:
        await db[ARTICLES].insert_many(docs)


async def existing_titles(db: AsyncDatabase) -> set[str]:
    return {
        d["content"]["title"]
        async for d in store.find(db[ARTICLES], {"deleted_at": None}, {"content.title": 1})
    }


# ------------------------------------------------------------------ change signal, views, reads


async def note_change(kv: Kv) -> int:
    return int(await kv.redis.incr(kv.key("articles:changes")))


async def change_counter(kv: Kv) -> int:
    value = await kv.redis.get(kv.key("articles:changes"))
    return int(value or 0)


async def count_view(kv: Kv, article_id: str, user_id: str | None) -> None:
    async with kv.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(kv.key("articles:views_pending"), article_id, 1)
        if user_id:
            pipe.sadd(kv.key("read", user_id), article_id)
        await pipe.execute()


async def read_by(kv: Kv, user_id: str) -> set[str]:
    return {text(a) for a in await kv.redis.smembers(kv.key("read", user_id))}


async def forget_reader(kv: Kv, user_id: str) -> None:
    await kv.redis.delete(kv.key("read", user_id))


# Take the pending counts and clear them in one step: with a read followed by a subtraction,
# two processes folding at once (every worker folds, and all do at shutdown) took the same
# counts and MongoDB counted them twice.
_TAKE_ALL = """
local pending = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return pending
"""


async def take_pending_views(kv: Kv) -> dict[str, int]:
    """Pending view counts, taken out of Redis atomically (increments that arrive afterwards
    stay for the next fold)."""
    flat = await kv.redis.eval(_TAKE_ALL, 1, kv.key("articles:views_pending"))
    pairs = zip(flat[::2], flat[1::2], strict=True)
    return {text(article_id): int(count) for article_id, count in pairs if int(count)}


async def add_views(db: AsyncDatabase, counts: dict[str, int]) -> None:
    ops = [
        UpdateOne({"_id": ObjectId(a)}, {"$inc": {"views": n}})
        for a, n in counts.items()
        if ObjectId.is_valid(a)
    ]
    if ops:
        await db[ARTICLES].bulk_write(ops, ordered=False)


async def pending_views(kv: Kv) -> dict[str, int]:
    return {
        text(k): int(v)
        for k, v in (await kv.redis.hgetall(kv.key("articles:views_pending"))).items()
    }


async def note_search(kv: Kv, terms: list[str]) -> None:
    if terms:
        async with kv.redis.pipeline(transaction=False) as pipe:
            for term in terms:
                pipe.zincrby(kv.key("articles:search_terms"), 1, term)
            await pipe.execute()


async def popular_search_terms(kv: Kv, limit: int = 200) -> list[str]:
    found: list[Any] = await kv.redis.zrevrange(kv.key("articles:search_terms"), 0, limit - 1)
    return [text(t) for t in found]
