"""Buffers item-statistics increments from scored quizzes and writes them merged, once a
second: one upsert per (question, version) touched instead of one per answer, which keeps
the statistics off the submit path.

Trade-off: increments not yet flushed when a process dies are lost (at most about a second
of answers); the attempts themselves are stored durably, so statistics could be recomputed
from them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from question_bank import storage
from question_bank.item_stats import Response, increments

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0


@dataclass
class ItemStatsBuffer:
    db: AsyncDatabase
    _pending: dict[tuple[str, int], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )

    def add(self, responses: list[Response]) -> None:
        for response in responses:
            merged = self._pending[(response.question_id, response.version)]
            for name, value in increments(response).items():
                merged[name] += value

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, defaultdict(lambda: defaultdict(float))
        try:
            await storage.add_item_responses(
                self.db, [(qid, version, dict(inc)) for (qid, version), inc in batch.items()]
            )
        except PyMongoError:
            log.warning("item statistics flush failed; will retry")
            for key, inc in batch.items():  # put them back for the next flush
                for name, value in inc.items():
                    self._pending[key][name] += value

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            await self.flush()
