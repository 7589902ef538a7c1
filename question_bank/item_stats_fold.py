"""Folds the item-statistics outbox into the statistics, each stored attempt exactly once,
whichever app process does it.

The attempts' writer stores an outbox entry (`item_stats_pending`, `_id` = the attempt's id,
with its responses) durably *before* the attempt, so no stored attempt lacks one. One process
at a time folds (a lease in `item_stats_fold`, taken over when its holder dies or stalls).
It takes the oldest pending entries whose attempts are stored as a numbered batch, records
the batch before applying it, adds the batch's merged increments to each item in one update
guarded by the item's last folded batch number, marks the entries folded, and clears the
batch. A holder that died anywhere in between leaves the batch recorded; the next holder
finishes it under the same number, and the guard lets no item take it twice (a stalled
holder waking up late is refused by the same guard, the item having moved on).

A folded entry leaves the outbox (so the fold's scan stays small) and a marker for a day
(longer than any quiz can still be submitted): a retried submit of an attempt already folded
queues its entry again, and the fold drops it on seeing the marker. An entry whose
attempt is still missing after ORPHAN_GRACE belongs to a submit that failed before its
attempt was stored: it is dropped (the client's retry writes a new entry and attempt).

One guarded update per item per batch keeps item documents small and the fold cheap: a
county's burst of answers costs a few hundred updates a second, not one per answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from pymongo.asynchronous.database import AsyncDatabase

from question_bank import storage
from question_bank.item_stats import batch_increments
from server.kernel.clock import now
from server.kernel.logs import log_background_failure

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
BATCH = 500
LEASE = timedelta(seconds=60)
# A submit stores its attempt within seconds of its entry (client timeouts are ~10 s).
ORPHAN_GRACE = timedelta(minutes=2)
# Longer than any retry of a submit can come: the longest quiz lasts 90 minutes.
KEEP_FOLDED = timedelta(days=1)
PRUNE_EVERY_SECONDS = 600.0
# Who holds the lease: unique per process (and per fold loop, in tests with several apps).
_PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


class FoldResult(NamedTuple):
    read: int
    folded: int
    dropped: int


async def fold_once(db: AsyncDatabase, *, owner: str = _PROCESS) -> FoldResult:
    """Finish a batch left unfinished, or fold the oldest pending entries whose attempts are
    stored; drop orphans. Does nothing while another process holds the lease."""
    try:
        return await _fold(db, owner)
    finally:
        await storage.release_fold(db, owner=owner, at=now())


async def _fold(db: AsyncDatabase, owner: str) -> FoldResult:
    at = now()
    state = await storage.claim_fold(db, owner=owner, until=at + LEASE, at=at)
    if state is None:
        return FoldResult(0, 0, 0)
    if state["batch"] is not None:
        folded = await _apply(db, owner, state["batch"]["seq"], state["batch"]["entries"])
        return FoldResult(folded, folded, 0)
    entries = await storage.pending_entries(db, limit=BATCH)
    if not entries:
        return FoldResult(0, 0, 0)
    again = await storage.folded_already(db, [entry["_id"] for entry in entries])
    if again:  # late retries of submits folded before: nothing new to count
        await storage.discard_pending(db, sorted(again))
        entries = [entry for entry in entries if entry["_id"] not in again]
    stored = await storage.stored_attempts(db, [entry["_id"] for entry in entries])
    ready = [entry["_id"] for entry in entries if entry["_id"] in stored]
    folded = 0
    if ready:
        seq = state["seq"] + 1
        if not await storage.start_batch(db, owner=owner, seq=seq, entry_ids=ready):
            return FoldResult(len(entries), 0, 0)  # the lease moved on meanwhile
        folded = await _apply(db, owner, seq, ready)
    dropped = await _drop_orphans(db, [e for e in entries if e["_id"] not in stored], at)
    return FoldResult(len(entries), folded, dropped)


async def _apply(db: AsyncDatabase, owner: str, seq: int, entry_ids: list[str]) -> int:
    """Apply one recorded batch (again, after a crash: the guard skips what was done)."""
    entries = await storage.entries(db, entry_ids)  # those still in the outbox
    await storage.apply_batch(db, seq, batch_increments(entries))
    await storage.mark_folded(db, entry_ids, now())
    await storage.finish_batch(db, owner=owner, seq=seq)
    return len(entry_ids)


async def _drop_orphans(db: AsyncDatabase, waiting: list[storage.Document], at: datetime) -> int:
    """Drop entries whose attempt has not come within the grace (nor been written again)."""
    cutoff = at - ORPHAN_GRACE
    orphans = [e["_id"] for e in waiting if e["at"] < cutoff]
    dropped = await storage.drop_pending(db, orphans, written_before=cutoff)
    if dropped:
        log.info("dropped item-statistics entries of attempts never stored", extra={"n": dropped})
    return dropped


async def prune(db: AsyncDatabase) -> int:
    """Delete folded entries too old for any retry of their submit to come."""
    return await storage.prune_folded(db, written_before=now() - KEEP_FOLDED)


async def run(db: AsyncDatabase, stop: asyncio.Event) -> None:
    """Fold every second until `stop` is set; straight on while a full batch made progress."""
    pruned_at = -PRUNE_EVERY_SECONDS
    while not stop.is_set():
        backlog = False
        try:
            result = await fold_once(db)
            backlog = result.read >= BATCH and result.folded + result.dropped > 0
            if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                await prune(db)
                pruned_at = time.monotonic()
        except Exception:
            log_background_failure(log, "item statistics fold failed; retrying in a second")
        if not backlog:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)
