"""Person scoring by EAP: finite and ordered at the extremes, the batch version agrees with the
single one, and the estimates track the true abilities."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.irt.theta import eap, eap_many
from tests.scoring.irt.simulate import answer, blueprint_forms, true_bank


def test_all_right_scores_above_all_wrong_and_both_are_finite() -> None:
    a, b = np.full(30, 1.1), np.linspace(-2.0, 2.0, 30)
    high, high_sd = eap(a, b, np.ones(30))
    low, low_sd = eap(a, b, np.zeros(30))
    assert np.isfinite([high, low, high_sd, low_sd]).all()
    assert high > 2.0 and low < -2.0
    assert high == pytest.approx(-low)  # symmetric items, symmetric prior
    assert 0 < high_sd < 1 and 0 < low_sd < 1


def test_no_answers_give_the_prior_and_more_answers_narrow_the_posterior() -> None:
    assert eap([], [], []) == pytest.approx((0.0, 1.0), abs=1e-4)
    assert eap([], [], [], prior_mean=0.4, prior_sd=0.5) == pytest.approx((0.4, 0.5), abs=1e-4)
    pattern = np.array([1, 0] * 15)
    _, sd_10 = eap(np.ones(10), np.zeros(10), pattern[:10])
    _, sd_30 = eap(np.ones(30), np.zeros(30), pattern)
    assert sd_30 < sd_10 < 1.0


def test_batch_scoring_matches_single_scoring_and_tracks_the_truth() -> None:
    rng = np.random.default_rng(9)
    bank = true_bank(rng)
    theta = rng.normal(0.0, 1.0, 1000)
    sample = answer(theta, blueprint_forms(bank, 1000, rng), bank.a, bank.b, rng)
    estimates, sds = eap_many(sample.person, sample.item, sample.correct, bank.a, bank.b)
    for person in (0, 1, 500, 999):
        rows = sample.person == person
        single = eap(bank.a[sample.item[rows]], bank.b[sample.item[rows]], sample.correct[rows])
        assert (estimates[person], sds[person]) == pytest.approx(single)
    assert np.corrcoef(estimates, theta)[0, 1] > 0.9
    # The posterior SD is the error the estimates actually make.
    assert np.sqrt(np.mean((estimates - theta) ** 2)) == pytest.approx(
        np.sqrt(np.mean(sds**2)), rel=0.1
    )
    padded, padded_sds = eap_many(sample.person, sample.item, sample.correct, bank.a, bank.b, 1001)
    assert (padded[1000], padded_sds[1000]) == pytest.approx((0.0, 1.0), abs=1e-4)
