"""Differential item functioning by the Mantel-Haenszel procedure (Holland & Thayer, 1988).

Within each stratum k of the matching variable, A_k/B_k are the reference group's right and
wrong answers to the studied item, C_k/D_k the focal group's, and N_k all of them:

    α_MH = Σ A_k D_k / N_k  /  Σ B_k C_k / N_k,      Δ_MH = -2.35 ln α_MH,

so Δ_MH < 0 means the item is harder for the focal group than for reference-group members of
the same ability. Its SE is 2.35 times the Robins-Breslow-Greenland (1986) SE of ln α_MH; the
MH chi-square carries the 0.5 continuity correction.

ETS classification (Dorans & Holland, 1993; Zwick, 2012, ETS RR-12-08, with the interval test
of Paek & Holland, 2015):
  A: |Δ_MH| < 1, or Δ_MH not significantly different from 0 (MH χ² test, α = .05);
  C: |Δ_MH| ≥ 1.5 and |Δ_MH| significantly greater than 1 (H0: |Δ| ≤ 1 rejected at α = .05,
     p = Φ((-1 - |Δ|)/SE) + Φ((1 - |Δ|)/SE));
  B: otherwise.

Matching on incomplete designs (documented choice): residents answer different forms, so a
raw total does not mean the same ability on every form. dif_scan matches on the EAP θ from
all of the resident's answers, studied item included (the analogue of the standard total
score that includes the studied item, which keeps MH unbiased under the Rasch model), cut
into strata `width` logits wide, among the residents who answered the studied item. Thin
strata are pooled with their neighbours until each holds `min_per_group` members of each
group. mantel_haenszel itself takes any stratum labels, e.g. integer total scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from scoring.irt.model import BoolArray, FloatArray, IntArray, as_floats, responses
from scoring.irt.theta import eap_many

DELTA_SCALE = -2.35  # ETS delta metric: 4 (the delta scale's SD) / 1.7 (logit to probit)
ALPHA = 0.05


@dataclass(frozen=True)
class MantelHaenszel:
    alpha: float  # common odds ratio, reference : focal
    delta: float  # Δ_MH = -2.35 ln α_MH
    se_delta: float
    chi_square: float  # MH χ², continuity corrected, 1 df
    p_value: float
    category: str  # ETS "A" | "B" | "C"
    strata: int
    n_reference: int
    n_focal: int


def ets_category(delta: float, se_delta: float, p_value: float) -> str:
    """The ETS A/B/C rule of the module docstring."""
    size = abs(delta)
    if size < 1.0 or p_value >= ALPHA or not np.isfinite(size):
        return "A"
    above_one = stats.norm.cdf((-1.0 - size) / se_delta) + stats.norm.cdf((1.0 - size) / se_delta)
    return "C" if size >= 1.5 and above_one < ALPHA else "B"


def mantel_haenszel(
    correct: npt.ArrayLike, focal: npt.ArrayLike, stratum: npt.ArrayLike
) -> MantelHaenszel:
    """MH statistics of one item from its answers, group flags and stratum labels."""
    right = np.asarray(correct, dtype=bool)
    in_focal = np.asarray(focal, dtype=bool)
    _, labels = np.unique(np.asarray(stratum), return_inverse=True)
    table = _two_by_two(right, in_focal, labels.ravel())
    table = table[table.sum(axis=1) >= 2]  # a stratum of one answer carries no comparison
    ref_right, ref_wrong, foc_right, foc_wrong = table.T
    total = table.sum(axis=1)
    r = ref_right * foc_wrong / total
    s = ref_wrong * foc_right / total
    alpha = float(r.sum() / s.sum()) if s.sum() > 0 else np.inf
    log_alpha = np.log(alpha) if 0 < alpha < np.inf else np.nan
    se_delta = abs(DELTA_SCALE) * _rbg_se_log_alpha(table, r, s)
    chi_square = _mh_chi_square(table)
    p_value = float(stats.chi2.sf(chi_square, 1))
    delta = float(DELTA_SCALE * log_alpha)
    return MantelHaenszel(
        alpha=alpha,
        delta=delta,
        se_delta=se_delta,
        chi_square=chi_square,
        p_value=p_value,
        category=ets_category(delta, se_delta, p_value),
        strata=int(table.shape[0]),
        n_reference=int((ref_right + ref_wrong).sum()),
        n_focal=int((foc_right + foc_wrong).sum()),
    )


def _two_by_two(right: BoolArray, focal: BoolArray, labels: IntArray) -> FloatArray:
    """Strata × (ref right, ref wrong, focal right, focal wrong)."""
    cell = labels * 4 + np.where(focal, 2, 0) + np.where(right, 0, 1)
    return as_floats(np.bincount(cell, minlength=4 * (labels.max(initial=-1) + 1)).reshape(-1, 4))


def _rbg_se_log_alpha(table: FloatArray, r: FloatArray, s: FloatArray) -> float:
    """Robins, Breslow & Greenland (1986) SE of ln α_MH."""
    ref_right, _, _, foc_wrong = table.T
    total = table.sum(axis=1)
    p = (ref_right + foc_wrong) / total
    q = 1.0 - p
    sum_r, sum_s = r.sum(), s.sum()
    if sum_r <= 0 or sum_s <= 0:
        return float("inf")
    variance = (
        (p * r).sum() / (2 * sum_r**2)
        + (p * s + q * r).sum() / (2 * sum_r * sum_s)
        + (q * s).sum() / (2 * sum_s**2)
    )
    return float(np.sqrt(variance))


def _mh_chi_square(table: FloatArray) -> float:
    ref_right, ref_wrong, foc_right, foc_wrong = table.T
    total = table.sum(axis=1)
    n_ref, n_foc = ref_right + ref_wrong, foc_right + foc_wrong
    n_right, n_wrong = ref_right + foc_right, ref_wrong + foc_wrong
    expected = n_ref * n_right / total
    variance = n_ref * n_foc * n_right * n_wrong / (total**2 * (total - 1.0))
    if variance.sum() <= 0:
        return 0.0
    return float(max(abs(ref_right.sum() - expected.sum()) - 0.5, 0.0) ** 2 / variance.sum())


def pooled_strata(
    score: npt.ArrayLike, focal: npt.ArrayLike, width: float | None = None, min_per_group: int = 5
) -> IntArray:
    """Stratum labels: distinct scores (or bins `width` wide), adjacent ones pooled from the
    bottom up until each stratum has `min_per_group` members of both groups; a thin remainder
    at the top joins the stratum below it."""
    values = as_floats(score)
    in_focal = np.asarray(focal, dtype=bool)
    fine = np.floor(values / width) if width else values
    levels, labels = np.unique(fine, return_inverse=True)
    n_focal = np.bincount(labels, weights=in_focal, minlength=levels.size)
    n_reference = np.bincount(labels, weights=~in_focal, minlength=levels.size)
    pooled = np.empty(levels.size, dtype=np.int64)
    current, have_focal, have_reference = 0, 0.0, 0.0
    for level in range(levels.size):
        pooled[level] = current
        have_focal += n_focal[level]
        have_reference += n_reference[level]
        if have_focal >= min_per_group and have_reference >= min_per_group:
            current, have_focal, have_reference = current + 1, 0.0, 0.0
    if (have_focal or have_reference) and current > 0:
        pooled[pooled == current] = current - 1
    return pooled[labels.ravel()]


def dif_scan(
    person_index: npt.ArrayLike,
    item_index: npt.ArrayLike,
    correct: npt.ArrayLike,
    focal: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    width: float = 0.25,
    min_per_group: int = 5,
) -> list[MantelHaenszel | None]:
    """MH for every item of a calibrated bank (None for an item nobody answered); focal[p]
    flags person p's group. Matching: EAP θ bins among the item's respondents (module
    docstring)."""
    a_all = as_floats(a)
    in_focal = np.asarray(focal, dtype=bool)
    data = responses(person_index, item_index, correct, n_persons=in_focal.size, n_items=a_all.size)
    theta, _ = eap_many(data.person, data.item, data.correct, a_all, b, n_persons=in_focal.size)
    order = np.argsort(data.item, kind="stable")
    bounds = np.searchsorted(data.item[order], np.arange(a_all.size + 1))
    results: list[MantelHaenszel | None] = []
    for item in range(a_all.size):
        rows = order[bounds[item] : bounds[item + 1]]
        if rows.size == 0:
            results.append(None)
            continue
        person = data.person[rows]
        strata = pooled_strata(theta[person], in_focal[person], width, min_per_group)
        results.append(mantel_haenszel(data.correct[rows], in_focal[person], strata))
    return results
