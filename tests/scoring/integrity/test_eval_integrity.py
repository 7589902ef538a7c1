"""Smoke test of scripts.eval_integrity: the quick county meets every target the script prints
(precision ≥ 0.9 and recall ≥ 0.8 per detector, false flags ≤ 1 %, the 85 % rule worse, the
township estimates), and main's exit status and report say so; and the township estimates of
section 6 at the same size: the helper's proxy attempts lift his township's literate share by
more than 5 points, and excluding the strong flags brings every township back within 2 points of
its honest attempts' estimate."""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pytest

from scripts.eval_integrity import (
    BITES,
    QUICK,
    WITHIN,
    Screened,
    TownshipFigures,
    estimate_townships,
    main,
    run_screen,
    township_of,
)

SEED = 2026


def test_main_prints_the_table_and_meets_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--seed", str(SEED)]) == 0
    out = capsys.readouterr().out
    met = re.search(r"^all (\d+) targets met", out, re.MULTILINE)
    assert met is not None, out
    assert out.count("✓") == int(met.group(1)) >= 29
    assert "✗" not in out
    for code in ("speeding", "impossible_perfect", "copying", "shared_device", "straight_lining"):
        assert re.search(rf"✓ {code}: recall", out), code
    assert "85 % rule: false flags" in out
    assert "6. Township estimates" in out
    for target in (
        r"helper's township \d+: \|before − clean\|",
        r"helper's township \d+: \|after − clean\|",
        r"ring's township \d+: \|after − clean\|",
        r"every township \(6\): largest \|after − clean\|",
    ):
        assert re.search(rf"✓ {target}", out), target
    assert re.search(r"· campaign's township \d+ \(120 kept\): with the campaign", out)


@cache
def screened() -> Screened:
    return run_screen(QUICK, SEED)


@cache
def figures() -> dict[str, TownshipFigures]:
    return {f.code: f for f in estimate_townships(screened(), SEED)}


def scores(label: str) -> list[float]:
    county = screened().county
    return [
        100 * float(np.mean([item["mark"] for item in doc["items"]]))
        for doc in county.docs
        if county.labels[doc["_id"]] == label
        and doc["profile"]["township_code"] == township_of(county, "helper")
    ]


def test_the_helpers_residents_score_far_above_their_honest_neighbours() -> None:
    helper, honest = scores("helper"), scores("honest")
    assert len(helper) == QUICK.helper
    assert np.mean(helper) > np.mean(honest) + 10
    assert np.mean(np.array(helper) >= 70) > 0.8 > 0.6 > np.mean(np.array(honest) >= 70)


def test_excluding_the_strong_flags_restores_the_helpers_township() -> None:
    county = screened().county
    helper = figures()[township_of(county, "helper")]
    assert helper.before - helper.clean > BITES  # lifted, not just moved
    assert abs(helper.after - helper.clean) <= WITHIN
    assert helper.attempts - helper.honest >= QUICK.helper
    low, high = helper.after_interval
    assert low < helper.after < high


def test_every_township_is_within_two_points_after_and_no_estimate_moves_down_much() -> None:
    for f in figures().values():
        assert abs(f.after - f.clean) <= WITHIN, f
        assert f.before > f.clean - WITHIN, f  # speeders lower a share only a little
        assert 0 < f.truth < 100


def test_the_campaign_lifts_its_township_and_is_kept() -> None:
    county = screened().county
    campaign = figures()[township_of(county, "campaign")]
    assert campaign.after - campaign.without_campaign > 10
    assert abs(campaign.after - campaign.clean) <= WITHIN  # honest: not excluded
