"""Published articles in memory, per process, for residents' lists, search and
recommendations (no MongoDB per request). Reloaded whole when the Redis change counter
moves (articles number in the thousands), and every ten minutes regardless. The same loop
folds view counts from Redis into MongoDB every minute."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from content import storage
from server.kernel.kv import Kv
from server.search.index import SearchIndex

log = logging.getLogger(__name__)
Document = dict[str, Any]

# Titles weigh most: a reader who types a word expects the article named for it first.
SEARCH_WEIGHTS = {"title": 4.0, "summary": 1.5, "body": 1.0}
FULL_RELOAD_SECONDS = 600
FOLD_VIEWS_SECONDS = 60


@dataclass
class ArticleCache:
    poll_interval: float = 0.5
    published: dict[str, Document] = field(default_factory=dict)
    search: SearchIndex = field(default_factory=lambda: SearchIndex(weights=SEARCH_WEIGHTS))
    # Ids by topic and overall, most read first: recommendations walk these, not everything.
    by_topic: dict[str, list[str]] = field(default_factory=dict)
    popular: list[str] = field(default_factory=list)
    _seen: int | None = None
    _loaded_at: float = 0.0
    _folded_at: float = field(default_factory=time.monotonic)

    def replace(self, docs: list[Document]) -> None:
        published = {
            str(d["_id"]): d for d in docs if d.get("status") == "published" and d.get("published")
        }
        index = SearchIndex(weights=SEARCH_WEIGHTS)
        for article_id, doc in published.items():
            index.put(article_id, doc["published_tokens"])
        popular = sorted(published, key=lambda a: -published[a].get("views", 0))
        by_topic: dict[str, list[str]] = {}
        for article_id in popular:
            for topic in published[article_id]["published"]["topics"]:
                by_topic.setdefault(topic, []).append(article_id)
        # Swapped whole, so a reader never sees a half-built snapshot.
        self.published, self.search, self.popular, self.by_topic = (
            published,
            index,
            popular,
            by_topic,
        )

    async def load(self, db: AsyncDatabase) -> None:
        self.replace(await storage.all_live(db))
        self._loaded_at = time.monotonic()

    async def reload_after_write(self, db: AsyncDatabase, kv: Kv) -> None:
        """Signal other processes, then reload here at once (the writer sees its own change);
        the counter value is remembered so the polling loop doesn't load it a second time."""
        counter = await storage.note_change(kv)
        await self.load(db)
        self._seen = counter

    async def poll_once(self, db: AsyncDatabase, kv: Kv) -> None:
        try:
            counter: int | None = await storage.change_counter(kv)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            counter = None
        stale = time.monotonic() - self._loaded_at > FULL_RELOAD_SECONDS
        if stale or counter != self._seen:
            await self.load(db)
            self._seen = counter
        if time.monotonic() - self._folded_at > FOLD_VIEWS_SECONDS:
            self._folded_at = time.monotonic()
            await fold_views(db, kv)

    async def run(self, db: AsyncDatabase, kv: Kv, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll_once(db, kv)
            except (PyMongoError, OSError, redis.exceptions.RedisError) as error:
                log.warning("article cache refresh failed", extra={"error": repr(error)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)


async def fold_views(db: AsyncDatabase, kv: Kv) -> int:
    """Move pending view counts from Redis to MongoDB. Counts live in Redis (AOF, fsync
    every second) until folded, so a Redis restart loses at most about a second of views."""
    counts = await storage.take_pending_views(kv)
    try:
        await storage.add_views(db, counts)
    except PyMongoError:
        async with kv.redis.pipeline(transaction=False) as pipe:  # give them back
            for article_id, count in counts.items():
                pipe.hincrby(kv.key("articles:views_pending"), article_id, count)
            await pipe.execute()
        raise
    return sum(counts.values())
