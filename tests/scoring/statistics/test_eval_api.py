"""Validation by simulation through the HTTP API, small: a 12-township synthetic county goes
through census upload, item import and publishing, sign-in, profiles, assessments and the
analysts' literacy statistics (`scripts.eval`, the full version is `make eval`).

The service's published figures must be what its own estimators give on the same answers
(here recomputed in process from the simulation's record of them), every API score must match
the simulation's scoring, and weighting must beat the raw share against the known truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from scoring.statistics import estimation as est
from scripts import eval as ev
from scripts import services as harness
from tests.conftest import make_settings

SEED = 3
TOWNSHIPS = 12
SCALE = 0.1  # about 160 respondents, 1-60 per township
CLOSE = 1e-6


@pytest.fixture
async def run(services: harness.Services, client_for: Callable[[Any], Any]) -> ev.Run:
    settings = make_settings(
        services, app_env="development", rate_limit_requests=10**9, login_rate_limit_requests=10**9
    )
    client = await client_for(settings)
    return await ev.simulate(client, SEED, TOWNSHIPS, SCALE, concurrency=2)


def published(run: ev.Run) -> list[tuple[int, dict[str, Any]]]:
    return [(t, row) for t, row in enumerate(run.rows) if not row["suppressed"]]


@pytest.mark.timeout(180)
async def test_simulated_county_through_the_api(run: ev.Run) -> None:
    respondents = len(run.outcomes)
    assert 100 <= respondents <= 300
    assert [o for o in run.outcomes if not o.agrees] == [], "API scores differ from simulation"
    assert all(o.on_strata for o in run.outcomes), "forms left the simulation's strata"
    assert sum(row["respondents"] for row in run.rows) == respondents
    assert run.county_row["respondents"] == respondents

    shown = published(run)
    assert 3 <= len(shown) < TOWNSHIPS
    assert all(row["respondents"] >= est.MIN_PUBLISHED for _, row in shown)
    for row in run.rows:
        if row["suppressed"]:
            assert row["weighted_share"] is None and row["raw_share"] is None

    _same_as_in_process(run)

    truth = run.county.true_county
    weighted, raw = run.county_row["weighted_share"], run.county_row["raw_share"]
    assert abs(weighted - truth) < abs(raw - truth)
    assert raw - truth > 0.08  # opt-in makes raw shares far too high
    # The service draws each form at random, so the answers (and the error) vary from run to
    # run; a fixed bound failed now and then (8.8 points once). Twice the published 95%
    # half-width is missed by chance about once in ten thousand runs.
    half_width = (run.county_row["ci_high"] - run.county_row["ci_low"]) / 2
    print(f"county: truth {truth:.3f}, published {weighted:.3f} ± {half_width:.3f}, raw {raw:.3f}")
    assert abs(weighted - truth) < 2 * half_width


def _same_as_in_process(run: ev.Run) -> None:
    """The API's figures are the service's estimators on the cells of the same answers."""
    fitted = ev.in_process(run.outcomes, run.county.census)
    for t, row in published(run):
        mrp = (fitted.township.estimate[t], fitted.township.lower[t], fitted.township.upper[t])
        assert np.allclose((row["weighted_share"], row["ci_low"], row["ci_high"]), mrp, atol=CLOSE)
        assert row["raked_share"] == pytest.approx(fitted.raked.estimate[t], abs=CLOSE)
        literate = sum(o.literate for o in run.outcomes if o.respondent.township == t)
        assert row["raw_share"] == pytest.approx(literate / row["respondents"])
    county = run.county_row
    mrp = (fitted.county.estimate[0], fitted.county.lower[0], fitted.county.upper[0])
    assert np.allclose(
        (county["weighted_share"], county["ci_low"], county["ci_high"]), mrp, atol=CLOSE
    )
    assert county["raked_share"] == pytest.approx(fitted.raked_county, abs=CLOSE)
    literate = sum(o.literate for o in run.outcomes)
    assert county["raw_share"] == pytest.approx(literate / len(run.outcomes))
