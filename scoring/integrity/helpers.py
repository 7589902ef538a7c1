"""Checks of one helper's attempts taken together: a helper's sessions are assisted answering by
design (one tablet, many elderly residents), so `shared_device` leaves them alone, but a helper
who makes answers up instead of noting the residents' own shows it across his attempts even
where each attempt alone looks ordinary.

`helper_speed`: more of a helper's timed sessions faster than the honest norm than chance
allows. A session's time is the smaller of its own issue-to-submit seconds and the time since
the helper's previous submission from the same device: a helper reads one resident's form
aloud at a time, so the gap bounds the time the later form can have taken, even when he issued
every quiz in the morning and submitted them one after another at noon (each attempt's own
seconds then look long). Separate devices are separate lanes (a helper handing out two tablets
at a science day runs two sessions at once). A session is fast below the 5th percentile of the
self-answered norm of its mode and length (`FAST_QUANTILE`; below the 2 s-per-item floor where
no norm exists). Reading aloud is slower than reading, so an honest helper's sessions are fast
with probability at most 5 %; the count of fast sessions is tested as Binomial(n, 0.05),
significant when P(K ≥ k) ≤ `ALPHA` / (helpers tested) and k ≥ `MIN_FAST`. The fast sessions
of a significant helper in the batch are flagged.

`helper_copying`: the copying test (scoring.integrity.copying: identical wrong answers beyond
what the residents' abilities and the distractors' popularity give) run within each helper's
attempts of a mode, across townships and weeks, with popularity taken outside the helper's own
attempts. Answers noted honestly are the residents' own and independent; a helper filling in
forms (paper sheets included) repeats his own wrong answers in every village he visits, one or
two attempts per township-week, where the township-week test cannot see them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from scipy import stats

from scoring.integrity.copying import CopyingModel, copying, fit_copying_model
from scoring.integrity.items import helper_group_key
from scoring.integrity.records import AttemptRecord, Flag, Reason, make_flag, strength_from_p
from scoring.integrity.speed import MIN_SECONDS_PER_ITEM, FormKey, SpeedNorm, speed_norms

FAST_QUANTILE: Final = 0.05
ALPHA: Final = 0.01
MIN_FAST: Final = 3


def _session_seconds(sessions: Sequence[AttemptRecord]) -> dict[str, tuple[float, float | None]]:
    """Each timed session's effective seconds and the gap behind it (None for a lane's first),
    per device lane, in submission order."""
    lanes: dict[str | None, list[AttemptRecord]] = {}
    for attempt in sessions:
        lanes.setdefault(attempt.device_hash, []).append(attempt)
    effective: dict[str, tuple[float, float | None]] = {}
    for lane in lanes.values():
        lane.sort(key=lambda a: (a.submitted_at, a.attempt_id))
        previous: AttemptRecord | None = None
        for attempt in lane:
            gap: float | None = None
            if previous is not None:
                gap = (attempt.submitted_at - previous.submitted_at).total_seconds()
            seconds = attempt.elapsed if gap is None else min(attempt.elapsed, gap)
            effective[attempt.attempt_id] = (seconds, gap)
            previous = attempt
    return effective


def _fast_bound(attempt: AttemptRecord, norms: Mapping[FormKey, SpeedNorm]) -> float:
    norm = norms.get((attempt.mode, attempt.n_items, False))
    if norm is None:
        return MIN_SECONDS_PER_ITEM * attempt.n_items
    return max(norm.quantile(FAST_QUANTILE), MIN_SECONDS_PER_ITEM * attempt.n_items)


def helper_speed(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    norms: Mapping[FormKey, SpeedNorm] | None = None,
) -> list[Flag]:
    """`helper_speed` flags of the batch's helper sessions (module docstring); history adds the
    helper's earlier sessions to his count and to the gaps."""
    if not any(a.helper_id is not None for a in attempts):
        return []
    if norms is None:
        norms = speed_norms([*attempts, *history])
    targets = {a.attempt_id for a in attempts}
    by_helper: dict[str, list[AttemptRecord]] = {}
    for attempt in {a.attempt_id: a for a in (*history, *attempts)}.values():
        if attempt.helper_id is not None and attempt.timed and attempt.items:
            by_helper.setdefault(attempt.helper_id, []).append(attempt)
    tested = [h for h, s in by_helper.items() if any(a.attempt_id in targets for a in s)]
    flags = []
    for helper in tested:
        sessions = by_helper[helper]
        effective = _session_seconds(sessions)
        bounds = {a.attempt_id: _fast_bound(a, norms) for a in sessions}
        fast = [a for a in sessions if effective[a.attempt_id][0] < bounds[a.attempt_id]]
        n, k = len(sessions), len(fast)
        if k < MIN_FAST:
            continue
        p_value = float(stats.binom.sf(k - 1, n, FAST_QUANTILE))
        threshold = ALPHA / len(tested)
        if p_value > threshold:
            continue
        strength = strength_from_p(p_value * len(tested), ALPHA)
        for attempt in fast:
            if attempt.attempt_id not in targets:
                continue
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
