"""The simulated county's known truth: literate chances by θ, township shares, demographics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from scoring.statistics.estimation import AGE_BANDS, EDUCATIONS, GENDERS, GROUPS
from tests.scoring.integrity import simulate
from tests.scoring.integrity.simulate import (
    CountySpec,
    literate_chance,
    make_bank,
    simulate_county,
    true_share,
)

SPEC = CountySpec(townships=3, weeks=2, per_week=30.0, history_weeks=2)


def test_literate_chance_matches_simulated_forms() -> None:
    rng = np.random.default_rng(3)
    bank = make_bank(SPEC, rng)
    draws = 20_000
    for theta in (-1.0, 0.0, 0.5, 1.5):
        forms = bank.forms[rng.integers(0, bank.forms.shape[0], draws)]
        right = rng.random(forms.shape) < special.expit(bank.a[forms] * (theta - bank.b[forms]))
        share = float(np.mean(100 * right.sum(axis=1) >= 70 * forms.shape[1]))
        exact = float(literate_chance(bank, np.array([theta]))[0])
        assert abs(share - exact) < 4 * np.sqrt(exact * (1 - exact) / draws) + 1e-3, theta
    chances = literate_chance(bank, np.linspace(-3, 3, 13))
    assert np.all(np.diff(chances) > 0)


def test_true_share_is_the_townships_expected_share() -> None:
    county = simulate_county(SPEC, 11)
    rng = np.random.default_rng(4)
    truth = true_share(county)
    for t, mean in enumerate(county.ability):
        sampled = float(np.mean(literate_chance(county.bank, rng.normal(mean, 1.0, 8_000))))
        assert abs(sampled - truth[t]) < 0.015


def test_every_attempt_has_a_profile_and_honest_ones_an_ability() -> None:
    county = simulate_county(SPEC, 11)
    for doc in county.docs:
        profile = doc["profile"]
        assert profile["age_band"] in AGE_BANDS and profile["gender"] in GENDERS
        assert profile["education"] in EDUCATIONS and profile["group"] in GROUPS
    honest = county.ids("honest", "campaign", "assisted", "paper")
    assert set(county.abilities) == honest
    assert county.census.shape == (SPEC.townships, 5, 2, 4)


def test_demographics_leave_the_rest_of_the_county_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Profiles come from a generator of their own: without them every answer is the same."""
    drawn = simulate_county(SPEC, 11)
    fixed = dict(age_band="18-29", gender="male", education="junior", group="other")
    monkeypatch.setattr(simulate._Builder, "demographics", lambda self: fixed)
    plain = simulate_county(SPEC, 11)
    assert [d["items"] for d in drawn.docs] == [d["items"] for d in plain.docs]
    assert [d["paradata"] for d in drawn.docs] == [d["paradata"] for d in plain.docs]
    assert len({d["profile"]["age_band"] for d in drawn.docs}) == len(AGE_BANDS)
