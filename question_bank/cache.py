"""In-memory snapshot of the question bank, per process: the published questions the quiz
service draws from (never a MongoDB round-trip per quiz), plus the search and near-duplicate
indexes over every live question.

Freshness: every write appends the changed question to a change feed (a Redis stream) and
each process reads the feed several times a second, applying the documents it carries, so
propagation costs no MongoDB query. Bulk
writes append a "reload" event instead. Safety nets, since the feed is not the source of
truth: a full reload at start-up, when the feed was trimmed past our position, and every
ten minutes; while Redis is unreachable, a delta query on MongoDB by change time every few
seconds (with an overlap for clock skew between app servers)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from question_bank import item_params, storage
from question_bank.duplicates import NearDuplicateIndex
from question_bank.item_stats import MIN_ATTEMPTS_FOR_FLAGS
from server.kernel.kv import Kv
from server.search.index import SearchIndex

log = logging.getLogger(__name__)

Document = dict[str, Any]
SEARCH_WEIGHTS = {"stem": 2.0, "options": 1.0, "explanation": 0.5, "tags": 1.5}
OVERLAP = timedelta(seconds=10)
FULL_RELOAD_SECONDS = 600
DELTA_INTERVAL_SECONDS = 5


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


_GENERATIONS = itertools.count(1)


@dataclass
class BankCache:
    poll_interval: float = 0.2
    docs: dict[str, Document] = field(default_factory=dict)
    published: dict[str, PublishedQuestion] = field(default_factory=dict)
    search: SearchIndex = field(default_factory=lambda: SearchIndex(weights=SEARCH_WEIGHTS))
    near: NearDuplicateIndex = field(default_factory=NearDuplicateIndex)
    # Observed share correct per "id:version" with enough attempts (assessment forms use it
    # to balance difficulty); refreshed with every full reload.
    facility: dict[str, float] = field(default_factory=dict)
    # IRT parameters per "id:version" and the scale they are on (None before the first
    # calibration, when assessments are scored as percent correct); refreshed likewise.
    irt: dict[str, item_params.ItemParams] = field(default_factory=dict)
    scale: item_params.Scale | None = None
    # "id:version" of items a DIF check keeps off assessment forms until an editor reviews them.
    held_from_assessment: frozenset[str] = frozenset()
    # Names the published set; a new number (never reused in this process, by any cache)
    # whenever the set changes, so structures derived from it can be kept until then.
    generation: int = field(default_factory=lambda: next(_GENERATIONS))
    _watermark: datetime | None = None
    _feed_position: bytes | None = None
    _loaded_at: float = 0.0
    _last_delta: float = 0.0

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
            self.generation = next(_GENERATIONS)

    def _drop(self, doc_id: str) -> None:
        self.docs.pop(doc_id, None)
        self.search.remove(doc_id)
        self.near.remove(doc_id)
        if self.published.pop(doc_id, None) is not None:
            self.generation = next(_GENERATIONS)

    async def load(self, db: AsyncDatabase) -> None:
        """Replace the whole snapshot with what is stored."""
        stored = await storage.load_all(db)
        self.facility = await storage.facilities(db, min_attempts=MIN_ATTEMPTS_FOR_FLAGS)
        irt, scale = await item_params.load(db)
        if (irt, scale) != (self.irt, self.scale):
            self.irt, self.scale = irt, scale
            self.held_from_assessment = frozenset(
                key for key, params in irt.items() if params.held_from_assessment
            )
            self.generation = next(_GENERATIONS)  # assessment forms are arranged from them
        for doc in stored:
            self.apply(doc)
        for gone in set(self.docs) - {str(doc["_id"]) for doc in stored}:
            self._drop(gone)
        log.info(
            "question bank loaded",
            extra={"questions": len(self.docs), "published": len(self.published)},
        )

    async def refresh(self, db: AsyncDatabase) -> int:
        """Apply what changed in MongoDB since our watermark (used when the feed is away)."""
        if self._watermark is None:
            await self.load(db)
            return len(self.docs)
        changed = await storage.changed_since(db, self._watermark - OVERLAP)
        for doc in changed:
            self.apply(doc)
        return len(changed)

    async def start(self, db: AsyncDatabase, kv: Kv) -> None:
        """Note the feed's position, then load: events racing with the load are re-applied,
        which is harmless (apply keeps the newer document)."""
        with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self._feed_position, _ = await storage.feed_position(kv)
        await self.load(db)
        self._loaded_at = time.monotonic()

    async def follow_feed(self, db: AsyncDatabase, kv: Kv) -> None:
        if self._feed_position is None:
            self._feed_position, _ = await storage.feed_position(kv)
            await self.load(db)  # we were away from the feed: catch up from storage
            return
        _, oldest = await storage.feed_position(kv)
        if (
            oldest is not None
            and _stream_id(oldest) > _stream_id(self._feed_position)
            and self._feed_position != b"0-0"
        ):
            self._feed_position = None  # trimmed past us: reload on the next round
            return
        while events := await storage.read_feed(kv, self._feed_position):
            reload = False
            for event_id, doc in events:
                self._feed_position = event_id
                if doc is None:
                    reload = True
                else:
                    self.apply(doc)
            if reload:
                await self.load(db)

    async def poll_once(self, db: AsyncDatabase, kv: Kv) -> None:
        if time.monotonic() - self._loaded_at > FULL_RELOAD_SECONDS:
            await self.load(db)
            self._loaded_at = time.monotonic()
        try:
            await self.follow_feed(db, kv)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self._feed_position = None
            if time.monotonic() - self._last_delta > DELTA_INTERVAL_SECONDS:
                self._last_delta = time.monotonic()
                await self.refresh(db)

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


def _stream_id(value: bytes) -> tuple[int, int]:
    millis, _, seq = value.decode().partition("-")
    return int(millis), int(seq or 0)
