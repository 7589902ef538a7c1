"""Integrity screening of stored assessments, the reviewers' decisions, and what the reports
read of them.

Screening runs the pure detectors (`scoring.integrity.detectors.screen`) over stored
assessments and keeps one flag per attempt they name:

* as attempts arrive: every minute, the assessments stored since the last pass (those older
  than `SETTLE`, so none is still on its way through a submit), with the two days before as
  history (copying partners and a phone's residents close in time), and the norms, position
  chances and copying model fitted by this process's last nightly pass (fitted on the week
  when it has none), so a minute's work stays small on a busy county;
* nightly (from 02:00 county time): the last 7 days again with the 21 days before as history
  (a copying partner or a phone's fourth resident may have arrived after the first pass),
  and the township-week jumps of the current and previous week against the 8 weeks before.

One process screens at a time (a lease in MongoDB). Flags never change the figures by
themselves: an analyst's or admin's `exclude` takes the attempt out of the literacy cells
(scoring.quizzes.service.set_exclusion) and a later `keep` puts it back; the estimates change
only through the cells. Open strong flags feed the reports' "share without open flags"."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pymongo.asynchronous.database import AsyncDatabase

from scoring.integrity import storage
from scoring.integrity.copying import fit_copying_model
from scoring.integrity.detectors import (
    STRONG,
    AttemptRecord,
    Flag,
    WeekStats,
    flag_score,
    position_chances,
    screen,
    speed_norms,
    township_jumps,
)
from scoring.quizzes import service as quiz_service
from server.county import service as county_service
from server.county.periods import COUNTY_TZ, period_keys
from server.kernel.errors import Conflict, NotFound
from server.kernel.logs import log_background_failure

log = logging.getLogger(__name__)
Document = dict[str, Any]

SETTLE = timedelta(seconds=120)  # a submit is stored within its 10 s deadline; margin
ARRIVAL_CONTEXT = timedelta(days=2)
MODEL_CONTEXT = timedelta(days=7)
NIGHT_BATCH = timedelta(days=7)
NIGHT_HISTORY = timedelta(days=21)
JUMP_WEEKS = 10  # the current and previous week, and 8 weeks of history
NIGHT_HOUR = 2
EVERY_SECONDS = 60.0
LEASE = timedelta(minutes=15)

REASON_LABELS = {
    "speeding": "答题用时远低于同卷常模",
    "impossible_perfect": "全部答对但用时短得不可能",
    "copying": "与同乡镇同周他人的错误答案雷同，远超偶然",
    "shared_device": "同一设备短时间内为多名居民作答",
    "shared_network": "同一网络短时间内集中作答（仅提示）",
    "channel_burst": "同一渠道短时间内激增（仅提示）",
    "straight_lining": "几乎每题都选同一位置的选项",
    "helper_speed": "同一科普员经手的多份答卷用时远低于常模，非偶然",
    "helper_copying": "同一科普员经手的不同居民答卷错误答案雷同，远超偶然",
}


class FlagNotFound(NotFound):
    code = "flag_not_found"
    message = "没有这条诚信标记"


def flag_id_of(attempt_id: str) -> str:
    """A flag's public id: a digest of the attempt id, which embeds the resident's id."""
    return hashlib.sha256(f"integrity:{attempt_id}".encode()).hexdigest()[:24]


# ------------------------------------------------------------------ screening


@dataclass(frozen=True)
class PassSummary:
    screened: int
    flagged: int
    strong: int
    jumps: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> Document:
        return {k: v for k, v in self.__dict__.items() if v is not None}


async def _records(db: AsyncDatabase, start: datetime, end: datetime) -> list[Document]:
    if end <= start:
        return []
    return await quiz_service.assessments_between(db, start, end)


@dataclass(frozen=True)
class Models:
    """What the detectors fit on a week of attempts, reused by the minute passes."""

    norms: Any
    chances: Any
    copying: Any

    @classmethod
    def fit(cls, pool: Sequence[AttemptRecord]) -> Models:
        return cls(speed_norms(pool), position_chances(pool), fit_copying_model(pool))


async def screen_window(
    db: AsyncDatabase,
    *,
    start: datetime,
    end: datetime,
    history_start: datetime,
    models: Models | None = None,
    per_helper: bool = True,
) -> PassSummary:
    """Screen the assessments submitted in [start, end) against those since `history_start`
    (with `models` fitted before, else fitted on them) and record their flags; `per_helper`
    runs the checks of each helper's attempts taken together (nightly only, see
    scoring.integrity.helpers)."""
    began = time.perf_counter()
    batch_docs = await _records(db, start, end)
    history_docs = await _records(db, history_start, start) if batch_docs else []
    batch = [AttemptRecord.from_doc(d) for d in batch_docs]
    history = [AttemptRecord.from_doc(d) for d in history_docs]
    flags: list[Flag] = []
    if batch:
        flags = await asyncio.to_thread(_screen, batch, history, models, per_helper)
    docs = {str(d["_id"]): d for d in (*batch_docs, *history_docs)}
    strong, periods = await _record_flags(db, flags, docs)
    await _bump(db, periods)
    return PassSummary(len(batch), len(flags), strong, seconds=time.perf_counter() - began)


def _screen(
    batch: list[AttemptRecord],
    history: list[AttemptRecord],
    models: Models | None,
    per_helper: bool,
) -> list[Flag]:
    if models is None:
        return screen(batch, history=history, per_helper=per_helper)
    return screen(
        batch,
        history=history,
        norms=models.norms,
        chances=models.chances,
        copying_model=models.copying,
        per_helper=per_helper,
    )


async def _bump(db: AsyncDatabase, periods: set[str]) -> None:
    """Refit the figures of these periods only (their flag counts or open flags changed)."""
    if periods:
        await county_service.bump_stats_version(
            db, *(f"integrity_by_period.{p}" for p in sorted(periods))
        )


async def _record_flags(
    db: AsyncDatabase, flags: Sequence[Flag], docs: dict[str, Document]
) -> tuple[int, set[str]]:
    """Store the flags; returns how many are strong and the periods whose reported figures
    change (a new flag, or one that became strong or stopped being)."""
    now = datetime.now(UTC)
    public = {attempt_id: flag_id_of(attempt_id) for attempt_id in docs}
    known = await storage.strong_before(
        db, [public[f.attempt_id] for f in flags if f.attempt_id in public]
    )
    strong, changed = 0, set[str]()
    for flag in flags:
        attempt = docs.get(flag.attempt_id)
        if attempt is None:
            continue
        reasons = {
            r.code: {"strength": round(r.strength, 4), "evidence": _public(r.detail, public)}
            for r in flag.reasons
        }
        flag_id = public[flag.attempt_id]
        stored = await storage.record_reasons(db, flag_id, _flag_fields(attempt, now), reasons)
        score = flag_score({code: r["strength"] for code, r in stored["reasons"].items()})
        strong += score >= STRONG
        await storage.set_score(db, flag_id, score, score >= STRONG, now)
        if known.get(flag_id) != (score >= STRONG):
            changed.update(stored.get("counts_in") or ())
    return strong, changed


def _flag_fields(attempt: Document, now: datetime) -> Document:
    """What a flag keeps of its attempt: where and when it counts, never who."""
    submitted = attempt["submitted_at"]
    if submitted.tzinfo is None:
        submitted = submitted.replace(tzinfo=UTC)
    periods = period_keys(submitted)
    counts_in = list((attempt.get("assessment") or {}).get("counts_in") or [])
    return {
        "attempt_id": str(attempt["_id"]),
        "quiz_id": attempt.get("quiz_id"),
        "township_code": (attempt.get("profile") or {}).get("township_code"),
        "mode": attempt.get("mode"),
        "channel": attempt.get("channel"),
        "submitted_at": submitted,
        "week": periods["week"],
        "counts_in": counts_in,
        "created_at": now,
    }


def _public(value: Any, ids: dict[str, str]) -> Any:
    """Evidence as reviewers see it: other attempts named by their flag ids."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: _public(v, ids) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_public(v, ids) for v in value]
    return value


