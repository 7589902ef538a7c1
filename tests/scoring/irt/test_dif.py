"""Mantel-Haenszel DIF: the statistics against hand computation and simulation, the ETS rules
at their boundaries, and a planted item found on the assessment's incomplete design."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from scoring.irt.calibration import calibrate
from scoring.irt.dif import dif_scan, ets_category, mantel_haenszel, pooled_strata
from tests.scoring.irt.simulate import blueprint_forms, true_bank


def test_statistics_match_a_hand_computation() -> None:
    # (ref right, ref wrong, focal right, focal wrong) in two strata
    tables = [(10, 10, 5, 15), (20, 5, 10, 10)]
    correct, focal, stratum = [], [], []
    for k, counts in enumerate(tables):
        for cell, n in enumerate(counts):
            correct += [cell in (0, 2)] * n
            focal += [cell >= 2] * n
            stratum += [k] * n
    result = mantel_haenszel(correct, focal, stratum)
    r = [a * d / (a + b + c + d) for a, b, c, d in tables]
    s = [b * c / (a + b + c + d) for a, b, c, d in tables]
    alpha = sum(r) / sum(s)
    assert result.alpha == pytest.approx(alpha)
    assert result.delta == pytest.approx(-2.35 * np.log(alpha))
    p = [(a + d) / (a + b + c + d) for a, b, c, d in tables]
    q = [1 - x for x in p]
    variance = (
        sum(pk * rk for pk, rk in zip(p, r, strict=True)) / (2 * sum(r) ** 2)
        + sum(pk * sk + qk * rk for pk, qk, rk, sk in zip(p, q, r, s, strict=True))
        / (2 * sum(r) * sum(s))
        + sum(qk * sk for qk, sk in zip(q, s, strict=True)) / (2 * sum(s) ** 2)
    )
    assert result.se_delta == pytest.approx(2.35 * np.sqrt(variance))
    expected = sum((a + b) * (a + c) / (a + b + c + d) for a, b, c, d in tables)
    var_a = sum(
        (a + b) * (c + d) * (a + c) * (b + d) / ((a + b + c + d) ** 2 * (a + b + c + d - 1))
        for a, b, c, d in tables
    )
    assert result.chi_square == pytest.approx((abs(30 - expected) - 0.5) ** 2 / var_a)
    assert (result.n_reference, result.n_focal, result.strata) == (45, 40, 2)
    assert result.delta < 0  # harder for the focal group


def test_the_standard_error_matches_the_spread_over_replications() -> None:
    rng = np.random.default_rng(12)
    deltas, ses, rejections = [], [], 0
    stratum = np.repeat(np.arange(4), 150)
    focal = rng.random(600) < 0.3
    p_right = np.array([0.3, 0.45, 0.6, 0.75])[stratum]
    for _ in range(400):
        result = mantel_haenszel(rng.random(600) < p_right, focal, stratum)
        deltas.append(result.delta)
        ses.append(result.se_delta)
        rejections += result.p_value < 0.05
    assert np.std(deltas) == pytest.approx(np.mean(ses), rel=0.12)
    assert abs(np.mean(deltas)) < 0.1
    assert 0.01 <= rejections / 400 <= 0.08  # the continuity correction is a little conservative


def test_no_dif_gives_a_delta_near_zero_in_a_big_sample() -> None:
    """Rasch items matched on the total score including the studied item: MH is unbiased even
    though the focal group is less able (Holland & Thayer, 1988)."""
    rng = np.random.default_rng(8)
    persons, items = 40_000, 20
    focal = rng.random(persons) < 0.3
    theta = rng.normal(0.0, 1.0, persons) - 0.6 * focal
    b = np.linspace(-1.5, 1.5, items)
    answers = rng.random((persons, items)) < special.expit(theta[:, None] - b[None, :])
    total = answers.sum(axis=1)
    results = [mantel_haenszel(answers[:, i], focal, total) for i in range(items)]
    deltas = np.array([r.delta for r in results])
    assert abs(deltas.mean()) < 0.05
    assert np.abs(deltas).max() < 0.25
    assert {r.category for r in results} == {"A"}
    # Matching on the score without the studied item is the textbook mistake: it biases Δ.
    rest = [mantel_haenszel(answers[:, i], focal, total - answers[:, i]) for i in range(items)]
    assert np.mean([r.delta for r in rest]) < -0.15


@pytest.mark.parametrize(
    ("delta", "se", "p_value", "category"),
    [
        (-0.95, 0.05, 1e-9, "A"),  # small
        (-1.40, 0.80, 0.08, "A"),  # not significantly different from 0
        (-1.30, 0.20, 1e-6, "B"),  # significant, below 1.5
        (-1.49, 0.01, 1e-9, "B"),
        (1.60, 0.50, 1e-3, "B"),  # ≥ 1.5 but not significantly above 1: (1.6 - 1)/0.5 < 1.645
        (-1.60, 0.30, 1e-6, "C"),  # (1.6 - 1)/0.3 = 2 > 1.645
        (2.50, 0.40, 1e-9, "C"),
    ],
)
def test_ets_rules(delta: float, se: float, p_value: float, category: str) -> None:
    assert ets_category(delta, se, p_value) == category


def test_thin_strata_are_pooled_with_their_neighbours() -> None:
    rng = np.random.default_rng(2)
    score = rng.normal(0.0, 1.0, 400)
    focal = rng.random(400) < 0.2
    strata = pooled_strata(score, focal, width=0.1, min_per_group=5)
    for label in np.unique(strata):
        members = strata == label
        assert focal[members].sum() >= 5 and (~focal[members]).sum() >= 5
    order = np.argsort(score)
    assert (np.diff(strata[order]) >= 0).all()  # pooling keeps strata contiguous in score
    assert np.unique(strata).size >= 8


def test_a_planted_item_is_flagged_c_on_the_incomplete_design() -> None:
    """3,000 residents on 30-item forms from an 80-item bank; the 25 % elderly are less able
    on average (-0.5) and one item is 0.8 logits harder for them than for others of the same
    ability."""
    rng = np.random.default_rng(31)
    bank = true_bank(rng)
    persons = 3000
    elderly = rng.random(persons) < 0.25
    theta = rng.normal(0.0, 1.0, persons) - 0.5 * elderly
    forms = blueprint_forms(bank, persons, rng)
    # A typical item: slope near 1.2, medium difficulty.
    medium = np.flatnonzero(np.abs(bank.b) < 0.7)
    planted = int(medium[np.argmin(np.abs(bank.a[medium] - 1.2))])
    person, item = np.repeat(np.arange(persons), 30), forms.ravel()
    harder = np.where((item == planted) & elderly[person], 0.8, 0.0)
    correct = rng.random(item.size) < special.expit(
        bank.a[item] * (theta[person] - bank.b[item] - harder)
    )
    calibration = calibrate(person, item, correct)
    results = dif_scan(person, item, correct, elderly, calibration.a, calibration.b)
    found = results[planted]
    assert found is not None and found.category == "C" and found.delta < -1.5
    clean = [r for i, r in enumerate(results) if i != planted]
    assert all(r is not None for r in clean)
    flagged = sum(r.category != "A" for r in clean if r is not None)
    assert flagged <= 0.05 * len(clean)
    assert abs(np.mean([r.delta for r in clean if r is not None])) < 0.15
