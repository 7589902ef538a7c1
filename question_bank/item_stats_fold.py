"""Folds the item-statistics outbox into the statistics, each stored attempt exactly once,
from any number of app processes at once.

The attempts' writer stores an outbox entry (`item_stats_pending`, `_id` = the attempt's id,
with its responses) durably *before* the attempt, so no stored attempt lacks one. A fold pass
takes the oldest pending entries; an entry whose attempt is stored is added to each item's
sums by a guarded single-document update (skipped if the entry's id is among the item's
`recent` ones, recorded there atomically with the `$inc`), then marked folded. So two
processes folding one entry at once, or a fold re-run after one that died between applying
and marking, add nothing twice. Folded entries are kept for a day (longer than any quiz can
still be submitted), so a retried submit of an attempt already folded finds its entry and
cannot queue it again. An entry whose attempt is still missing after ORPHAN_GRACE belongs to
a submit that failed before its attempt was stored: it is dropped (the client's retry writes
a new entry and attempt).

The one remaining window: a guarded update runs again for an entry after more than RECENT
other entries were applied to the same item since its first application. That needs a folder
stalled (or crashed, with no other process folding) between reading an entry and marking it,
for as long as a thousand other answers to that item take to arrive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import NamedTuple

from pymongo.asynchronous.database import AsyncDatabase

from question_bank import storage
from question_bank.item_stats import entry_increments
from server.kernel.clock import now

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
BATCH = 200
# Guard depth per item. Each id is ~40 bytes, so an item document carries up to ~45 KB of
# guard; deeper only lengthens a window that needs a stalled folder (module docstring).
RECENT = 1000
# A submit stores its attempt within seconds of its entry (client timeouts are ~10 s).
ORPHAN_GRACE = timedelta(minutes=2)
# Longer than any retry of a submit can come: the longest quiz lasts 90 minutes.
KEEP_FOLDED = timedelta(days=1)
PRUNE_EVERY_SECONDS = 600.0


class FoldResult(NamedTuple):
    read: int
    folded: int
    dropped: int


async def fold_once(db: AsyncDatabase) -> FoldResult:
    """Fold the oldest pending outbox entries whose attempts are stored; drop orphans."""
    entries = await storage.pending_entries(db, limit=BATCH)
    if not entries:
        return FoldResult(0, 0, 0)
    stored = await storage.stored_attempts(db, [entry["_id"] for entry in entries])
    ready = [entry for entry in entries if entry["_id"] in stored]
    updates = [
        (entry["_id"], question_id, version, inc)
        for entry in ready
        for (question_id, version), inc in entry_increments(entry).items()
    ]
    # Read at call time (not bound as a default) so a test can narrow the guard.
    await storage.apply_increments(db, updates, keep=RECENT)
    await storage.mark_folded(db, [entry["_id"] for entry in ready])
    cutoff = now() - ORPHAN_GRACE
    orphans = [e["_id"] for e in entries if e["_id"] not in stored and e["at"] < cutoff]
    dropped = await storage.drop_pending(db, orphans, written_before=cutoff)
    if dropped:
        log.info("dropped item-statistics entries of attempts never stored", extra={"n": dropped})
    return FoldResult(len(entries), len(ready), dropped)


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
            backlog = result.read == BATCH and result.folded + result.dropped > 0
            if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                await prune(db)
                pruned_at = time.monotonic()
        except Exception:
            log.exception("item statistics fold failed; retrying in a second")
        if not backlog:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)