def _week_stats(docs: Sequence[Document]) -> dict[tuple[str, str], WeekStats]:
    """Each township-week's assessments: count, mean and SD of the total (0-100)."""
    totals: dict[tuple[str, str], list[float]] = {}
    for doc in docs:
        township = (doc.get("profile") or {}).get("township_code")
        submitted = doc["submitted_at"]
        if township is None:
            continue
        if submitted.tzinfo is None:
            submitted = submitted.replace(tzinfo=UTC)
        week = period_keys(submitted)["week"]
        totals.setdefault((township, week), []).append(float(doc["assessment"]["total"]))
    return {
        key: WeekStats(
            key[0],
            key[1],
            len(values),
            float(np.mean(values)),
            float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        )
        for key, values in totals.items()
    }


async def township_week_jumps(db: AsyncDatabase, now: datetime) -> int:
    """Find the jumps of this week and the last against each township's 8 weeks before, and
    keep them in place of those found before for these weeks."""
    docs = await quiz_service.assessment_totals_between(db, now - timedelta(weeks=JUMP_WEEKS), now)
    weeks = _week_stats(docs)
    this_week = period_keys(now)["week"]
    last_week = period_keys(now - timedelta(weeks=1))["week"]
    current = {key: w for key, w in weeks.items() if key[1] in (this_week, last_week)}
    history: dict[str, list[Any]] = {}
    for (township, week), stats in sorted(weeks.items()):
        if week < last_week:
            history.setdefault(township, []).append(stats)
    found = township_jumps(current, history)
    jumps = [
        {
            "_id": f"{j.township_code}|{j.week}|{j.measure}",
            "township_code": j.township_code,
            "week": j.week,
            "measure": j.measure,
            "observed": j.observed,
            "expected": j.expected,
            "statistic": j.statistic,
            "p_value": j.p_value,
            "p_adjusted": j.p_adjusted,
            "test": j.test,
            "history_weeks": j.history_weeks,
            "detail": j.detail,
            "found_at": now,
        }
        for j in found
    ]
    await storage.replace_jumps(db, [this_week, last_week], jumps)
    return len(jumps)


