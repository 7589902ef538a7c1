"""Scoring of the literacy assessment (科学素质测评), as CAST scores its national survey.

Four dimensions weighted 40/20/20/20; each dimension's score is its weight times the share of
its items answered correctly, so every form sums to 100 whatever its item counts. Arithmetic
is exact (fractions): a tier cut-off is inclusive, and 21 of 30 equal items must be exactly
70, not 69.99999."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

DIMENSION_WEIGHTS = {"knowledge": 40, "method": 20, "spirit": 20, "application": 20}
DIMENSIONS = tuple(DIMENSION_WEIGHTS)
# Highest first; a total at or above the cut-off is in the tier (DOMAIN.md).
TIER_CUTOFFS = (("advanced", 85), ("literate", 70), ("basic", 55))
TIERS = ("advanced", "literate", "basic", "low")
LITERATE_CUTOFF = 70


@dataclass(frozen=True)
class AssessmentScore:
    dimension_scores: dict[str, Fraction]
    total: Fraction
    tier: str

    @property
    def literate(self) -> bool:
        return self.total >= LITERATE_CUTOFF

    def as_response(self) -> dict[str, object]:
        return {
            "dimension_scores": {d: display(s) for d, s in self.dimension_scores.items()},
            "total": display(self.total),
            "tier": self.tier,
        }


def tier_of(total: Fraction | float) -> str:
    return next((tier for tier, cutoff in TIER_CUTOFFS if total >= cutoff), "low")


def score(marks: Iterable[tuple[str, float]]) -> AssessmentScore:
    """Score (dimension, mark in [0, 1]) pairs; a dimension with no item scores nothing, which
    assembly prevents (every form carries every dimension)."""
    earned = {d: Fraction(0) for d in DIMENSIONS}
    counts = dict.fromkeys(DIMENSIONS, 0)
    for dimension, mark in marks:
        earned[dimension] += Fraction(mark).limit_denominator(100)
        counts[dimension] += 1
    scores = {
        d: Fraction(DIMENSION_WEIGHTS[d]) * earned[d] / counts[d] if counts[d] else Fraction(0)
        for d in DIMENSIONS
    }
    total = sum(scores.values(), Fraction(0))
    return AssessmentScore(scores, total, tier_of(total))


def display(value: Fraction) -> float:
    """Round down to 2 decimals, so a shown score never reaches a cut-off it missed."""
    return math.floor(value * 100) / 100


def hundredths(value: Fraction | float) -> int:
    return int(value * 100)  # floor, as displayed; exact integers keep cell sums exact
