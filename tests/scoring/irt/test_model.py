"""The 2PL's building blocks: the logistic metric, information, priors from ratings, and the
validation of sparse responses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.irt.model import difficulty_prior, information, probability, responses


def test_the_model_is_logistic_without_the_1_7_constant() -> None:
    assert probability(0.0, 1.3, 0.0) == pytest.approx(0.5)
    assert probability(1.0, 1.0, 0.0) == pytest.approx(1.0 / (1.0 + math.exp(-1.0)))
    assert probability(0.5, 2.0, -0.25) == pytest.approx(1.0 / (1.0 + math.exp(-1.5)))


def test_information_peaks_at_the_difficulty() -> None:
    grid = np.linspace(-4.0, 4.0, 801)
    for a, b in ((0.7, -1.2), (1.0, 0.0), (2.2, 1.5)):
        curve = information(grid, a, b)
        assert grid[np.argmax(curve)] == pytest.approx(b, abs=0.01)
        assert curve.max() == pytest.approx(a * a / 4.0, rel=1e-4)


def test_information_does_not_overflow_far_from_the_item() -> None:
    with np.errstate(all="raise"):
        values = information(np.array([-50.0, 50.0]), 3.0, 0.0)
    assert np.all(values >= 0.0)
    assert values.max() < 1e-30


def test_difficulty_prior_maps_the_editors_ratings() -> None:
    assert [difficulty_prior(r) for r in range(1, 6)] == [-1.5, -0.75, 0.0, 0.75, 1.5]
    for bad in (0, 6):
        with pytest.raises(ValueError):
            difficulty_prior(bad)


def test_responses_are_validated() -> None:
    ok = responses([0, 0, 1], [0, 1, 1], [1, 0, True])
    assert (ok.n_persons, ok.n_items, len(ok)) == (2, 2, 3)
    with pytest.raises(ValueError, match="equal lengths"):
        responses([0, 1], [0], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        responses([0], [0], [2])
    with pytest.raises(ValueError, match="more than once"):
        responses([0, 0], [3, 3], [1, 0])
    with pytest.raises(ValueError, match="non-negative"):
        responses([-1], [0], [1])
    with pytest.raises(ValueError, match="beyond"):
        responses([0], [5], [1], n_items=3)
