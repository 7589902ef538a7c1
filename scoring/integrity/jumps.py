"""Township-week jumps: participation and mean score far above the township's own history.

This flags a township-week, not attempts: a helper answering for a village, a campaign that
brings only the best residents, or an answer sheet in a group chat all lift a township's figures
for a week, whether or not each attempt can be told apart.

* Participation: the week's count against the mean count m of the township's previous weeks, as
  a Poisson upper tail when counts are Poisson. Counts of real weeks are overdispersed (market
  days, campaigns, the harvest), and a plain Poisson test would flag every busy week, so the
  tail is the negative binomial's with variance (m + φ m²)(1 + 1/h): φ is the county's
  overdispersion, pooled over townships by the method of moments (a township's own 8 weeks
  estimate a variance too poorly), and the factor 1 + 1/h adds the uncertainty of a mean of
  h weeks. With φ = 0 this is the Poisson test, widened only by the mean's uncertainty.
* Mean score: a one-sided z-test of the week's mean percent against the history's
  n-weighted mean, with SE² = σ²/n + τ² + σ²/N_history, where σ² is the pooled within-week
  variance of scores, n the week's attempts, and τ² the between-week variance of weekly means
  beyond sampling (DerSimonian & Laird's 1986 moment estimator, at least 0): a township whose
  weekly means wander is not flagged for wandering.

Both are one-sided (up): the concern is inflated figures. p-values are adjusted by Holm's
(1979) step-down over the township-weeks tested in one call, separately per measure, and jumps
with adjusted p ≤ alpha are returned. A township needs `MIN_HISTORY_WEEKS` weeks of history, and
a week `MIN_SCORED` attempts for its mean to be tested."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np
from scipy import stats

from scoring.integrity.records import AttemptRecord

ALPHA: Final = 0.05
MIN_HISTORY_WEEKS: Final = 3
MIN_SCORED: Final = 5
Measure = Literal["participation", "mean_score"]


@dataclass(frozen=True)
class WeekStats:
    township_code: str
    week: str  # ISO week in China time, "2026-W49"
    attempts: int
    mean_score: float  # percent, 0-100
    sd_score: float


@dataclass(frozen=True)
class TownshipJump:
    township_code: str
    week: str
    measure: Measure
    observed: float  # the week's count or mean percent
    expected: float  # from the township's history
    statistic: float  # z of the mean score; for participation the count's tail z (probit of 1 − p)
    p_value: float  # one-sided, unadjusted
    p_adjusted: float  # Holm
    test: str  # "poisson" | "negative_binomial" | "z"
    history_weeks: int
    detail: dict[str, object] = field(default_factory=dict)


def week_stats(
    attempts: Sequence[AttemptRecord], *, mode: str = "assessment"
) -> dict[tuple[str, str], WeekStats]:
    """The WeekStats of every township-week among the attempts of one mode."""
    scores: dict[tuple[str, str], list[float]] = {}
    for attempt in attempts:
        if attempt.mode == mode and attempt.township_code is not None and attempt.items:
            scores.setdefault((attempt.township_code, attempt.week), []).append(attempt.score)
    return {
        (township, week): WeekStats(
            township,
            week,
            len(values),
            float(np.mean(values)),
            float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        )
        for (township, week), values in scores.items()
    }


def overdispersion(history: Mapping[str, Sequence[WeekStats]]) -> float:
    """The county's pooled negative-binomial overdispersion φ (variance = m + φ m²), by the
    method of moments over every township with enough weeks; 0 when counts look Poisson."""
    terms = []
    for weeks in history.values():
        counts = np.array([w.attempts for w in weeks], dtype=np.float64)
        if counts.size >= MIN_HISTORY_WEEKS and counts.mean() > 0:
            terms.append((counts.var(ddof=1) - counts.mean()) / counts.mean() ** 2)
    return max(0.0, float(np.mean(terms))) if terms else 0.0


def _participation(
    week: WeekStats, past: Sequence[WeekStats], phi: float
) -> tuple[float, float, str, dict[str, object]]:
    counts = np.array([w.attempts for w in past], dtype=np.float64)
    mean = max(float(counts.mean()), 0.5)
    # Predictive variance: the week's own (negative binomial with the pooled φ) plus that of
    # the historical mean it is compared with.
    variance = (mean + phi * mean**2) * (1.0 + 1.0 / counts.size)
    if variance > mean:
        n = mean * mean / (variance - mean)
        p = float(stats.nbinom.sf(week.attempts - 1, n, mean / variance))
        test = "negative_binomial"
    else:
        p = float(stats.poisson.sf(week.attempts - 1, mean))
        test = "poisson"
    detail: dict[str, object] = {
        "predictive_sd": round(float(np.sqrt(variance)), 2),
        "overdispersion": round(phi, 4),
    }
    return mean, p, test, detail


def _mean_score(
    week: WeekStats, past: Sequence[WeekStats]
) -> tuple[float, float, float, dict[str, object]]:
    n = np.array([w.attempts for w in past], dtype=np.float64)
    means = np.array([w.mean_score for w in past])
    sds = np.array([w.sd_score for w in past])
    total = n.sum()
    centre = float((n * means).sum() / total)
    dof = np.maximum(n - 1, 0)
    within = float((dof * sds**2).sum() / dof.sum()) if dof.sum() > 0 else float(np.var(means))
    # DerSimonian-Laird: weekly means vary by σ²/n_w from sampling; anything beyond is τ².
    weights = n / within if within > 0 else np.ones_like(n)
    q = float((weights * (means - centre) ** 2).sum())
    c = float(weights.sum() - (weights**2).sum() / weights.sum())
    tau2 = max(0.0, (q - (len(past) - 1)) / c) if c > 0 else 0.0
    se = math.sqrt(within / week.attempts + tau2 + within / total)
    z = (week.mean_score - centre) / se if se > 0 else 0.0
    detail: dict[str, object] = {
        "within_sd": round(math.sqrt(within), 2),
        "between_week_sd": round(math.sqrt(tau2), 2),
        "se": round(se, 3),
        "n": week.attempts,
    }
    return centre, z, float(stats.norm.sf(z)), detail


def _holm(p_values: Sequence[float]) -> list[float]:
    order = np.argsort(p_values)
    m = len(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return [float(a) for a in adjusted]


def township_jumps(
    current: Mapping[tuple[str, str], WeekStats],
    history: Mapping[str, Sequence[WeekStats]],
    *,
    alpha: float = ALPHA,
    min_history_weeks: int = MIN_HISTORY_WEEKS,
) -> list[TownshipJump]:
    """The significant jumps (Holm-adjusted p ≤ alpha) of the current township-weeks against
    each township's history (its weeks before the current ones), most significant first."""
    tested: dict[Measure, list[TownshipJump]] = {"participation": [], "mean_score": []}
    phi = overdispersion(history)
    for (township, week_key), week in sorted(current.items()):
        past = [w for w in history.get(township, ()) if w.week < week_key]
        if len(past) < min_history_weeks:
            continue
        expected, p, test, detail = _participation(week, past, phi)
        z = float(stats.norm.isf(max(p, 1e-300)))
        tested["participation"].append(
            TownshipJump(
                township_code=township,
                week=week_key,
                measure="participation",
                observed=week.attempts,
                expected=round(expected, 2),
                statistic=round(z, 3),
                p_value=p,
                p_adjusted=p,
                test=test,
                history_weeks=len(past),
                detail=detail,
            )
        )
        if week.attempts >= MIN_SCORED and sum(w.attempts for w in past) > len(past):
            centre, z, p, detail = _mean_score(week, past)
            tested["mean_score"].append(
                TownshipJump(
                    township_code=township,
                    week=week_key,
                    measure="mean_score",
                    observed=round(week.mean_score, 2),
                    expected=round(centre, 2),
                    statistic=round(z, 3),
                    p_value=p,
                    p_adjusted=p,
                    test="z",
                    history_weeks=len(past),
                    detail=detail,
                )
            )
    jumps = []
    for found in tested.values():
        adjusted = _holm([j.p_value for j in found])
        for jump, p_adjusted in zip(found, adjusted, strict=True):
            if p_adjusted <= alpha:
                detail = {**jump.detail, "tested": len(found)}
                jumps.append(replace(jump, p_adjusted=p_adjusted, detail=detail))
    return sorted(jumps, key=lambda j: (j.p_adjusted, j.township_code, j.week, j.measure))
