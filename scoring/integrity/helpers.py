"""Checks of one helper's attempts taken together: a helper's sessions are assisted answering by
design (one tablet, many elderly residents), so `shared_device` leaves them alone, but a helper
who makes answers up instead of noting the residents' own shows it across his attempts even
where each attempt alone looks ordinary. Both checks run in the nightly pass only (`screen`'s
`per_helper`): a minute pass would retest the same helper after every submission, and flags
are never withdrawn, so repeated chances would add up to false alarms.

`helper_speed`: most of a helper's timed sessions faster than nearly any honest resident. A
session's time is its own issue-to-submit seconds, or, when shorter, the time since the
helper's previous submission from the same device: a helper reads one resident's form aloud
at a time, so the gap bounds the time the later form can have taken, even when he issued
every quiz in the morning and submitted them one after another at noon (each attempt's own
seconds then look long). The gap is not used where it proves nothing: for sessions without a
device id (two tablets without the header would look like one), and where the client's own
per-question times add up to more than the bound (the sessions overlapped, or submissions held
up by the network arrived together). A session is fast below the 1st percentile
(`FAST_QUANTILE`) of the self-answered residents' norm of its mode and length (of all
attempts' where too few answered alone; the 2 s-per-item floor where there is no norm).

A helper is flagged when at least `MIN_FAST` sessions and at least `MIN_FAST_SHARE` of them are
fast, and the count is beyond chance: P(K ≥ k) ≤ `ALPHA` / (helpers tested) under
Binomial(n, 0.01). The share floor is what protects honest helpers: the binomial alone turns a
small deviation from the norm into a finding once n is large (residents a little quicker than
the county's median, or a norm fitted on slower residents), while a helper whose sessions are
mostly faster than 99 % of residents reading alone is not reading aloud. Every fast session of
a flagged helper is flagged, the earlier ones in the history too (they are the evidence, as a
phone's earlier residents are for shared_device).

`helper_copying`: the copying test (scoring.integrity.copying: identical wrong answers beyond
what the residents' abilities and the distractors' popularity give) run within each helper's
attempts of a mode, across townships and weeks, with popularity taken outside the helper's own
attempts. Answers noted honestly are the residents' own and independent; a helper filling in
forms (paper sheets included) repeats his own wrong answers in every village he visits, one or
two attempts per township-week, where the township-week test cannot see them. Where both tests
name an attempt, `screen` keeps the stronger reason only: they weigh much the same evidence."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from scipy import stats

from scoring.integrity.copying import CopyingModel, copying, fit_copying_model
from scoring.integrity.items import helper_group_key
from scoring.integrity.records import AttemptRecord, Flag, Reason, make_flag, strength_from_p
from scoring.integrity.speed import MIN_SECONDS_PER_ITEM, FormKey, SpeedNorm, speed_norms

FAST_QUANTILE: Final = 0.01
MIN_FAST: Final = 3
MIN_FAST_SHARE: Final = 0.5
ALPHA: Final = 0.01


def _session_seconds(
    sessions: Sequence[AttemptRecord], bounds: Mapping[str, float]
) -> dict[str, tuple[float, float | None]]:
    """Each timed session's effective seconds and the gap used for it (None when none is: a
    lane's first session, no device id, or client times showing the session took long)."""
    lanes: dict[str, list[AttemptRecord]] = {}
    effective: dict[str, tuple[float, float | None]] = {}
    for attempt in sessions:
        if attempt.device_hash is None:
            effective[attempt.attempt_id] = (attempt.elapsed, None)
        else:
            lanes.setdefault(attempt.device_hash, []).append(attempt)
    for lane in lanes.values():
        lane.sort(key=lambda a: (a.submitted_at, a.attempt_id))
        previous: AttemptRecord | None = None
        for attempt in lane:
            gap: float | None = None
            if previous is not None and not _client_saw_long(attempt, bounds[attempt.attempt_id]):
                gap = (attempt.submitted_at - previous.submitted_at).total_seconds()
            seconds = attempt.elapsed if gap is None else min(attempt.elapsed, gap)
            effective[attempt.attempt_id] = (seconds, gap)
            previous = attempt
    return effective


