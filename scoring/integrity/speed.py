"""Speeding and impossible perfection: answers given faster than reading allows.

Two rules, either of which flags `speeding`:

* Total time (server-measured `paradata.seconds`) far below the norm of attempts of the same
  mode and item count. The norm is robust, the median and MAD of log-seconds (log because
  response times are close to lognormal, van der Linden 2006), and "far below" is a modified
  z-score under -3.5, the outlier rule of Iglewicz & Hoaglin (1993): robust so that the night's
  speeders and proxy answerers do not drag the norm they are measured against. Under a
  lognormal an honest resident falls below it with probability 2.3e-4. A norm needs
  `MIN_NORM_ATTEMPTS` attempts of its form length; with fewer, only the floor applies.
* A fixed floor, `MIN_SECONDS_PER_ITEM` (2 s) per item, the quiz service's
  MIN_SECONDS_PER_QUESTION: no one reads a question and its options in less, whatever the
  norm of the night is (a batch of only speeders has a fast norm). Per item, where the client
  reports durations, the floor also catches a resident who rushed through part of a form and
  left the phone idle on one item (a normal total): `speeding` when at least half of the items,
  and at least `MIN_FAST_ITEMS`, took under the floor. Client durations are self-reported, so
  they never clear an attempt that the server's total flags.

`impossible_perfect`: every item right in less time than the 1st percentile of honest times
for that mode and length, taken from the robust lognormal fit (median + z₀.₀₁ × 1.4826 MAD of
log-seconds), not from the raw times, which the fast cheaters themselves would lower. The norm is
that of the able (`ABLE_SCORE` percent or more) where the form has `MIN_NORM_ATTEMPTS` of them:
able readers are faster (speed and ability correlate; van der Linden 2007), and a perfect score
is to be compared with those who could have earned it, not with everyone. An honest perfect score
is rare and an honest perfect score that fast rarer still (1 % of the former)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy import stats

from scoring.integrity.records import AttemptRecord, Flag, Reason, make_flag

MIN_SECONDS_PER_ITEM: Final = 2.0  # scoring.quizzes.service.MIN_SECONDS_PER_QUESTION
ROBUST_Z: Final = -3.5  # Iglewicz & Hoaglin's modified z-score bound
MIN_NORM_ATTEMPTS: Final = 30
MIN_LOG_SCALE: Final = 0.1  # a norm's SD of log-seconds is never taken as less than this
FAST_ITEM_SHARE: Final = 0.5
MIN_FAST_ITEMS: Final = 5
PERFECT_QUANTILE: Final = 0.01
MIN_PERFECT_ITEMS: Final = 5  # a perfect 3-item daily quiz is no feat
MAD_TO_SD: Final = 1.4826  # MAD of a normal distribution × this = its SD
ABLE_SCORE: Final = 90.0
FormKey = tuple[str, int, bool]  # mode, number of items, able residents only


@dataclass(frozen=True)
class SpeedNorm:
    """Robust lognormal norm of total seconds for one mode and item count."""

    mode: str
    n_items: int
    median_log: float
    scale_log: float  # 1.4826 × MAD of log-seconds (floored at MIN_LOG_SCALE)
    attempts: int

    def z(self, seconds: float) -> float:
        return (math.log(max(seconds, 0.1)) - self.median_log) / self.scale_log

    def quantile(self, q: float) -> float:
        return math.exp(self.median_log + float(stats.norm.ppf(q)) * self.scale_log)


def speed_norms(reference: Sequence[AttemptRecord]) -> dict[FormKey, SpeedNorm]:
    """The norms of every (mode, item count), of all attempts and of the able (score ≥
    ABLE_SCORE), where there are at least MIN_NORM_ATTEMPTS timed attempts."""
    logs: dict[FormKey, list[float]] = {}
    for attempt in reference:
        if attempt.items and attempt.timed and attempt.elapsed > 0:
            value = math.log(attempt.elapsed)
            logs.setdefault((attempt.mode, attempt.n_items, False), []).append(value)
            if attempt.score >= ABLE_SCORE:
                logs.setdefault((attempt.mode, attempt.n_items, True), []).append(value)
    norms = {}
    for key, values in logs.items():
        if len(values) < MIN_NORM_ATTEMPTS:
            continue
        x = np.asarray(values)
        median = float(np.median(x))
        scale = max(MAD_TO_SD * float(np.median(np.abs(x - median))), MIN_LOG_SCALE)
        norms[key] = SpeedNorm(key[0], key[1], median, scale, len(values))
    return norms


def _norms(
    attempts: Sequence[AttemptRecord],
    history: Sequence[AttemptRecord],
    norms: Mapping[FormKey, SpeedNorm] | None,
) -> Mapping[FormKey, SpeedNorm]:
    return norms if norms is not None else speed_norms([*attempts, *history])


def speeding(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    norms: Mapping[FormKey, SpeedNorm] | None = None,
) -> list[Flag]:
    """`speeding` flags of the attempts (history only widens the norms; pass `norms` from the
    night's run to screen one new attempt without recomputing them)."""
    table = _norms(attempts, history, norms)
    flags = []
    for attempt in attempts:
        if not attempt.items or not attempt.timed:
            continue
        n = attempt.n_items
        seconds = attempt.elapsed
        floor = MIN_SECONDS_PER_ITEM * n
        norm = table.get((attempt.mode, n, False))
        z = norm.z(seconds) if norm is not None else None
        fast_items = None
        if attempt.durations_ms is not None:
            fast_items = sum(d < 1000.0 * MIN_SECONDS_PER_ITEM for d in attempt.durations_ms)
        strengths = []
        if seconds < floor:
            strengths.append(0.8 + 0.15 * (1.0 - seconds / floor))
        if z is not None and z <= ROBUST_Z:
            strengths.append(0.6 + 0.1 * (ROBUST_Z - z))
        if fast_items is not None and fast_items >= max(MIN_FAST_ITEMS, FAST_ITEM_SHARE * n):
            strengths.append(0.6 + 0.3 * (fast_items / n - FAST_ITEM_SHARE) / FAST_ITEM_SHARE)
        if not strengths:
            continue
        detail: dict[str, object] = {
            "seconds": round(seconds, 1),
            "items": n,
            "seconds_per_item": round(seconds / n, 2),
            "floor_seconds": floor,
            "norm_median_seconds": None if norm is None else round(math.exp(norm.median_log), 1),
            "norm_scale_log": None if norm is None else round(norm.scale_log, 3),
            "norm_attempts": None if norm is None else norm.attempts,
            "robust_z": None if z is None else round(z, 2),
            "robust_z_bound": ROBUST_Z,
            "items_under_floor": fast_items,
        }
        reason = Reason("speeding", detail, min(0.95, max(strengths)))
        flags.append(make_flag(attempt.attempt_id, [reason]))
    return flags


def impossible_perfect(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    norms: Mapping[FormKey, SpeedNorm] | None = None,
) -> list[Flag]:
    """`impossible_perfect` flags: every item right, faster than the 1st percentile of honest
    able residents' times (of all residents' where too few are able; the floor of 2 s per item
    where the form has no norm)."""
    table = _norms(attempts, history, norms)
    flags = []
    for attempt in attempts:
        if not attempt.all_right or attempt.n_items < MIN_PERFECT_ITEMS or not attempt.timed:
            continue
        able = table.get((attempt.mode, attempt.n_items, True))
        norm = able or table.get((attempt.mode, attempt.n_items, False))
        bound = (
            norm.quantile(PERFECT_QUANTILE)
            if norm is not None
            else MIN_SECONDS_PER_ITEM * attempt.n_items
        )
        if attempt.elapsed >= bound:
            continue
        detail: dict[str, object] = {
            "seconds": round(attempt.elapsed, 1),
            "items": attempt.n_items,
            "honest_p01_seconds": round(bound, 1),
            "norm_median_seconds": None if norm is None else round(math.exp(norm.median_log), 1),
            "norm_attempts": None if norm is None else norm.attempts,
            "norm_of": None if norm is None else "able" if able is not None else "all",
            "percentile_of_norm": None
            if norm is None
            else round(100 * float(stats.norm.cdf(norm.z(attempt.elapsed))), 3),
        }
        strength = 0.7 + 0.25 * (1.0 - attempt.elapsed / bound)
        flags.append(
            make_flag(attempt.attempt_id, [Reason("impossible_perfect", detail, strength)])
        )
    return flags
