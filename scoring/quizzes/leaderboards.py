"""Points leaderboards and township participation, kept in Redis and fed attempt by attempt.

A submit adds its attempt to the boards with one script call, counted once however often it
is retried. Nothing on the request path reads the attempts collection: a new week or month
simply starts with empty boards. Only when Redis has lost its data (the `alive` marker is
gone) are the boards rebuilt from MongoDB, by one process at a time, in the background;
readers wait a few seconds for it and then serve what there is."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase

from scoring.quizzes import storage
from server.kernel.kv import Kv
from server.kernel.logs import log_background_failure

log = logging.getLogger(__name__)
Document = dict[str, Any]

PERIODS = ("week", "month", "all")
REDIS_AWAY = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# A rebuild reads every attempt of the last 40 days one by one (covering this month and the
# previous week, whose awards may still be arriving) and sums older ones with one aggregate.
DETAILED_DAYS = 40
# Attempts stored while a rebuild runs are counted again afterwards (once, by the applied
# set); a write is acknowledged well within this margin of its submit time.
CATCH_UP_MARGIN_SECONDS = 60
REBUILD_LOCK_SECONDS = 600
READ_WAIT_SECONDS = 5.0


async def count(kv: Kv, attempt: Document) -> int:
    """Count one stored attempt on its boards and participation sets, once (see
    `storage.award` for the result)."""
    boards, participations = targets(kv, attempt)
    return await storage.award(
        kv,
        attempt_id=attempt["_id"],
        user_id=attempt["user_id"],
        points=int(attempt.get("points") or 0),
        submitted=attempt["submitted_at"].timestamp(),
        week=attempt["periods"]["week"],
        boards=boards,
        participations=participations,
    )


def targets(kv: Kv, attempt: Document) -> tuple[list[str], list[str]]:
    """The boards an attempt's points go to and the participation sets it joins."""
    township = (attempt.get("profile") or {}).get("township_code")
    periods = attempt["periods"]
    boards, participations = [], []
    for period in PERIODS:
        key = periods[period]
        if attempt.get("points"):
            boards.append(storage.board_key(kv, None, period, key))
            if township:
                boards.append(storage.board_key(kv, township, period, key))
        if township:
            participations.append(storage.participants_key(kv, township, period, key))
    return boards, participations


@dataclass
class Leaderboards:
    """The boards of one deployment, with this process's share of the single-flight rebuild."""

    db: AsyncDatabase
    kv: Kv
    _rebuild: asyncio.Task[None] | None = field(default=None, repr=False)

    _missed: bool = field(default=False, repr=False)

    async def check_on_start(self) -> None:
        """Rebuild in the background if Redis lost the boards while no process was running
        (or they were never built: the first start on an existing database)."""
        try:
            alive = await storage.boards_alive(self.kv)
        except REDIS_AWAY:
            log.warning("redis unavailable at start; the boards are checked at the next award")
            return
        if not alive:
            self.start_rebuild()

    async def add(self, attempt: Document) -> None:
        """Count a stored attempt on its boards (once); if the boards are lost, start the
        rebuild, which counts it from MongoDB. An attempt that could not be counted because
        Redis was away is caught up by a rebuild as soon as Redis answers again."""
        try:
            if self._missed:
                await storage.forget_boards(self.kv)
                self._missed = False
            counted = await count(self.kv, attempt)
        except REDIS_AWAY:
            self._missed = True
            raise
        if counted < 0:
            self.start_rebuild()

    async def ready(self) -> bool:
        """Whether the boards are whole; if not, start the rebuild and wait a little for it."""
        if self._missed:  # this process could not count an attempt while Redis was away
            await storage.forget_boards(self.kv)
            self._missed = False
        if await storage.boards_alive(self.kv):
            return True
        self.start_rebuild()
        deadline = time.monotonic() + READ_WAIT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if await storage.boards_alive(self.kv):
                return True
        return False

    def start_rebuild(self) -> None:
        if self._rebuild is None or self._rebuild.done():
            self._rebuild = asyncio.create_task(self._rebuild_once(), name="leaderboard-rebuild")

    async def rebuilt(self) -> None:
        """Wait for this process's rebuild, if one is running (for tests and tools)."""
        if self._rebuild is not None:
            await asyncio.gather(self._rebuild, return_exceptions=True)

    async def stop(self) -> None:
        if self._rebuild is not None and not self._rebuild.done():
            self._rebuild.cancel()
            await asyncio.gather(self._rebuild, return_exceptions=True)

    async def _rebuild_once(self) -> None:
        token = secrets.token_hex(8)
        if not await storage.take_rebuild_lock(self.kv, token, REBUILD_LOCK_SECONDS):
            return  # another process is rebuilding; readers poll the marker
        try:
            if not await storage.boards_alive(self.kv):
                await rebuild(self.db, self.kv)
        except Exception:
            log_background_failure(
                log, "leaderboard rebuild failed; the next award or read retries it"
            )
        finally:
            await storage.release_rebuild_lock(self.kv, token)


async def rebuild(db: AsyncDatabase, kv: Kv) -> int:
    """Rebuild every board and participation set from the attempts. Returns the number of
    attempts read one by one."""
    started = datetime.now(UTC)
    floor = started - timedelta(days=DETAILED_DAYS)
    boards: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    participants: dict[str, set[str]] = defaultdict(set)
    applied: dict[str, list[str]] = defaultdict(list)
    for row in await storage.points_before(db, floor):
        _add_all_time(kv, boards, participants, row["_id"]["u"], row["_id"].get("t"), row["points"])
    detailed = 0
    async for attempt in storage.attempts_since(db, floor):
        detailed += 1
        _add(kv, boards, participants, attempt)
        applied[attempt["periods"]["week"]].append(attempt["_id"])
    await storage.replace_boards(
        kv, floor=floor.timestamp(), boards=boards, participants=participants, applied=applied
    )
    caught_up = await _catch_up(db, kv, since=started - timedelta(seconds=CATCH_UP_MARGIN_SECONDS))
    log.info(
        "leaderboards rebuilt",
        extra={"detailed": detailed, "caught_up": caught_up, "boards": len(boards)},
    )
    return detailed


def _add(
    kv: Kv,
    boards: dict[str, dict[str, float]],
    participants: dict[str, set[str]],
    attempt: Document,
) -> None:
    board_keys, participation_keys = targets(kv, attempt)
    for board in board_keys:
        boards[board][attempt["user_id"]] += attempt["points"]
    for key in participation_keys:
        participants[key].add(attempt["user_id"])


def _add_all_time(
    kv: Kv,
    boards: dict[str, dict[str, float]],
    participants: dict[str, set[str]],
    user_id: str,
    township: str | None,
    points: float,
) -> None:
    """A resident's older points (summed by the aggregate) on the all-time boards."""
    for code in [None, township] if township else [None]:
        if points:
            boards[storage.board_key(kv, code, "all", "all")][user_id] += points
    if township:
        participants[storage.participants_key(kv, township, "all", "all")].add(user_id)


async def _catch_up(db: AsyncDatabase, kv: Kv, *, since: datetime) -> int:
    """Count attempts stored while the rebuild ran (their own awards found no marker)."""
    counted = 0
    async for attempt in storage.attempts_since(db, since):
        counted += max(0, await count(kv, attempt))
    return counted
