"""How far the published shares could move if the respondents are not a random draw within
their cells, and without the assessments flagged for review: pure functions, no I/O.

Outcome selection (a Rosenbaum-style bound). Within a census cell (township × age band ×
gender × education), suppose literate residents were up to Γ times as likely to take part as
the others: the odds of taking part of a literate resident are between 1/Γ and Γ times those
of an illiterate one. Then the odds of being literate among respondents are the population's
odds times that factor, so the population's odds lie within [odds / Γ, odds × Γ] of the
respondents'. The bounds are taken cell by cell on the model's cell shares (the MRP posterior
mean of each census cell) and weighted by the census, giving the range of the township or
county share when every cell is biased the most in one direction. Γ = 1 gives the published
point estimate back; the range does not include sampling error (the interval does)."""

from __future__ import annotations

import numpy as np

from scoring.statistics.estimation import FloatArray

GAMMAS = (1.25, 1.5, 2.0)
_EDGE = 1e-9


def shifted(share: FloatArray, gamma: float) -> tuple[FloatArray, FloatArray]:
    """The shares whose odds are 1/Γ and Γ times those of `share` (low, high)."""
    p = np.clip(np.asarray(share, dtype=np.float64), _EDGE, 1 - _EDGE)
    odds = p / (1 - p)
    low, high = odds / gamma, odds * gamma
    return low / (1 + low), high / (1 + high)


def selection_bounds(
    cell_share: FloatArray, population: FloatArray, gamma: float
) -> tuple[FloatArray, FloatArray, float, float]:
    """Township (rows) and county bounds for one Γ from cell shares and census counts, both
    townships × cells. Townships without population get NaN."""
    if gamma < 1:
        raise ValueError("gamma must be at least 1")
    pop = np.asarray(population, dtype=np.float64).reshape(len(population), -1)
    share = np.asarray(cell_share, dtype=np.float64).reshape(pop.shape)
    low, high = shifted(share, gamma)
    totals = pop.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        township_low = (low * pop).sum(axis=1) / totals
        township_high = (high * pop).sum(axis=1) / totals
    county = float(totals.sum())
    county_low = float((low * pop).sum() / county) if county else float("nan")
    county_high = float((high * pop).sum() / county) if county else float("nan")
    return township_low, township_high, county_low, county_high


def band(low: float, high: float) -> list[float] | None:
    """A published [low, high] pair (None when the share itself is not published)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return [round(float(low), 4), round(float(high), 4)]
