"""Calibration by EM on seeded simulations with known parameters: recovery on the assessment's
own design, honest standard errors, the Rasch-like and prior-only fallbacks, fixed items and
the item-fit statistic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from scoring.irt.calibration import Calibration, CalibrationOptions, calibrate
from scoring.irt.model import ItemBank, difficulty_prior
from tests.scoring.irt.simulate import Sample, answer, blueprint_forms, true_bank

RESIDENTS = 3000


def recovery_sample(seed: int) -> tuple[ItemBank, Sample]:
    """80 items (32/16/16/16), 3,000 residents θ ~ N(0, 1), each on a 12/6/6/6 blueprint form."""
    rng = np.random.default_rng(seed)
    bank = true_bank(rng)
    theta = rng.normal(0.0, 1.0, RESIDENTS)
    return bank, answer(theta, blueprint_forms(bank, RESIDENTS, rng), bank.a, bank.b, rng)


@pytest.fixture(scope="module")
def recovery() -> tuple[ItemBank, Calibration]:
    bank, sample = recovery_sample(seed=20260)
    return bank, calibrate(sample.person, sample.item, sample.correct)


def rmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((estimate - truth) ** 2)))


def test_parameters_are_recovered_on_the_blueprint_design(
    recovery: tuple[ItemBank, Calibration],
) -> None:
    bank, calibration = recovery
    assert calibration.converged and calibration.iterations < 200
    assert calibration.max_change <= 1e-4
    assert np.isfinite(calibration.log_likelihood) and calibration.log_likelihood < 0
    assert set(calibration.model) == {"2pl"}
    assert np.corrcoef(calibration.b, bank.b)[0, 1] >= 0.95
    assert np.corrcoef(calibration.a, bank.a)[0, 1] >= 0.85
    assert rmse(calibration.b, bank.b) <= 0.25


def test_standard_errors_match_the_actual_errors(recovery: tuple[ItemBank, Calibration]) -> None:
    """Across 80 items the errors divided by their SEs should scatter like N(0, 1)."""
    bank, calibration = recovery
    z_b = (calibration.b - bank.b) / calibration.se_b
    z_a = (calibration.a - bank.a) / calibration.se_a
    assert 0.75 <= z_b.std() <= 1.35
    assert 0.75 <= z_a.std() <= 1.35
    assert abs(z_b.mean()) < 0.35


def test_more_iterations_do_not_move_the_estimates(recovery: tuple[ItemBank, Calibration]) -> None:
    _, calibration = recovery
    _, sample = recovery_sample(seed=20260)
    tight = calibrate(
        sample.person, sample.item, sample.correct, options=CalibrationOptions(tolerance=1e-7)
    )
    assert tight.iterations > calibration.iterations
    assert np.abs(tight.b - calibration.b).max() < 0.01
    assert np.abs(tight.a - calibration.a).max() < 0.01
    assert tight.log_likelihood >= calibration.log_likelihood - 1e-6


def test_items_with_few_answers_fall_back_to_rasch_and_to_the_prior() -> None:
    rng = np.random.default_rng(7)
    n_items = 75  # 0..59 common (2PL), 60..69 answered ~100 times (Rasch), 70..74 ~10 times
    a = np.r_[np.clip(rng.lognormal(0.0, 0.3, 60), 0.5, 2.5), np.ones(15)]
    b = rng.normal(0.0, 1.0, n_items)
    ratings = rng.integers(1, 6, n_items)
    persons = 2000
    common = np.argsort(rng.random((persons, 60)), axis=1)[:, :25]
    rare = np.where(rng.random(persons) < 0.5, rng.integers(60, 70, persons), -1)
    rarest = np.where(rng.random(persons) < 0.025, rng.integers(70, 75, persons), -1)
    forms = np.hstack([common, rare[:, None], rarest[:, None]])
    sample = answer(rng.normal(0.0, 1.0, persons), forms, a, b, rng)
    answered = sample.item >= 0
    calibration = calibrate(
        sample.person[answered],
        sample.item[answered],
        sample.correct[answered],
        n_items=n_items,
        b_prior_mean=[difficulty_prior(int(r)) for r in ratings],
    )
    models = np.array(calibration.model)
    assert (models[:60] == "2pl").all() and (models[60:70] == "rasch").all()
    assert (models[70:] == "prior").all()
    assert (calibration.n[60:70] >= 30).all() and (calibration.n[70:] < 30).all()
    assert list(calibration.calibrated) == [True] * 70 + [False] * 5
    rasch = slice(60, 70)
    common_slope = np.exp(np.log(calibration.a[:60]).mean())
    assert calibration.a[rasch] == pytest.approx(np.full(10, common_slope))
    assert (calibration.se_a[rasch] == 0).all() and (calibration.se_b[rasch] < 0.35).all()
    assert np.corrcoef(calibration.b[rasch], b[rasch])[0, 1] >= 0.9
    assert calibration.a[70:] == pytest.approx(np.ones(5))
    assert calibration.b[70:] == pytest.approx([difficulty_prior(int(r)) for r in ratings[70:]])
    assert np.isnan(calibration.fit_p[70:]).all() and (calibration.fit_df[70:] == 0).all()


def test_a_tiny_sample_keeps_the_prior() -> None:
    rng = np.random.default_rng(3)
    person = np.repeat(np.arange(20), 10)
    item = np.tile(np.arange(10), 20)
    ratings = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    calibration = calibrate(
        person,
        item,
        rng.random(200) < 0.6,
        b_prior_mean=[difficulty_prior(r) for r in ratings],
    )
    assert calibration.model == ("prior",) * 10
    assert not calibration.calibrated.any()
    assert calibration.a == pytest.approx(np.ones(10))
    assert calibration.b == pytest.approx([difficulty_prior(r) for r in ratings])
    assert calibration.se_b == pytest.approx(np.ones(10))  # the prior's SD
    assert calibration.converged


def test_fixed_items_keep_their_parameters() -> None:
    bank, sample = recovery_sample(seed=11)
    fixed = {i: (float(bank.a[i]), float(bank.b[i])) for i in range(0, 80, 4)}
    calibration = calibrate(sample.person, sample.item, sample.correct, fixed=fixed)
    anchors = np.array(list(fixed))
    assert calibration.a[anchors] == pytest.approx(bank.a[anchors])
    assert calibration.b[anchors] == pytest.approx(bank.b[anchors])
    assert {calibration.model[i] for i in anchors} == {"fixed"}
    assert calibration.population_mean == pytest.approx(0.0, abs=0.1)
    assert calibration.population_sd == pytest.approx(1.0, abs=0.1)
    free = np.setdiff1d(np.arange(80), anchors)
    assert rmse(calibration.b[free], bank.b[free]) <= 0.2


def test_item_fit_flags_an_item_the_2pl_cannot_describe() -> None:
    """Item 0 is right most often in the middle of the ability range (a distractor that
    attracts the ablest residents); no 2PL curve can follow that."""
    rng = np.random.default_rng(5)
    bank = true_bank(rng)
    theta = rng.normal(0.0, 1.0, RESIDENTS)
    forms = blueprint_forms(bank, RESIDENTS, rng)
    person, item = np.repeat(np.arange(RESIDENTS), 30), forms.ravel()
    p = special.expit(bank.a[item] * (theta[person] - bank.b[item]))
    p = np.where(item == 0, 0.1 + 0.8 * np.exp(-(theta[person] ** 2)), p)
    calibration = calibrate(person, item, rng.random(item.size) < p)
    assert calibration.fit_p[0] < 1e-6
    clean = np.arange(1, 80)
    assert np.mean(calibration.fit_p[clean] < 0.01) <= 0.05
    # Under the model the statistic averages its degrees of freedom; a fit that reused the
    # studied answer would come out far smaller, one that ignored the posterior far larger.
    ratio = calibration.fit_statistic[clean].mean() / calibration.fit_df[clean].mean()
    assert 0.75 <= ratio <= 1.3