async def full_pass(db: AsyncDatabase, now: datetime) -> tuple[PassSummary, Models | None]:
    """The nightly pass: the last 7 days against the 21 before, then the township-week jumps
    and a check that every decided flag's attempt follows it. Returns the models fitted on
    the week, for the minute passes."""
    start = now - NIGHT_BATCH
    week = [AttemptRecord.from_doc(d) for d in await _records(db, now - MODEL_CONTEXT, now)]
    models = await asyncio.to_thread(Models.fit, week) if week else None
    summary = await screen_window(
        db, start=start, end=now, history_start=start - NIGHT_HISTORY, models=models
    )
    jumps = await township_week_jumps(db, now)
    await repair_decisions(db)
    totals = PassSummary(summary.screened, summary.flagged, summary.strong, jumps, summary.seconds)
    return totals, models


async def repair_decisions(db: AsyncDatabase) -> None:
    """Apply every decided flag's last decision to its attempt and cells again: a decision cut
    off between the flag and the attempt (a crash, a deadline) is finished here. Idempotent:
    the attempt takes a decision number only once, and the cells follow the attempt."""
    for flag in await storage.decided_flags(db):
        await quiz_service.set_exclusion(
            db,
            flag["attempt_id"],
            excluded=flag["status"] == "excluded",
            seq=int(flag.get("decision_seq") or 0),
        )


async def screen_now(db: AsyncDatabase, owner: str, now: datetime) -> PassSummary:
    """The nightly pass on demand, under the screening lease (409 while a pass runs)."""
    if not await storage.take_lease(db, owner, now, now + LEASE):
        raise ScreeningBusy()
    try:
        summary, _ = await full_pass(db, now)
        await storage.advance(db, owner, {"night_at": now})
        return summary
    finally:
        await storage.release_lease(db, owner)


class ScreeningBusy(Conflict):
    code = "screening_running"
    message = "诚信筛查正在进行，请稍后再试"


def _night_due(state: Document, now: datetime) -> bool:
    local = now.astimezone(COUNTY_TZ)
    tonight = local.replace(hour=NIGHT_HOUR, minute=0, second=0, microsecond=0)
    if local < tonight:
        tonight -= timedelta(days=1)
    last = state.get("night_at")
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last is None or last < tonight


