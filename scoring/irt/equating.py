"""IRT true-score equating to a fixed reference form.

Whatever form a resident answered, the reported total is the score they would be expected
to get on one fixed reference form, at their EAP θ:

    total(θ) = Σ_i weight_i · P_i(θ),   weight_i = dimension weight / items of that dimension,

so the reference form's maximum is 100 (40/20/20/20 over a 12/6/6/6 blueprint) and the
literate cut of 70 means the same θ on every form. theta_for_total inverts it (bisection;
total(θ) increases with θ because every slope is positive).

Reference form (documented choice): for each dimension, the items whose difficulties sit at
evenly spaced quantiles of that dimension's calibrated difficulties, the j-th of n chosen as
the unused item whose b is nearest the (j + 0.5)/n quantile (ties → the lower index). It
mirrors the spread of difficulty in the bank, as a typical blueprint form does, rather than
crowding the totals of everybody into the steep middle of a form of medium items, and it
depends only on the calibrated parameters: the same bank always gives the same form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.irt.model import (
    BLUEPRINT,
    DIMENSION_WEIGHTS,
    BoolArray,
    FloatArray,
    IntArray,
    ItemBank,
    as_floats,
    probability,
)
from scoring.irt.theta import eap_many

_THETA_RANGE = (-10.0, 10.0)


@dataclass(frozen=True)
class ReferenceForm:
    """The reference items' parameters and weights; `items` are bank indices (or -1)."""

    a: FloatArray
    b: FloatArray
    weight: FloatArray
    items: IntArray

    @property
    def maximum(self) -> float:
        return float(self.weight.sum())


def reference_from_items(items: list[tuple[float, float, float]]) -> ReferenceForm:
    """A reference form from (a, b, weight) triples."""
    a, b, weight = (as_floats(column) for column in zip(*items, strict=True))
    return ReferenceForm(a, b, weight, np.full(a.size, -1, dtype=np.int64))


def dimension_item_weights(
    dimensions: npt.ArrayLike, weights: dict[str, float] = DIMENSION_WEIGHTS
) -> FloatArray:
    """Each item's weight: its dimension's weight shared equally by that dimension's items."""
    labels = np.asarray(dimensions, dtype=np.str_)
    return as_floats([weights[d] / np.count_nonzero(labels == d) for d in labels])


def build_reference_form(
    bank: ItemBank,
    blueprint: dict[str, int] = BLUEPRINT,
    weights: dict[str, float] = DIMENSION_WEIGHTS,
    eligible: BoolArray | None = None,
) -> ReferenceForm:
    """The reference form of the module docstring, from the eligible (calibrated) items."""
    usable = np.ones(len(bank), dtype=bool) if eligible is None else eligible
    chosen: list[int] = []
    for dimension, count in blueprint.items():
        pool = np.flatnonzero(usable & (bank.dimension == dimension))
        if pool.size < count:
            raise ValueError(
                f"{dimension}: {pool.size} eligible items, the blueprint needs {count}"
            )
        chosen.extend(_quantile_items(pool, bank.b[pool], count))
    items = np.array(chosen, dtype=np.int64)
    return ReferenceForm(
        bank.a[items], bank.b[items], dimension_item_weights(bank.dimension[items], weights), items
    )


def _quantile_items(pool: IntArray, difficulty: FloatArray, count: int) -> list[int]:
    targets = np.quantile(difficulty, (np.arange(count) + 0.5) / count)
    free = np.ones(pool.size, dtype=bool)
    picked = []
    for target in targets:
        distance = np.where(free, np.abs(difficulty - target), np.inf)
        nearest = int(np.argmin(distance))  # argmin keeps the first (lowest index) of ties
        free[nearest] = False
        picked.append(int(pool[nearest]))
    return picked


def expected_totals(theta: npt.ArrayLike, reference: ReferenceForm) -> FloatArray:
    """total(θ) for an array of θ."""
    thetas = as_floats(theta)
    return as_floats(probability(thetas[..., None], reference.a, reference.b) @ reference.weight)


def expected_total(theta: float, reference: ReferenceForm) -> float:
    """Σ weight_i P_i(θ): the expected total on the reference form, 0..maximum."""
    return float(expected_totals(np.array([theta]), reference)[0])


def theta_for_total(total: float, reference: ReferenceForm, tolerance: float = 1e-9) -> float:
    """The θ whose expected total is `total` (e.g. the literate cut of 70), by bisection."""
    low, high = _THETA_RANGE
    if not expected_total(low, reference) < total < expected_total(high, reference):
        raise ValueError(f"total {total} is outside the reference form's reachable range")
    while high - low > tolerance:
        middle = 0.5 * (low + high)
        if expected_total(middle, reference) < total:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def equated_totals(
    person_index: npt.ArrayLike,
    item_index: npt.ArrayLike,
    correct: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    reference: ReferenceForm,
    n_persons: int | None = None,
) -> FloatArray:
    """Each person's reported total: the reference form's expected total at their EAP θ."""
    theta, _ = eap_many(person_index, item_index, correct, a, b, n_persons=n_persons)
    return expected_totals(theta, reference)
