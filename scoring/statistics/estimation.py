"""Pure statistics for township literacy estimates: cell and census types, raking and
post-stratification, Wilson intervals with the Kish effective sample size, domain shares,
progress towards a target and small-cell suppression.

Partial pooling lives in `scoring.estimation_mrp` (multilevel regression and
post-stratification) and `scoring.estimation_fh` (Fay-Herriot area model).

Published estimator: MRP with a probit link (`fit_mrp` defaults). Figures from
`python -m scripts.simulation` (20 runs, seeds 1-20; opt-in bias by age and education; 200
townships with 8-600 respondents; published townships have at least 10 respondents), errors in
percentage points, township bias / MAE / worst run MAE / pooled 95% coverage:
    raw           25.00  25.04  26.26   6.4%     (county MAE 24.8, covered in 0 of 20 runs)
    raked          2.00   4.46   5.50  97.2%     (county-wide raking: MAE 0.5, 18 of 20)
    Fay-Herriot    0.52   2.73   3.22  66.7%     (county MAE 0.5, 17 of 20)
    MRP, logit     0.17   1.57   1.82  93.3%     (county MAE 0.3, 17 of 20)
    MRP, probit    0.11   1.55   1.82  95.3%     (county MAE 0.3, 19 of 20)
Small counties (`--small-counties`: 50 runs, 12 townships, 120 respondents in all), county
share bias / MAE / 95% coverage: raw 25.1 / 25.1 / 0%, county-wide raking 0.9 / 3.3 / 98%,
MRP probit 0.8 / 2.7 / 92% (6.8 / 6.9 / 84% before the structured priors and importance
resampling of `scoring.estimation_mrp`).
Why MRP: the smallest error, on average and in the worst run, and calibrated intervals. FH rests on
the raked shares, whose Kish variances overstate the sampling error of post-stratified shares
(standardised errors have variance 0.2-0.4), so the model variance is estimated too small and
its intervals are far too narrow; it is also pulled by the raking's collapsing bias in small
townships. Why probit: "literate" is a threshold on a latent score, so composition and township
effects add on the probit scale; with the logit link the township effect, learnt mostly from
young and educated respondents, transfers too weakly to low-share cells (low-share townships
are overestimated by about 1 point and covered 87% of the time, against 94% with probit).
MRP draws also carry straight into the county share and the target probability.

All shares cover residents aged 18-69 (the national survey's population); ages 0-17 and 70+
are reported separately by the caller and never enter these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

AGE_BANDS = ("18-29", "30-39", "40-49", "50-59", "60-69")
GENDERS = ("male", "female")
EDUCATIONS = ("primary_or_less", "junior", "senior", "college_plus")
GROUPS = ("farmer", "worker", "elderly", "youth", "official", "other")
MIN_PUBLISHED = 10
LEVEL = 0.95
# Smallest sample count a post-stratum must hold before it stands on its own; below it the
# stratum is merged with its nearest neighbour. 1 keeps the most detail; the Kish size pays for
# the uneven weights, and the simulation found 2 or 3 no better (more collapsing bias).
MIN_CELL = 1


@dataclass(frozen=True)
class Cells:
    """Aggregated assessment results: one row per township × age × gender × education × group."""

    township: IntArray
    age: IntArray
    gender: IntArray
    education: IntArray
    group: IntArray
    n: IntArray
    literate: IntArray

    def __post_init__(self) -> None:
        """Coerce every column to int64 and check lengths and ranges."""
        for name in ("township", "age", "gender", "education", "group", "n", "literate"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        sizes = {len(self.township), len(self.age), len(self.gender), len(self.education)}
        if len(sizes | {len(self.group), len(self.n), len(self.literate)}) != 1:
            raise ValueError("cell columns differ in length")
        _check_range(self.age, len(AGE_BANDS), "age")
        _check_range(self.gender, len(GENDERS), "gender")
        _check_range(self.education, len(EDUCATIONS), "education")
        _check_range(self.group, len(GROUPS), "group")
        if np.any(self.n < 0) or np.any(self.literate < 0) or np.any(self.literate > self.n):
            raise ValueError("need 0 <= literate <= n in every cell")

    def __len__(self) -> int:
        """Number of cell rows."""
        return len(self.n)

    def select(self, mask: BoolArray) -> Cells:
        """The rows where mask is true."""
        return Cells(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class Estimates:
    """Point estimates and interval bounds for a set of units (townships or domains)."""

    estimate: FloatArray
    lower: FloatArray
    upper: FloatArray


@dataclass(frozen=True)
class DomainShares(Estimates):
    """Weighted literate shares of domains with respondent counts and Kish sizes."""

    n: IntArray
    n_eff: FloatArray


@dataclass(frozen=True)
class Raking:
    """Raking weights per cell row (population per respondent) and raked township shares."""

    weights: FloatArray
    township: DomainShares
    scheme: IntArray  # per township: index into the scheme list (0 = post-strata); -1 empty


@dataclass(frozen=True)
class TargetProgress:
    """A share against its target: gap = target − estimate; probability the truth reached it."""

    estimate: float
    gap: float
    probability_reached: float


@dataclass(frozen=True)
class Suppression:
    """Which breakdown rows, and whether the total, must be withheld."""

    rows: BoolArray
    total: bool


def _check_range(values: IntArray, size: int, name: str) -> None:
    """Raise when an index column leaves 0..size-1."""
    if values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{name} index outside 0..{size - 1}")


def check_census(census: Any, townships: int | None = None) -> FloatArray:
    """The census as a float array T×5×2(×4), validated."""
    array = np.asarray(census, dtype=np.float64)
    if array.ndim not in (3, 4) or array.shape[1:3] != (len(AGE_BANDS), len(GENDERS)):
        raise ValueError("census must be T×5×2 or T×5×2×4")
    if array.ndim == 4 and array.shape[3] != len(EDUCATIONS):
        raise ValueError("census education axis must have 4 levels")
    if np.any(array < 0) or not np.all(np.isfinite(array)):
        raise ValueError("census counts must be finite and non-negative")
    if townships is not None and array.shape[0] < townships:
        raise ValueError("cells name a township the census lacks")
    return array


def cell_index(cells: Cells, with_education: bool) -> IntArray:
    """Flat census-cell index (age, gender[, education]) of every row."""
    index = cells.age * len(GENDERS) + cells.gender
    return index * len(EDUCATIONS) + cells.education if with_education else index


def sample_counts(cells: Cells, census: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Respondents and literate respondents per census cell, shaped like the census."""
    with_education = census.ndim == 4
    size = int(np.prod(census.shape[1:]))
    flat = cells.township * size + cell_index(cells, with_education)
    length = census.shape[0] * size
    n = np.bincount(flat, weights=cells.n, minlength=length)
    literate = np.bincount(flat, weights=cells.literate, minlength=length)
    return _floats(n).reshape(census.shape), _floats(literate).reshape(census.shape)


