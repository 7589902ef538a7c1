"""The outcome-selection bound: exact values, monotone in Γ, and the point estimate at Γ = 1."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.statistics.sensitivity import band, selection_bounds, shifted


def test_a_cell_share_moves_by_the_odds_ratio() -> None:
    low, high = shifted(np.array([0.5, 0.2]), 2.0)
    # odds 1 -> 1/2 and 2; odds 0.25 -> 0.125 and 0.5
    assert low == pytest.approx([1 / 3, 0.125 / 1.125])
    assert high == pytest.approx([2 / 3, 1 / 3])


def test_bounds_are_population_weighted_and_widen_with_gamma() -> None:
    share = np.array([[0.1, 0.4], [0.3, 0.3]])
    pop = np.array([[100.0, 300.0], [50.0, 0.0]])
    point = (share * pop).sum(axis=1) / pop.sum(axis=1)
    t_low1, t_high1, c_low1, c_high1 = selection_bounds(share, pop, 1.0)
    assert t_low1 == pytest.approx(point) and t_high1 == pytest.approx(point)
    assert c_low1 == pytest.approx((share * pop).sum() / pop.sum()) == c_high1
    widths = []
    for gamma in (1.25, 1.5, 2.0):
        t_low, t_high, c_low, c_high = selection_bounds(share, pop, gamma)
        assert np.all(t_low < point) and np.all(point < t_high)
        assert c_low < c_low1 < c_high
        widths.append(c_high - c_low)
        low_cells, high_cells = shifted(share, gamma)
        assert t_low[0] == pytest.approx((low_cells[0] * pop[0]).sum() / 400)
        assert t_high[1] == pytest.approx(high_cells[1, 0])
    assert widths == sorted(widths)


def test_an_empty_township_has_no_band() -> None:
    t_low, _, _, _ = selection_bounds(np.array([[0.2], [0.3]]), np.array([[10.0], [0.0]]), 1.5)
    assert np.isnan(t_low[1])
    assert band(float(t_low[1]), 0.4) is None
    assert band(0.123456, 0.5) == [0.1235, 0.5]
    with pytest.raises(ValueError):
        selection_bounds(np.array([[0.2]]), np.array([[1.0]]), 0.5)
