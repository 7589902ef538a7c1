"""The literacy statistics on hand-made numbers: Wilson-Kish intervals, raking margins, MRP and
Fay-Herriot parameter recovery, target probabilities and small-cell suppression."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from scoring.statistics.estimation import (
    Cells,
    domain_share,
    domain_shares,
    kish_n_eff,
    rake,
    rake_county,
    sample_counts,
    summarise_draws,
    suppress,
    target_from_draws,
    target_from_share,
    wilson_interval,
)
from scoring.statistics.estimation_fh import fay_herriot
from scoring.statistics.estimation_mrp import Link, fit_mrp, fixed_effect_shares, make_design

Z = 1.959963984540054


def cells_from(rows: Sequence[tuple[int, ...]]) -> Cells:
    """Cells from (township, age, gender, education, group, n, literate) tuples."""
    return Cells(*np.array(rows, dtype=np.int64).reshape(-1, 7).T)


def full_cells(n: np.ndarray, literate: np.ndarray) -> Cells:
    """Cells (group 0) from dense T×5×2×4 arrays of respondents and literate respondents."""
    index = np.argwhere(n > 0)
    rows = [(*map(int, i), 0, int(n[tuple(i)]), int(literate[tuple(i)])) for i in index]
    return cells_from(rows)


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


def test_cells_reject_bad_rows() -> None:
    with pytest.raises(ValueError):
        cells_from([(0, 0, 0, 0, 0, 3, 4)])
    with pytest.raises(ValueError):
        cells_from([(0, 5, 0, 0, 0, 3, 1)])
    with pytest.raises(ValueError):
        Cells(*(np.array(column) for column in ([0], [0], [0], [0], [0], [1, 2], [0])))


# ---------------------------------------------------------------------------------------------
# Wilson with Kish
# ---------------------------------------------------------------------------------------------


def hand_wilson(p: float, n: float) -> tuple[float, float]:
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_matches_the_textbook_interval() -> None:
    interval = wilson_interval(0.2, 50)
    assert float(interval.lower) == pytest.approx(0.112437, abs=1e-6)
    assert float(interval.upper) == pytest.approx(0.330371, abs=1e-6)
    low, high = hand_wilson(0.0, 12)
    zero = wilson_interval(0.0, 12)
    assert float(zero.lower) == pytest.approx(low, abs=1e-12) == 0.0
    assert float(zero.upper) == pytest.approx(high)


def test_wilson_kish_equals_a_hand_computation() -> None:
    # Two cells of two respondents, weights 1 and 3; one literate respondent in the first.
    cells = cells_from([(0, 0, 0, 0, 0, 2, 1), (0, 1, 0, 0, 0, 2, 0)])
    weights = np.array([1.0, 3.0])
    share = domain_share(cells, weights)
    assert float(share.estimate[0]) == pytest.approx(1 / 8)
    assert float(share.n_eff[0]) == pytest.approx(64 / 20) == kish_n_eff(weights, cells.n)
    low, high = hand_wilson(1 / 8, 3.2)
    assert float(share.lower[0]) == pytest.approx(low)
    assert float(share.upper[0]) == pytest.approx(high)


@given(
    st.lists(st.tuples(st.integers(1, 40), st.floats(0, 1)), min_size=1, max_size=12),
    st.floats(0.1, 1000),
)
@settings(max_examples=60, deadline=None)
def test_wilson_kish_reduces_to_plain_wilson_with_equal_weights(
    rows: list[tuple[int, float]], weight: float
) -> None:
    n = np.array([r[0] for r in rows])
    literate = np.array([round(r[0] * r[1]) for r in rows])
    cells = cells_from([(0, 0, 0, 0, 0, int(a), int(b)) for a, b in zip(n, literate, strict=True)])
    weighted = domain_share(cells, np.full(len(n), weight))
    plain = wilson_interval(literate.sum() / n.sum(), n.sum())
    assert float(weighted.n_eff[0]) == pytest.approx(n.sum())
    assert float(weighted.lower[0]) == pytest.approx(float(plain.lower))
    assert float(weighted.upper[0]) == pytest.approx(float(plain.upper))
    assert weighted.lower[0] <= weighted.estimate[0] <= weighted.upper[0]


def test_domain_shares_use_the_weights_restricted_to_each_domain() -> None:
    cells = cells_from(
        [(0, 0, 0, 0, 0, 4, 2), (0, 0, 0, 0, 1, 2, 2), (1, 0, 0, 0, 0, 3, 0), (1, 0, 0, 0, 1, 1, 1)]
    )
    weights = np.array([1.0, 2.0, 5.0, 5.0])
    by_group = domain_shares(cells, weights, cells.group, 6)
    assert by_group.estimate[0] == pytest.approx((2 * 1 + 0) / (4 * 1 + 3 * 5))
    assert by_group.estimate[1] == pytest.approx((2 * 2 + 5) / (2 * 2 + 1 * 5))
    assert by_group.n[:2].tolist() == [7, 3]
    assert np.isnan(by_group.estimate[2]) and by_group.upper[2] == 1.0
    assert by_group.n_eff[0] == pytest.approx((4 + 15) ** 2 / (4 + 3 * 25))
    within = domain_shares(cells, weights, cells.township * 6 + cells.group, 12)
    assert within.estimate[6] == pytest.approx(0.0)


def test_summarise_draws_gives_mean_and_quantiles() -> None:
    draws = np.arange(1001, dtype=float)[:, None] / 1000
    summary = summarise_draws(draws)
    assert summary.estimate[0] == pytest.approx(0.5)
    assert summary.lower[0] == pytest.approx(0.025)
    assert summary.upper[0] == pytest.approx(0.975)


# ---------------------------------------------------------------------------------------------
# Raking
# ---------------------------------------------------------------------------------------------


def weighted_table(cells: Cells, weights: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    table = np.zeros(shape)
    np.add.at(table, (cells.township, cells.age, cells.gender, cells.education), weights * cells.n)
    return table


def test_full_post_stratification_reproduces_every_census_cell() -> None:
    rng = np.random.default_rng(3)
    census = rng.integers(100, 5000, (2, 5, 2, 4)).astype(float)
    n = rng.integers(1, 6, census.shape)
    literate = rng.binomial(n, 0.3)
    cells = full_cells(n, literate)
    raking = rake(cells, census)
    assert raking.scheme.tolist() == [0, 0]
    assert weighted_table(cells, raking.weights, census.shape) == pytest.approx(census)
    expected = (census * literate / n).sum(axis=(1, 2, 3)) / census.sum(axis=(1, 2, 3))
    assert raking.township.estimate == pytest.approx(expected)


def test_thin_age_bands_merge_with_the_nearest_band() -> None:
    census = np.full((1, 5, 2, 4), 100.0)
    n = np.ones((1, 5, 2, 4), dtype=np.int64)
    n[0, 4] = 0  # nobody aged 60-69: they join 50-59 of the same gender and education
    cells = full_cells(n, np.zeros_like(n))
    raking = rake(cells, census)
    table = weighted_table(cells, raking.weights, census.shape)
    assert raking.scheme[0] == 0
    assert table[0, 3] == pytest.approx(np.full((2, 4), 200.0))
    assert table[0, :3] == pytest.approx(census[0, :3])


def test_raking_matches_margins_when_post_strata_are_empty() -> None:
    rng = np.random.default_rng(5)
    census = rng.integers(200, 3000, (1, 5, 2, 4)).astype(float)
    n = rng.integers(1, 5, census.shape)
    n[0, :, 1, 0] = 0  # no primary-educated women: post-strata fail, margins still match
    cells = full_cells(n, rng.binomial(n, 0.4))
    raking = rake(cells, census)
    table = weighted_table(cells, raking.weights, census.shape)
    assert raking.scheme[0] == 1
    assert table.sum(axis=3) == pytest.approx(census.sum(axis=3))
    assert table.sum(axis=(1, 2)) == pytest.approx(census.sum(axis=(1, 2)))


def test_raking_without_education_in_the_census() -> None:
    census = np.array([[[300.0, 200.0], [100.0, 400.0], [50.0, 50.0], [80, 20], [10, 90]]])
    rows = [(0, a, g, 3, 0, 2, 1) for a in range(5) for g in range(2)]
    raking = rake(cells_from(rows), census)
    assert raking.scheme[0] == 0
    assert raking.weights.reshape(5, 2) == pytest.approx(census[0] / 2)
    assert raking.township.estimate[0] == pytest.approx(0.5)


@given(st.integers(0, 10_000), st.integers(1, 60))
@settings(max_examples=40, deadline=None)
def test_raking_always_matches_the_township_total(seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    census = rng.integers(0, 2000, (3, 5, 2, 4)).astype(float)
    census[:, 0, 0, 0] += 1  # every township has residents
    rows = [
        (t, *map(int, rng.integers((5, 2, 4))), int(rng.integers(6)), 1, int(rng.random() < 0.3))
        for t in range(3)
        for _ in range(int(rng.integers(1, size + 1)))
    ]
    cells = cells_from(rows)
    raking = rake(cells, census)
    table = weighted_table(cells, raking.weights, census.shape)
    assert np.all(np.isfinite(raking.weights)) and np.all(raking.weights >= 0)
    assert table.sum(axis=(1, 2, 3)) == pytest.approx(census.sum(axis=(1, 2, 3)))
    assert np.all(raking.scheme >= 0)
    share = raking.township
    assert np.all((share.lower <= share.estimate) & (share.estimate <= share.upper))


def test_county_raking_pools_townships() -> None:
    census = np.array([[[[100.0] * 4] * 2] * 5, [[[300.0] * 4] * 2] * 5])
    rows = [(t, 0, 0, e, 0, 1, int(e == 3)) for t in (0, 1) for e in range(4)]
    county = rake_county(cells_from(rows), census)
    assert county.weights.sum() == pytest.approx(census.sum())
    assert county.township.estimate[0] == pytest.approx(0.25)
    assert county.township.n[0] == 8


def test_township_without_respondents_gets_no_raked_share() -> None:
    census = np.full((2, 5, 2, 4), 10.0)
    raking = rake(cells_from([(0, 0, 0, 0, 0, 5, 1)]), census)
    assert raking.scheme[1] == -1 and raking.weights[0] == pytest.approx(400 / 5)
    assert np.isnan(raking.township.estimate[1]) and raking.township.n_eff[1] == 0


# ---------------------------------------------------------------------------------------------
# MRP
# ---------------------------------------------------------------------------------------------


def synthetic_cells(link: Link, seed: int) -> tuple[Cells, np.ndarray, np.ndarray, np.ndarray]:
    """Counts drawn from the model itself: 60 townships, 60 respondents per census cell."""
    rng = np.random.default_rng(seed)
    townships = 60
    census = rng.integers(500, 3000, (townships, 5, 2, 4)).astype(float)
    design = make_design(census, np.zeros((townships, 0)), interactions=False)
    beta = np.array([-1.0, -0.2, -0.5, -0.8, -1.2, -0.15, 0.6, 1.2, 2.0])
    sigma = 0.4
    u = rng.normal(0, sigma, townships)
    eta = (design.cell @ beta)[None, :] + u[:, None]
    chance = special.expit(eta) if link == "logit" else special.ndtr(eta)
    n = np.full(chance.shape, 60)
    n[0] = 0  # one township without respondents
    literate = rng.binomial(n, chance)
    cells = full_cells(n.reshape(census.shape), literate.reshape(census.shape))
    truth = (chance * census.reshape(townships, -1)).sum(axis=1) / census.sum(axis=(1, 2, 3))
    return cells, census, beta, truth


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_mrp_recovers_known_parameters(link: Link) -> None:
    cells, census, beta, truth = synthetic_cells(link, 11)
    fit = fit_mrp(cells, census, covariates=np.zeros((60, 0)), interactions=False, link=link)
    assert np.all(np.abs(fit.beta - beta) < 4 * fit.beta_sd + 0.02)
    assert fit.sigma == pytest.approx(0.4, abs=0.1)
    assert abs(fit.township.estimate - truth).mean() < 0.01
    inside = (fit.township.lower <= truth) & (truth <= fit.township.upper)
    assert inside.mean() >= 0.85
    # The township without respondents still has an estimate, with the widest interval.
    width = fit.township.upper - fit.township.lower
    assert np.isfinite(fit.township.estimate[0]) and width[0] == width.max()


def test_mrp_without_education_in_the_census() -> None:
    cells, census, _, truth = synthetic_cells("probit", 14)
    fit = fit_mrp(cells, census.sum(axis=3), draws=300)
    assert fit.names[-1] == "township covariate 0" and "junior" not in fit.names
    assert abs(fit.township.estimate - truth).mean() < 0.03
    with pytest.raises(ValueError):
        fit_mrp(cells, census, link="cloglog")  # type: ignore[arg-type]


def test_mrp_county_draws_are_population_weighted_township_draws() -> None:
    cells, census, _, _ = synthetic_cells("logit", 12)
    fit = fit_mrp(cells, census, draws=200, seed=4)
    population = census.sum(axis=(1, 2, 3))
    expected = fit.township_draws @ population / population.sum()
    assert fit.county_draws == pytest.approx(expected)
    assert fit.township_draws.shape == (200, 60)
    assert fit.county.lower[0] < fit.county.estimate[0] < fit.county.upper[0]


def test_fixed_effect_shares_ignore_township_effects() -> None:
    cells, census, _, _ = synthetic_cells("logit", 13)
    same = np.broadcast_to(census[:1], census.shape)
    synthetic = fixed_effect_shares(cells, same, np.zeros((60, 0)))
    assert synthetic == pytest.approx(np.full(60, synthetic[0]))


# ---------------------------------------------------------------------------------------------
# Fay-Herriot
# ---------------------------------------------------------------------------------------------


def fh_data(model_sd: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    townships = 300
    x = rng.normal(0, 1, townships)
    theta = 0.4 + 0.08 * x + rng.normal(0, model_sd, townships)
    truth = np.sin(theta) ** 2
    n = np.exp(rng.uniform(np.log(10), np.log(500), townships)).astype(int)
    direct = rng.binomial(n, truth) / n
    return direct, n.astype(float), x[:, None], truth


def test_fay_herriot_recovers_the_model_variance_and_beats_direct() -> None:
    direct, n, x, truth = fh_data(0.06, 21)
    fit = fay_herriot(direct, n, x, np.ones(len(n)))
    assert math.sqrt(fit.model_variance) == pytest.approx(0.06, abs=0.015)
    assert fit.beta == pytest.approx([0.4, 0.08], abs=0.02)
    assert abs(fit.township.estimate - truth).mean() < abs(direct - truth).mean()
    inside = (fit.township.lower <= truth) & (truth <= fit.township.upper)
    assert 0.9 <= inside.mean() <= 0.99


def test_fay_herriot_model_variance_never_collapses_and_covers_unsampled() -> None:
    direct, n, x, _ = fh_data(0.0, 22)
    direct[0], n[0] = np.nan, 0
    fit = fay_herriot(direct, n, x, np.ones(len(n)))
    assert fit.model_variance > 1e-5
    assert np.isfinite(fit.township.estimate[0])


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


def test_target_from_draws() -> None:
    draws = np.linspace(0.10, 0.14, 101)
    progress = target_from_draws(draws, 0.125)
    assert progress.estimate == pytest.approx(0.12)
    assert progress.gap == pytest.approx(0.005)
    assert progress.probability_reached == pytest.approx(38 / 101)  # 0.1252 … 0.14


@given(st.floats(0.01, 0.99), st.floats(1, 5000), st.floats(0, 1), st.floats(0, 1))
@settings(max_examples=100, deadline=None)
def test_target_probability_falls_as_the_target_rises(
    share: float, n_eff: float, first: float, second: float
) -> None:
    low, high = sorted((first, second))
    assert (
        target_from_share(share, n_eff, low).probability_reached
        >= target_from_share(share, n_eff, high).probability_reached
    )
    draws = np.random.default_rng(0).beta(share * 50 + 1, (1 - share) * 50 + 1, 500)
    assert (
        target_from_draws(draws, low).probability_reached
        >= target_from_draws(draws, high).probability_reached
    )


def test_target_from_share_is_near_half_at_the_estimate() -> None:
    progress = target_from_share(0.13, 4000, 0.125)
    assert progress.gap == pytest.approx(-0.005)
    assert 0.8 < progress.probability_reached < 0.9


# ---------------------------------------------------------------------------------------------
# Suppression
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "total", "rows", "total_hidden"),
    [
        ([3, 50, 60], True, [True, True, False], False),
        ([3, 50, 60], False, [True, False, False], False),
        ([3, 4, 50, 60], True, [True, True, True, False], False),
        ([6, 7, 50], True, [True, True, False], False),
        ([3, 4, 50], True, [True, True, True], False),
        ([5], True, [True], True),
        ([15], True, [False], False),
        ([0, 12, 40], True, [True, False, False], False),
        ([2, 0, 0], True, [True, True, True], True),
        ([], True, [], True),
    ],
)
def test_suppression_examples(
    counts: list[int], total: bool, rows: list[bool], total_hidden: bool
) -> None:
    result = suppress(counts, total)
    assert result.rows.tolist() == rows
    assert result.total is total_hidden


@given(st.lists(st.integers(0, 40), max_size=10), st.booleans())
@settings(max_examples=300, deadline=None)
def test_suppression_cannot_be_undone(counts: list[int], total: bool) -> None:
    n = np.array(counts, dtype=np.int64)
    result = suppress(n, total)
    assert np.all(n[~result.rows] >= 10), "a published row has fewer than 10 respondents"
    assert np.all(result.rows[n < 10])
    if total and not result.total:
        hidden = result.rows & (n > 0)
        # Subtracting published rows from the total reveals only the suppressed rows' sum.
        assert hidden.sum() != 1, "a single suppressed row stands alone"
        assert hidden.sum() == 0 or n[result.rows].sum() >= 10
    if total and n.sum() < 10:
        assert result.total


def test_sample_counts_sum_over_groups() -> None:
    cells = cells_from([(0, 1, 0, 2, 0, 3, 1), (0, 1, 0, 2, 4, 2, 2)])
    n, literate = sample_counts(cells, np.ones((1, 5, 2, 4)))
    assert n[0, 1, 0, 2] == 5 and literate[0, 1, 0, 2] == 3 and n.sum() == 5
