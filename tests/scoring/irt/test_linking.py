"""Linking a second calibration, from an abler and more spread population N(0.5, 1.2), onto
the first one's scale through 20 common items: by Stocking-Lord, and by holding the anchors
fixed in the second calibration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from scoring.irt.calibration import Calibration, calibrate
from scoring.irt.linking import Linking, mean_sigma, stocking_lord
from tests.scoring.irt.simulate import Sample, answer

ANCHORS = np.arange(20)
FIRST_ONLY = np.arange(20, 60)
SECOND_ONLY = np.arange(60, 100)
RESIDENTS = 3000


@dataclass(frozen=True)
class TwoSamples:
    a: np.ndarray
    b: np.ndarray
    first: Calibration
    second: Sample


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x - y) ** 2)))


@pytest.fixture(scope="module")
def two_samples() -> TwoSamples:
    rng = np.random.default_rng(42)
    a = np.clip(rng.lognormal(0.0, 0.3, 100), 0.5, 2.5)
    b = rng.normal(0.0, 1.0, 100)

    def sample(items: np.ndarray, mean: float, sd: float) -> Sample:
        theta = rng.normal(mean, sd, RESIDENTS)
        forms = items[np.argsort(rng.random((RESIDENTS, items.size)), axis=1)[:, :30]]
        return answer(theta, forms, a, b, rng)

    first = sample(np.r_[ANCHORS, FIRST_ONLY], 0.0, 1.0)
    second = sample(np.r_[ANCHORS, SECOND_ONLY], 0.5, 1.2)
    return TwoSamples(a, b, calibrate(first.person, first.item, first.correct, n_items=100), second)


def test_stocking_lord_puts_the_new_calibration_on_the_old_scale(two_samples: TwoSamples) -> None:
    first, second = two_samples.first, two_samples.second
    new = calibrate(second.person, second.item, second.correct, n_items=100)
    # On its own the second calibration standardises the abler population: b is off by ~0.5.
    assert rmse(new.b[SECOND_ONLY], two_samples.b[SECOND_ONLY]) > 0.35
    linking = stocking_lord(new.a[ANCHORS], new.b[ANCHORS], first.a[ANCHORS], first.b[ANCHORS])
    assert linking.slope == pytest.approx(1.2, abs=0.1)
    assert linking.intercept == pytest.approx(0.5, abs=0.1)
    linked = linking.apply(new)
    assert rmse(linked.b[ANCHORS], first.b[ANCHORS]) <= 0.15
    assert rmse(linked.b[SECOND_ONLY], two_samples.b[SECOND_ONLY]) <= 0.2
    assert rmse(linked.a[SECOND_ONLY], two_samples.a[SECOND_ONLY]) <= 0.2
    moved = SECOND_ONLY
    assert linked.se_b[moved] == pytest.approx(new.se_b[moved] * linking.slope)
    assert linked.se_a[moved] == pytest.approx(new.se_a[moved] / linking.slope)
    # The first sample's own items were not answered here: they keep their prior.
    assert {linked.model[i] for i in FIRST_ONLY} == {"prior"}
    assert linked.b[FIRST_ONLY] == pytest.approx(new.b[FIRST_ONLY])
    assert linked.population_mean == pytest.approx(0.5, abs=0.1)
    assert linked.population_sd == pytest.approx(1.2, abs=0.1)


def test_fixed_anchor_calibration_lands_on_the_old_scale(two_samples: TwoSamples) -> None:
    first, second = two_samples.first, two_samples.second
    fixed = {int(i): (float(first.a[i]), float(first.b[i])) for i in ANCHORS}
    new = calibrate(second.person, second.item, second.correct, n_items=100, fixed=fixed)
    assert new.b[ANCHORS] == pytest.approx(first.b[ANCHORS])
    assert new.population_mean == pytest.approx(0.5, abs=0.1)
    assert new.population_sd == pytest.approx(1.2, abs=0.1)
    assert rmse(new.b[SECOND_ONLY], two_samples.b[SECOND_ONLY]) <= 0.2


def test_stocking_lord_recovers_an_exact_transformation() -> None:
    rng = np.random.default_rng(1)
    a_old, b_old = rng.lognormal(0.0, 0.3, 15), rng.normal(0.0, 1.0, 15)
    truth = Linking(0.8, -0.3)  # θ_old = 0.8 θ_new - 0.3
    a_new, b_new = a_old * truth.slope, (b_old - truth.intercept) / truth.slope
    found = stocking_lord(a_new, b_new, a_old, b_old)
    assert found.slope == pytest.approx(0.8, abs=1e-3)
    assert found.intercept == pytest.approx(-0.3, abs=1e-3)
    start = mean_sigma(b_new, b_old)
    assert start.slope == pytest.approx(0.8) and start.intercept == pytest.approx(-0.3)
    with pytest.raises(ValueError):
        stocking_lord(a_new[:1], b_new[:1], a_old[:1], b_old[:1])
