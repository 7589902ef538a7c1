"""Group commit for submitted attempts: concurrent submissions are written together in one
insert_many (journaled, majority-acknowledged) instead of one round-trip each. A submit still
returns only after its own document is durably stored.

Batches form naturally: while one batch is being written, new submissions queue up and go
in the next; under light load a batch is a single document, with no added delay.

Each batch first queues its answers for the item statistics (the question bank's outbox),
durably, and only then stores the attempts: a stored attempt always has its answers queued,
so the statistics count it even if this process dies right after. If queueing fails, the
batch fails and no submit in it is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from question_bank import service as question_service
from scoring.quizzes import storage

log = logging.getLogger(__name__)

MAX_BATCH = 100  # attempts per insert_many: one commit for a burst, bounded reply size


@dataclass
class AttemptWriter:
    db: AsyncDatabase
    _queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[bool]]] = field(
        default_factory=asyncio.Queue
    )
    _task: asyncio.Task[None] | None = None
    batches: int = 0
    written: int = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="attempt-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def insert(self, doc: dict[str, Any]) -> bool:
        """Store one attempt durably; False if its id (or daily/contest key) already exists."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((doc, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        docs = _unique_ids(batch)
        try:
            await question_service.record_pending_responses(self.db, docs)
            duplicates = set(await storage.insert_attempts(self.db, docs))
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.written += len(docs) - len(duplicates)
        inserted_ids: set[str] = set()
        for doc, future in batch:
            # A second copy of the same id in one batch is a duplicate even if the first went in.
            fresh = doc["_id"] not in duplicates and doc["_id"] not in inserted_ids
            inserted_ids.add(doc["_id"])
            if not future.done():
                future.set_result(fresh)


def _unique_ids(batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for doc, _ in batch:
        seen.setdefault(doc["_id"], doc)
    return list(seen.values())
