"""Incremental aggregates of scored assessments: one cell per period × township × group ×
age band × gender × education, holding counts, literate and tier counts, and the sums (and
sums of squares) of the total and of each dimension's score.

Estimates read cells, never attempts. Scores are summed in integer hundredths of a point, so
the sums are exact and `rebuild-stats` (which adds the same numbers in another order)
reproduces the incremental cells bit for bit.

An assessment counts in the month it was started and, if it is the resident's first of that
year, in the year; the attempt records which (`assessment.counts_in`), decided once when it
was submitted, so a rebuild never has to re-decide it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.int64 import Int64
from pymongo.asynchronous.database import AsyncDatabase

from scoring import storage
from scoring.assessment import DIMENSIONS

log = logging.getLogger(__name__)
Document = dict[str, Any]

CELL_FIELDS = ("township_code", "group", "age_band", "gender", "education")
RECENTLY_APPLIED = 10_000  # attempt ids remembered, so a late retry is not counted again
SELF_INITIATED = "self"  # the channel of a resident who came without a campaign code


def cell_key(period: str, profile: Document) -> tuple[str, ...]:
    return (period, *(str(profile.get(name) or "unknown") for name in CELL_FIELDS))


def cell_id(key: tuple[str, ...]) -> str:
    return "|".join(key)


def cell_fields(key: tuple[str, ...]) -> Document:
    return {"period": key[0], **dict(zip(CELL_FIELDS, key[1:], strict=True))}


def increments(attempt: Document) -> dict[str, float]:
    """What one scored assessment adds to each of its cells."""
    result = attempt["assessment"]
    total = result["total_hundredths"]
    inc: dict[str, float] = {
        "n": 1,
        "literate": 1 if result["literate"] else 0,
        f"tiers.{result['tier']}": 1,
        "total.s": total,
        "total.ss": total * total,
    }
    channel = attempt.get("channel") or SELF_INITIATED
    inc[f"channels.{channel}.n"] = 1
    inc[f"channels.{channel}.literate"] = inc["literate"]
    for dimension in DIMENSIONS:
        value = result["dimension_hundredths"][dimension]
        inc[f"dims.{dimension}.s"] = value
        inc[f"dims.{dimension}.ss"] = value * value
    return inc


Cells = dict[tuple[str, ...], dict[str, float]]


def merge(attempts: Iterable[Document], into: Cells | None = None) -> Cells:
    """Sum the increments of many attempts per cell (for a batch, or for a full rebuild)."""
    cells: Cells = {} if into is None else into
    for attempt in attempts:
        for period in attempt["assessment"]["counts_in"]:
            merged = cells.setdefault(cell_key(period, attempt["profile"]), {})
            for name, value in increments(attempt).items():
                merged[name] = merged.get(name, 0) + value
    return cells


async def rebuild(db: AsyncDatabase) -> int:
    """Recompute every cell from the stored assessments and swap them in; returns the count.
    Each attempt counts in the periods recorded when it was submitted."""
    cells: Cells = {}
    uncounted = []
    async for attempt in storage.scored_assessments(db):
        merge([attempt], into=cells)
        if not attempt["assessment"].get("cells_applied"):
            uncounted.append(attempt["_id"])
    await storage.replace_cells(db, as_documents(cells))
    # Counted now: the sweep must not add them again.
    await storage.mark_cells_applied(db, uncounted)
    await storage.bump_stats_version(db, "cells")
    return len(cells)


async def count_uncounted(writer: CellWriter, *, before: datetime) -> int:
    """Apply the cells of stored assessments submitted before `before` and never counted."""
    missed = await storage.uncounted_assessments(writer.db, before=before)
    for attempt in missed:
        await writer.apply(attempt)
        log.info("counted a stored assessment missed by the cells", extra={"id": attempt["_id"]})
    return len(missed)


SWEEP_EVERY_SECONDS = 600
SWEEP_MIN_AGE_SECONDS = 120  # younger ones may still be on their way through a writer


async def sweep_uncounted(writer: CellWriter, stop: asyncio.Event) -> None:
    """Count stored assessments whose cells were never applied (the process stopped, or the
    cell write failed and the resident never retried), shortly after start and then every
    ten minutes."""
    delay = 60.0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        delay = SWEEP_EVERY_SECONDS
        try:
            await count_uncounted(
                writer, before=datetime.now(UTC) - timedelta(seconds=SWEEP_MIN_AGE_SECONDS)
            )
        except Exception:
            log.exception("sweep of uncounted assessments failed; next try in ten minutes")


def as_documents(cells: Cells) -> list[Document]:
    """Cells in their stored shape (nested, as `$inc` on dotted names would leave them)."""
    docs = []
    for key, sums in cells.items():
        doc: Document = {"_id": cell_id(key), **cell_fields(key)}
        for dotted, value in sums.items():
            *parents, leaf = dotted.split(".")
            target = doc
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = Int64(value)  # as the incremental writer stores them
        docs.append(doc)
    return docs


@dataclass
class CellWriter:
    """Applies cell increments from one task, so that no two updates of a cell from this
    process overlap: FerretDB applies `$inc` as read-modify-write and loses concurrent
    updates (300 concurrent increments left 14 in a test). Concurrent submissions are merged
    into one batch, like the attempt writer's group commit."""

    db: AsyncDatabase
    # Told after each applied batch (the estimates' cache follows it).
    on_change: Callable[[set[str]], Awaitable[None]] | None = None  # told the periods touched
    _queue: asyncio.Queue[tuple[Document, asyncio.Future[None]]] = field(
        default_factory=asyncio.Queue
    )
    _task: asyncio.Task[None] | None = None
    _pending: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    _applied: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cell-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def apply(self, attempt: Document) -> None:
        """Add one stored assessment to its cells; returns once they are written. Retries of
        the same attempt racing each other (a double tap, a flaky network) share one write,
        and one applied moments ago is not applied again."""
        attempt_id = attempt["_id"]
        if attempt_id in self._applied:
            return
        pending = self._pending.get(attempt_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[attempt_id] = pending
            await self._queue.put((attempt, pending))
        await asyncio.shield(pending)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[tuple[Document, asyncio.Future[None]]]) -> None:
        attempts = {doc["_id"]: doc for doc, _ in batch}  # a doubled retry counts once
        try:
            merged = merge(attempts.values())
            await storage.increment_cells(
                self.db, [(cell_id(key), cell_fields(key), inc) for key, inc in merged.items()]
            )
            await storage.mark_cells_applied(self.db, list(attempts))
            if self.on_change is not None:
                await self.on_change({key[0] for key in merged})
        except Exception as error:
            for doc, future in batch:
                self._pending.pop(doc["_id"], None)
                if not future.done():
                    future.set_exception(error)
            return
        for doc, future in batch:
            self._pending.pop(doc["_id"], None)
            self._remember(doc["_id"])
            if not future.done():
                future.set_result(None)

    def _remember(self, attempt_id: str) -> None:
        self._applied[attempt_id] = None
        while len(self._applied) > RECENTLY_APPLIED:
            self._applied.popitem(last=False)