def _client_saw_long(attempt: AttemptRecord, bound: float) -> bool:
    if attempt.durations_ms is None:
        return False
    reported = sum(d for d in attempt.durations_ms if not math.isnan(d)) / 1000.0
    return reported >= bound


def _fast_bound(
    attempt: AttemptRecord,
    alone: Mapping[FormKey, SpeedNorm],
    everyone: Mapping[FormKey, SpeedNorm],
) -> float:
    key = (attempt.mode, attempt.n_items, False)
    floor = MIN_SECONDS_PER_ITEM * attempt.n_items
    norm = alone.get(key) or everyone.get(key)
    return floor if norm is None else max(norm.quantile(FAST_QUANTILE), floor)


def helper_speed(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    norms: Mapping[FormKey, SpeedNorm] | None = None,
) -> list[Flag]:
    """`helper_speed` flags of the fast sessions of helpers with a session in the batch (module
    docstring); history adds the helper's earlier sessions to his count and to the gaps, and
    both give the self-answered norm (`norms`, of everyone, where too few answered alone)."""
    if not any(a.helper_id is not None for a in attempts):
        return []
    pool = list({a.attempt_id: a for a in (*history, *attempts)}.values())
    alone = speed_norms([a for a in pool if a.helper_id is None])
    everyone = norms if norms is not None else speed_norms(pool)
    targets = {a.attempt_id for a in attempts}
    by_helper: dict[str, list[AttemptRecord]] = {}
    for attempt in pool:
        if attempt.helper_id is not None and attempt.timed and attempt.items:
            by_helper.setdefault(attempt.helper_id, []).append(attempt)
    tested = [h for h, s in by_helper.items() if any(a.attempt_id in targets for a in s)]
    flags = []
    for helper in tested:
        sessions = by_helper[helper]
        bounds = {a.attempt_id: _fast_bound(a, alone, everyone) for a in sessions}
        effective = _session_seconds(sessions, bounds)
        fast = [a for a in sessions if effective[a.attempt_id][0] < bounds[a.attempt_id]]
        n, k = len(sessions), len(fast)
        if k < MIN_FAST or k < MIN_FAST_SHARE * n:
            continue
        p_value = float(stats.binom.sf(k - 1, n, FAST_QUANTILE))
        threshold = ALPHA / len(tested)
        if p_value > threshold:
            continue
        strength = strength_from_p(p_value * len(tested), ALPHA)
        for attempt in fast:
            seconds, gap = effective[attempt.attempt_id]
            detail: dict[str, object] = {
                "helper_id": helper,
                "seconds": round(seconds, 1),
                "own_seconds": round(attempt.elapsed, 1),
                "seconds_since_previous": None if gap is None else round(gap, 1),
                "items": attempt.n_items,
                "fast_below_seconds": round(bounds[attempt.attempt_id], 1),
                "helper_sessions": n,
                "fast_sessions": k,
                "expected_fast": round(n * FAST_QUANTILE, 2),
                "p_value": p_value,
                "threshold": threshold,
                "helpers_tested": len(tested),
            }
            reason = Reason("helper_speed", detail, strength)
            flags.append(make_flag(attempt.attempt_id, [reason]))
    return flags


def helper_copying(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    model: CopyingModel | None = None,
    seed: int = 0,
) -> list[Flag]:
    """`helper_copying` flags: the batch's helper attempts (and their partners among the
    helper's earlier ones) in a significant pair or ring within one helper's attempts."""
    batch = [a for a in attempts if a.helper_id is not None]
    earlier = [a for a in history if a.helper_id is not None]
    helpers_in_batch = {a.helper_id for a in batch}
    if sum(a.helper_id in helpers_in_batch for a in (*batch, *earlier)) < 2:
        return []
    if model is None:  # fitted on everyone: abilities and popularity are the county's
        model = fit_copying_model([*attempts, *history], seed=seed)
    return copying(
        batch,
        history=earlier,
        model=model,
        seed=seed,
        grouping=helper_group_key,
        code="helper_copying",
    )
