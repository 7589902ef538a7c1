"""In-memory snapshot of the question bank, per process: the published questions the quiz
service draws from (never a MongoDB round-trip per quiz), plus the search and near-duplicate
indexes over every live question.

Freshness: every write bumps a counter in Redis; each process polls it (twice a second)
and, when it moved, reads from MongoDB the questions changed since its watermark (minus an
overlap that absorbs clock skew between app servers and writes that commit late). If Redis
is unreachable it reads the delta anyway, so publishing still propagates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from question_bank import storage
from question_bank.duplicates import NearDuplicateIndex
from question_bank.search import SearchIndex
from server.kv import Kv

log = logging.getLogger(__name__)

Document = dict[str, Any]
SEARCH_WEIGHTS = {"stem": 2.0, "options": 1.0, "explanation": 0.5, "tags": 1.5}
OVERLAP = timedelta(seconds=10)


@dataclass(frozen=True)
class PublishedQuestion:
    """A question as served to residents (answer and explanation stay server-side)."""

    id: str
    version: int
    type: str
    stem: str
    options: tuple[tuple[str, str], ...]
    answer: tuple[str, ...]
    explanation: str
    dimension: str
    topic: str
    audiences: tuple[str, ...]
    difficulty: int


def duplicate_tokens(doc: Document) -> list[str]:
    tokens = doc.get("search_tokens", {})
    return [*tokens.get("stem", []), *tokens.get("options", [])]


def _published_view(doc: Document) -> PublishedQuestion | None:
    snapshot = doc.get("published")
    if not snapshot or doc.get("status") == "retired" or doc.get("deleted_at"):
        return None
    return PublishedQuestion(
        id=str(doc["_id"]),
        version=int(doc["published_version"]),
        type=snapshot["type"],
        stem=snapshot["stem"],
        options=tuple((o["key"], o["text"]) for o in snapshot["options"]),
        answer=tuple(snapshot["answer"]),
        explanation=snapshot.get("explanation", ""),
        dimension=snapshot["dimension"],
        topic=snapshot["topic"],
        audiences=tuple(snapshot["audiences"]),
        difficulty=int(snapshot.get("difficulty", 3)),
    )


@dataclass
class BankCache:
    poll_interval: float = 0.5
    docs: dict[str, Document] = field(default_factory=dict)
    published: dict[str, PublishedQuestion] = field(default_factory=dict)
    search: SearchIndex = field(default_factory=lambda: SearchIndex(weights=SEARCH_WEIGHTS))
    near: NearDuplicateIndex = field(default_factory=NearDuplicateIndex)
    # Bumped whenever the published set changes, so derived structures can be rebuilt lazily.
    generation: int = 0
    _watermark: datetime | None = None
    _seen_counter: int | None = None

    def apply(self, doc: Document) -> None:
        """Take a question document as stored (newer than what we hold, or ignored)."""
        doc_id = str(doc["_id"])
        held = self.docs.get(doc_id)
        if held is not None and held["changed_at"] > doc["changed_at"]:
            return
        if self._watermark is None or doc["changed_at"] > self._watermark:
            self._watermark = doc["changed_at"]
        if doc.get("deleted_at"):
            self._drop(doc_id)
            return
        self.docs[doc_id] = doc
        self.search.put(doc_id, doc.get("search_tokens", {}))
        self.near.put(doc_id, duplicate_tokens(doc))
        view = _published_view(doc)
        if view != self.published.get(doc_id):
            if view is None:
                self.published.pop(doc_id, None)
            else:
                self.published[doc_id] = view
            self.generation += 1

    def _drop(self, doc_id: str) -> None:
        self.docs.pop(doc_id, None)
        self.search.remove(doc_id)
        self.near.remove(doc_id)
        if self.published.pop(doc_id, None) is not None:
            self.generation += 1

    async def load(self, db: AsyncDatabase) -> None:
        for doc in await storage.load_all(db):
            self.apply(doc)
        log.info(
            "question bank loaded",
            extra={"questions": len(self.docs), "published": len(self.published)},
        )

    async def refresh(self, db: AsyncDatabase) -> int:
        if self._watermark is None:
            await self.load(db)
            return len(self.docs)
        changed = await storage.changed_since(db, self._watermark - OVERLAP)
        for doc in changed:
            self.apply(doc)
        return len(changed)

    async def poll_once(self, db: AsyncDatabase, kv: Kv) -> None:
        try:
            counter: int | None = await storage.change_counter(kv)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            counter = None  # can't tell: look at MongoDB directly
        if counter is not None and counter == self._seen_counter:
            return
        await self.refresh(db)
        self._seen_counter = counter

    async def run(self, db: AsyncDatabase, kv: Kv, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. Stopping by event rather than by cancellation alone: a
        cancellation landing inside a driver call is not reliably propagated."""
        while not stop.is_set():
            try:
                await self.poll_once(db, kv)
            except (PyMongoError, OSError) as error:
                log.warning("question bank refresh failed", extra={"error": repr(error)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)