def _floats(values: Any) -> FloatArray:
    """A float64 array (bincount with weights is float, whatever the stubs say)."""
    return np.asarray(values, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Wilson intervals with the Kish effective sample size
# ---------------------------------------------------------------------------------------------


def wilson_interval(share: Any, n_eff: Any, level: float = LEVEL) -> Estimates:
    """Wilson score interval for a share observed on an effective sample of n_eff."""
    p = np.asarray(share, dtype=np.float64)
    n = np.asarray(n_eff, dtype=np.float64)
    z = float(stats.norm.ppf(0.5 + level / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    empty = ~(n > 0)
    # Rounding must not push a bound past the share itself (at 0 and 1 they coincide).
    lower = np.where(empty, 0.0, np.clip(np.minimum(centre - half, p), 0.0, 1.0))
    upper = np.where(empty, 1.0, np.clip(np.maximum(centre + half, p), 0.0, 1.0))
    return Estimates(np.where(empty, np.nan, p), lower, upper)


def kish_n_eff(weights: Any, n: Any) -> float:
    """Kish effective sample size (Σ n w)² / Σ n w² of rows holding n respondents of weight w."""
    w = np.asarray(weights, dtype=np.float64)
    counts = np.asarray(n, dtype=np.float64)
    square = float(np.sum(counts * w * w))
    return float(np.sum(counts * w)) ** 2 / square if square > 0 else 0.0


def domain_shares(
    cells: Cells, weights: FloatArray, domain: Any, domains: int, level: float = LEVEL
) -> DomainShares:
    """Weighted literate share of each domain label 0..domains-1 with Wilson-Kish intervals."""
    label = np.asarray(domain, dtype=np.int64)
    keep = label >= 0
    label, w = label[keep], weights[keep]
    n, literate = cells.n[keep].astype(np.float64), cells.literate[keep].astype(np.float64)
    total = np.bincount(label, weights=n * w, minlength=domains)
    square = np.bincount(label, weights=n * w * w, minlength=domains)
    hits = np.bincount(label, weights=literate * w, minlength=domains)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, hits / total, np.nan)
        n_eff = np.where(square > 0, total * total / square, 0.0)
    interval = wilson_interval(share, n_eff, level)
    respondents = np.bincount(label, weights=n, minlength=domains).astype(np.int64)
    return DomainShares(interval.estimate, interval.lower, interval.upper, respondents, n_eff)


def domain_share(
    cells: Cells, weights: FloatArray, mask: Any = None, level: float = LEVEL
) -> DomainShares:
    """Weighted share of one domain (rows where mask is true; all rows when None)."""
    chosen = np.ones(len(cells), bool) if mask is None else np.asarray(mask, dtype=bool)
    return domain_shares(cells, weights, np.where(chosen, 0, -1), 1, level)


def summarise_draws(draws: Any, level: float = LEVEL) -> Estimates:
    """Posterior mean and equal-tailed quantile interval of draws along axis 0."""
    array = np.asarray(draws, dtype=np.float64)
    tail = (1 - level) / 2
    lower, upper = np.quantile(array, [tail, 1 - tail], axis=0)
    return Estimates(array.mean(axis=0), lower, upper)


# ---------------------------------------------------------------------------------------------
# Progress towards a target
# ---------------------------------------------------------------------------------------------


def target_from_draws(draws: Any, target: float) -> TargetProgress:
    """Gap to the target (posterior mean) and the share of draws at or above it."""
    array = np.asarray(draws, dtype=np.float64)
    estimate = float(array.mean())
    return TargetProgress(estimate, target - estimate, float(np.mean(array >= target)))


def target_from_share(share: float, n_eff: float, target: float) -> TargetProgress:
    """Gap and probability from a weighted share, with a Jeffreys Beta on n_eff respondents."""
    posterior = stats.beta(share * n_eff + 0.5, (1 - share) * n_eff + 0.5)
    return TargetProgress(share, target - share, float(posterior.sf(target)))


# ---------------------------------------------------------------------------------------------
# Suppression of small rows
# ---------------------------------------------------------------------------------------------


def suppress(respondents: Any, total_published: bool, minimum: int = MIN_PUBLISHED) -> Suppression:
    """Rows to withhold: primary (< minimum respondents) plus complementary suppression.

    With a published total, subtracting the published rows reveals the sum of the suppressed
    ones, so the suppressed rows holding respondents must be at least two and together hold at
    least `minimum`; the smallest published rows (first on ties) are added until they are.
    A total below `minimum` is itself withheld (that covers a breakdown of a single row).
    """
    n = np.asarray(respondents, dtype=np.int64)
    rows = n < minimum
    if total_published:
        while True:
            hidden = rows & (n > 0)
            if not hidden.any() or (hidden.sum() >= 2 and n[rows].sum() >= minimum):
                break
            candidates = np.flatnonzero(~rows & (n > 0))
            if candidates.size == 0:
                break
            rows[candidates[np.argmin(n[candidates])]] = True
    return Suppression(rows, bool(total_published and n.sum() < minimum))


# ---------------------------------------------------------------------------------------------
# Raking and post-stratification
# ---------------------------------------------------------------------------------------------

# A margin keeps some census axes (1 age, 2 gender, 3 education) and may merge neighbouring
# categories along one ordinal axis (a category with fewer than `min_cell` respondents joins the
# nearest filled one; ties go to the younger or less educated side). Schemes are tried in order
# per township and the first whose margins all match is used:
#   0 full post-stratification on age×gender(×education), thin age bands merged within
#     gender(×education);
#   1 raking of the merged age×gender table and the merged education margin;
#   2 raking of one-way age, gender and education margins (gender replaced by the township
#     total when one gender has no respondents);
#   3 one-way age and education margins; 4 education only (it drives both opt-in and literacy);
#   last: the township total only.
# A scheme also fails for a township when raking does not converge: sampling zeros can make
# the margins incompatible (all primary-educated respondents in one age band, say).
Margin = tuple[tuple[int, ...], int | None]
TOTAL: tuple[Margin, ...] = (((), None),)
SCHEMES_EDUCATION: tuple[tuple[Margin, ...], ...] = (
    (((1, 2, 3), 1),),
    (((1, 2), 1), ((3,), 3)),
    (((1,), 1), ((2,), None), ((3,), 3)),
    (((1,), 1), ((3,), 3)),
    (((3,), 3),),
    TOTAL,
)
SCHEMES_NO_EDUCATION: tuple[tuple[Margin, ...], ...] = (
    (((1, 2), 1),),
    (((1,), 1), ((2,), None)),
    (((1,), 1),),
    TOTAL,
)
_WITH_TOTAL_FALLBACK = {SCHEMES_EDUCATION: 2, SCHEMES_NO_EDUCATION: 1}
_RAKE_TOLERANCE = 1e-9
_RAKE_ITERATIONS = 200


def _nearest_anchor(anchored: BoolArray) -> tuple[IntArray, BoolArray]:
    """Per slice (last axis), the nearest anchored position of each position (ties: lower)."""
    size = anchored.shape[-1]
    positions = np.arange(size)
    distance = np.abs(positions[:, None] - positions[None, :]).astype(np.float64)
    cost = np.where(anchored[..., None, :], distance, np.inf)
    target = np.argmin(cost, axis=-1)
    found = np.asarray(anchored.any(axis=-1), dtype=bool)
    return np.asarray(np.where(found[..., None], target, positions), dtype=np.int64), found


def _margin_labels(
    n: FloatArray, pop: FloatArray, margin: Margin, min_cell: int
) -> tuple[IntArray, BoolArray]:
    """Global category label of every township×cell under a margin, and where it matches."""
    keep, collapse = margin
    drop = tuple(axis for axis in range(1, n.ndim) if axis not in keep)
    n_m, pop_m = n.sum(axis=drop), pop.sum(axis=drop)
    if collapse is None:
        local = np.broadcast_to(np.arange(int(np.prod(n_m.shape[1:]))), (len(n), n_m[0].size))
        local = local.reshape(n_m.shape)
        bad = (pop_m > 0) & (n_m < min_cell)
    else:
        local, bad = _collapsed_labels(n_m, pop_m, keep.index(collapse) + 1, min_cell)
    ok = ~bad.reshape(len(n), -1).any(axis=1)
    size = int(np.prod(n_m.shape[1:]))
    labels = local + size * np.arange(len(n)).reshape((-1,) + (1,) * (local.ndim - 1))
    return np.broadcast_to(np.expand_dims(labels, drop), n.shape).astype(np.int64), ok


def _collapsed_labels(
    n_m: FloatArray, pop_m: FloatArray, position: int, min_cell: int
) -> tuple[IntArray, BoolArray]:
    """Flat labels after merging thin categories along one axis; slices that cannot match."""
    anchored = np.moveaxis((n_m >= min_cell) & (pop_m > 0), position, -1)
    target, found = _nearest_anchor(anchored)
    lost = ~found & (np.moveaxis(pop_m, position, -1).sum(axis=-1) > 0)
    index: list[IntArray] = [np.asarray(axis, dtype=np.int64) for axis in np.indices(target.shape)]
    index[-1] = target
    index.insert(position, index.pop())
    moved = tuple(np.moveaxis(component, -1, position) for component in index[1:])
    return np.asarray(np.ravel_multi_index(moved, n_m.shape[1:]), dtype=np.int64), lost


def _ipf(n: FloatArray, pop: FloatArray, labels: list[IntArray]) -> tuple[FloatArray, BoolArray]:
    """Iterative proportional fitting of per-respondent weights; which townships converged."""
    weight = np.ones_like(n)
    flat = [label.ravel() for label in labels]
    size = max(int(label.max()) for label in flat) + 1
    targets = [_floats(np.bincount(label, weights=pop.ravel(), minlength=size)) for label in flat]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        weight = _ipf_loop(n, weight, flat, targets)
        error = np.zeros(n.shape)
        for label, target in zip(flat, targets, strict=True):
            total = np.bincount(label, weights=(n * weight).ravel(), minlength=size)
            gap = np.abs(total - target) / np.maximum(target, 1.0)
            error = np.maximum(error, gap[label].reshape(n.shape))
    # Incompatible margins make IPF oscillate or diverge; such townships count as not matched.
    converged = error.reshape(len(n), -1).max(axis=1) < 1e-6
    return np.where(np.isfinite(weight), weight, 0.0), converged


def _ipf_loop(
    n: FloatArray, weight: FloatArray, flat: list[IntArray], targets: list[FloatArray]
) -> FloatArray:
    """Scale weights to each margin in turn until no factor moves by more than the tolerance."""
    size = len(targets[0])
    for _ in range(_RAKE_ITERATIONS):
        worst = 0.0
        for label, target in zip(flat, targets, strict=True):
            total = np.bincount(label, weights=(n * weight).ravel(), minlength=size)
            factor = np.divide(target, total, out=np.ones_like(target), where=total > 0)
            weight = weight * factor[label].reshape(n.shape)
            moved = np.abs(factor[total > 0] - 1)
            # A diverging township must not stop the others: judge finite factors only.
            worst = max(worst, float(np.max(moved[np.isfinite(moved)], initial=0.0)))
        if worst < _RAKE_TOLERANCE:
            break
    return weight


def rake(cells: Cells, census: Any, min_cell: int = MIN_CELL, level: float = LEVEL) -> Raking:
    """Post-stratify, or failing that rake, each township's respondents to its census."""
    pop = check_census(census, int(cells.township.max(initial=-1)) + 1)
    n, _ = sample_counts(cells, pop)
    townships = len(pop)
    schemes = SCHEMES_EDUCATION if pop.ndim == 4 else SCHEMES_NO_EDUCATION
    weight = np.zeros_like(pop)
    scheme = np.full(townships, -1, dtype=np.int64)
    for index, margins in enumerate(schemes):
        last = index == len(schemes) - 1
        chosen = np.flatnonzero((scheme < 0) & (n.reshape(townships, -1).sum(axis=1) > 0))
        if chosen.size == 0:
            break
        matched = [_margin_labels(n[chosen], pop[chosen], m, min_cell) for m in margins]
        if index == _WITH_TOTAL_FALLBACK[schemes]:
            matched = [(_total_where_failed(label, ok), ok | True) for label, ok in matched]
        fits = np.all([ok for _, ok in matched], axis=0) | last
        if not fits.any():
            continue
        rows = chosen[fits]
        fitted, converged = _ipf(n[rows], pop[rows], [label[fits] for label, _ in matched])
        converged |= last
        weight[rows[converged]], scheme[rows[converged]] = fitted[converged], index
    row_weight = weight.reshape(townships, -1)[cells.township, cell_index(cells, pop.ndim == 4)]
    shares = domain_shares(cells, row_weight, cells.township, townships, level)
    return Raking(row_weight, shares, scheme)


def _total_where_failed(labels: IntArray, ok: BoolArray) -> IntArray:
    """Labels with every category of a failed township merged into one (its total)."""
    first = labels.reshape(len(labels), -1).min(axis=1)
    shape = (-1,) + (1,) * (labels.ndim - 1)
    return np.where(ok.reshape(shape), labels, first.reshape(shape))


def rake_county(
    cells: Cells, census: Any, min_cell: int = MIN_CELL, level: float = LEVEL
) -> Raking:
    """Rake the whole county sample to the county's census cells (one township of all)."""
    pop = check_census(census, int(cells.township.max(initial=-1)) + 1)
    pooled = Cells(
        np.zeros_like(cells.township),
        cells.age,
        cells.gender,
        cells.education,
        cells.group,
        cells.n,
        cells.literate,
    )
    return rake(pooled, pop.sum(axis=0, keepdims=True), min_cell, level)