class Screening:
    """This process's side of the screening: a pass a minute when it holds the lease."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db
        self.owner = f"{os.getpid()}:{os.urandom(6).hex()}"
        self.models: Models | None = None
        self.models_at: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        delay = 30.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return
            delay = EVERY_SECONDS
            try:
                await self.pass_once(datetime.now(UTC))
            except Exception:
                log_background_failure(log, "integrity screening failed; next try in a minute")

    async def pass_once(self, now: datetime) -> PassSummary | None:
        """Screen what arrived since the last pass, and run the nightly pass when due. None if
        another process holds the lease."""
        if not await storage.take_lease(self.db, self.owner, now, now + LEASE):
            return None
        try:
            state = await storage.screening_state(self.db)
            start = state.get("screened_until") or now - ARRIVAL_CONTEXT
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            end = now - SETTLE
            if _night_due(state, now):
                night, self.models = await full_pass(self.db, now)
                self.models_at = now
                await storage.advance(self.db, self.owner, {"night_at": now})
                log.info("nightly integrity screening", extra=night.as_dict())
            summary = await screen_window(
                self.db,
                start=start,
                end=end,
                history_start=start - ARRIVAL_CONTEXT,
                models=await self._models(now),
                per_helper=False,
            )
            if end > start:
                await storage.advance(self.db, self.owner, {"screened_until": end})
            if summary.flagged:
                log.info("integrity screening", extra=summary.as_dict())
            return summary
        finally:
            await storage.release_lease(self.db, self.owner)

    async def _models(self, now: datetime) -> Models | None:
        """This process's models, refitted on the last week when a day old or missing (the
        nightly pass may have run in another process)."""
        if self.models_at is None or now - self.models_at > timedelta(days=1):
            week = [
                AttemptRecord.from_doc(d) for d in await _records(self.db, now - MODEL_CONTEXT, now)
            ]
            self.models = await asyncio.to_thread(Models.fit, week) if week else None
            self.models_at = now
        return self.models


# ------------------------------------------------------------------ review


def flag_view(doc: Document) -> Document:
    """A flag as reviewers see it (no attempt or resident id)."""
    reasons = sorted(
        (
            {
                "code": code,
                "label": REASON_LABELS.get(code, code),
                "strength": reason["strength"],
                "evidence": reason["evidence"],
            }
            for code, reason in (doc.get("reasons") or {}).items()
        ),
        key=lambda r: -r["strength"],
    )
    return {
        "id": doc["_id"],
        "quiz_id": doc.get("quiz_id"),
        "township_code": doc.get("township_code"),
        "channel": doc.get("channel"),
        "submitted_at": _iso(doc.get("submitted_at")),
        "week": doc.get("week"),
        "reasons": reasons,
        "score": doc.get("score", 0.0),
        "strong": bool(doc.get("strong")),
        "status": doc.get("status", "open"),
        "decisions": [{**d, "at": _iso(d.get("at"))} for d in doc.get("decisions") or ()],
    }


def _iso(moment: Any) -> str | None:
    if not isinstance(moment, datetime):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


async def list_flags(
    db: AsyncDatabase,
    *,
    period: str | None,
    township: str | None,
    status: str | None,
    strong: bool | None,
    skip: int,
    limit: int,
) -> tuple[list[Document], int]:
    docs, total = await storage.list_flags(
        db,
        period=period,
        township=township,
        status=status,
        strong=strong,
        skip=skip,
        limit=limit,
    )
    return [flag_view(d) for d in docs], total


async def decide(
    db: AsyncDatabase, flag_id: str, *, decision: str, reason: str, actor: str
) -> Document:
    """Exclude the flagged assessment from the figures or keep it in; a later decision
    replaces an earlier one (every decision stays in the flag's history)."""
    status = "excluded" if decision == "exclude" else "kept"
    entry = {
        "decision": decision,
        "status": status,
        "reason": reason,
        "by": actor,
        "at": datetime.now(UTC),
    }
    doc = await storage.decide(db, flag_id, entry)
    if doc is None:
        raise FlagNotFound()
    # Shielded: a decision recorded on the flag is carried to the attempt and the cells even
    # if the request is cut off (the nightly repair_decisions covers a crash).
    await asyncio.shield(_apply_decision(db, doc, excluded=status == "excluded"))
    return flag_view(doc)


async def _apply_decision(db: AsyncDatabase, flag: Document, *, excluded: bool) -> None:
    if flag.get("attempt_id"):
        await quiz_service.set_exclusion(
            db, flag["attempt_id"], excluded=excluded, seq=int(flag["decision_seq"])
        )
    await _bump(db, set(flag.get("counts_in") or ()))


async def flag(db: AsyncDatabase, flag_id: str) -> Document:
    doc = await storage.get_flag(db, flag_id)
    if doc is None:
        raise FlagNotFound()
    return flag_view(doc)


async def forget_resident(db: AsyncDatabase, user_id: str) -> None:
    await storage.forget_resident(db, user_id)


async def jumps(db: AsyncDatabase, *, township: str | None) -> list[Document]:
    docs = await storage.list_jumps(db, township=township)
    return [
        {**{k: v for k, v in d.items() if k != "_id"}, "found_at": _iso(d.get("found_at"))}
        for d in docs
    ]


# ------------------------------------------------------------------ what reports read


@dataclass(frozen=True)
class PeriodFlags:
    """A period's flags per township, and the open strong ones' assessments."""

    flagged: dict[str, int]  # township -> strong flags (open, excluded or kept)
    excluded: dict[str, int]
    to_look: dict[str, int]  # township -> flags below STRONG ("look")
    open_attempts: list[Document]  # the assessments behind open strong flags, as cells see them


async def period_flags(db: AsyncDatabase, period: str) -> PeriodFlags:
    flagged: dict[str, int] = {}
    excluded: dict[str, int] = {}
    to_look: dict[str, int] = {}
    open_ids = []
    for doc in await storage.flags_counting_in(db, period):
        township = str(doc.get("township_code") or "unknown")
        if not doc.get("strong"):
            to_look[township] = to_look.get(township, 0) + 1
            continue
        flagged[township] = flagged.get(township, 0) + 1
        if doc.get("status") == "excluded":
            excluded[township] = excluded.get(township, 0) + 1
        elif doc.get("status") == "open" and doc.get("attempt_id"):
            open_ids.append(doc["attempt_id"])
    attempts = await quiz_service.assessments_by_id(db, open_ids) if open_ids else []
    counted = [a for a in attempts if not a.get("excluded") and not a.get("cells_pending")]
    return PeriodFlags(flagged, excluded, to_look, counted)
