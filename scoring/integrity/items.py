"""The item model behind the copying test: P(wrong | θ) from a 2PL and P(response | wrong) from
each wrong response's popularity.

The 2PL is fitted to the reference attempts by joint MAP estimation, Newton steps alternating
between persons and items with weak priors (θ ~ N(0, 1), b ~ N(0, 3²), ln a ~ N(0, 0.5²);
Mislevy 1986's Bayes modal estimation, without marginalising over θ): cheap, stable on sparse
designs, and slightly biased at 30 items per person, which the copying test's calibration on
pairs that cannot have copied absorbs. An item absent from the reference (a new question in
streaming use) is taken as a = 1, b = 0.

Popularity is the share of a wrong response (the exact set of keys chosen; an empty answer is a
response too) among the item's wrong answers outside the township-week and mode under test, with
0.5 pseudo-answers per response (Jeffreys): leaving the group out keeps a circulated answer
sheet from making its own wrong answers look popular."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from scoring.integrity.records import AttemptRecord, FloatArray, ItemKey, Response

SMOOTHING: Final = 0.5  # pseudo-answers per wrong response (Jeffreys)
THETA_SD: Final = 1.0
B_SD: Final = 3.0
LOG_A_SD: Final = 0.5
JML_ITERATIONS: Final = 40
THETA_ITERATIONS: Final = 25
GroupKey = tuple[str, str, str]  # township, week, mode
IntArray = npt.NDArray[np.int64]


def group_key(attempt: AttemptRecord) -> GroupKey:
    """The attempts that could have copied from each other: one township-week and mode."""
    return (attempt.township_code or "", attempt.week, attempt.mode)


@dataclass(frozen=True)
class ItemModel:
    index: Mapping[ItemKey, int]
    a: FloatArray
    b: FloatArray
    wrong: tuple[Mapping[Response, int], ...]  # per item: counts of each wrong response
    wrong_by_group: Mapping[GroupKey, Mapping[int, Mapping[Response, int]]]

    def popularity(self, item: int | None, response: Response, group: GroupKey) -> float:
        """Share of `response` among the item's wrong answers outside `group`, smoothed."""
        if item is None:
            return 1.0 / 3.0  # an unknown item: as if three equally likely distractors
        counts = self.wrong[item]
        own = self.wrong_by_group.get(group, {}).get(item, {})
        total = sum(counts.values()) - sum(own.values())
        hits = counts.get(response, 0) - own.get(response, 0)
        kinds = len(counts) + (response not in counts)
        return (hits + SMOOTHING) / (total + SMOOTHING * (kinds + 1))

    def thetas(self, attempts: Sequence[AttemptRecord]) -> FloatArray:
        """MAP abilities of the attempts given the items (unknown items are skipped)."""
        rows, cols, right = [], [], []
        for row, attempt in enumerate(attempts):
            for item in attempt.items:
                if (column := self.index.get(item.key)) is not None:
                    rows.append(row)
                    cols.append(column)
                    right.append(item.right)
        person = np.asarray(rows, dtype=np.int64)
        item_index = np.asarray(cols, dtype=np.int64)
        y = np.asarray(right, dtype=np.float64)
        theta = np.zeros(len(attempts))
        for _ in range(THETA_ITERATIONS):
            theta = _theta_step(theta, person, item_index, y, self.a, self.b)
        return theta


def _theta_step(
    theta: FloatArray,
    person: IntArray,
    item: IntArray,
    y: FloatArray,
    a: FloatArray,
    b: FloatArray,
) -> FloatArray:
    n = theta.size
    slope = a[item]
    p = special.expit(slope * (theta[person] - b[item]))
    gradient = np.bincount(person, slope * (y - p), n) - theta / THETA_SD**2
    hessian = np.bincount(person, slope**2 * p * (1 - p), n) + 1 / THETA_SD**2
    return np.asarray(theta + np.clip(gradient / hessian, -1.0, 1.0))


def fit_items(reference: Sequence[AttemptRecord]) -> ItemModel:
    """The 2PL (module docstring) and the wrong-response counts of every item."""
    index: dict[ItemKey, int] = {}
    rows, cols, right = [], [], []
    wrong: list[Counter[Response]] = []
    by_group: dict[GroupKey, dict[int, Counter[Response]]] = {}
    for row, attempt in enumerate(reference):
        group = by_group.setdefault(group_key(attempt), {})
        for item in attempt.items:
            column = index.setdefault(item.key, len(index))
            if column == len(wrong):
                wrong.append(Counter())
            rows.append(row)
            cols.append(column)
            right.append(item.right)
            if not item.right:
                wrong[column][item.chosen] += 1
                group.setdefault(column, Counter())[item.chosen] += 1
    person = np.asarray(rows, dtype=np.int64)
    item_index = np.asarray(cols, dtype=np.int64)
    y = np.asarray(right, dtype=np.float64)
    n_items = len(index)
    share = (np.bincount(item_index, y, n_items) + 0.5) / (
        np.bincount(item_index, None, n_items) + 1
    )
    b = -special.logit(share)
    log_a = np.zeros(n_items)
    theta = np.zeros(len(reference))
    for _ in range(JML_ITERATIONS):
        a = np.exp(log_a)
        theta = _theta_step(theta, person, item_index, y, a, b)
        slope = a[item_index]
        distance = theta[person] - b[item_index]
        p = special.expit(slope * distance)
        residual = y - p
        information = p * (1 - p)
        gradient = np.bincount(item_index, -slope * residual, n_items) - b / B_SD**2
        hessian = np.bincount(item_index, slope**2 * information, n_items) + 1 / B_SD**2
        b = b + np.clip(gradient / hessian, -1.0, 1.0)
        gradient = a * np.bincount(item_index, distance * residual, n_items) - log_a / LOG_A_SD**2
        hessian = (
            a**2 * np.bincount(item_index, distance**2 * information, n_items) + 1 / LOG_A_SD**2
        )
        log_a = log_a + np.clip(gradient / hessian, -0.5, 0.5)
    return ItemModel(
        index=index,
        a=np.exp(log_a),
        b=b,
        wrong=tuple(dict(c) for c in wrong),
        wrong_by_group={g: {i: dict(c) for i, c in items.items()} for g, items in by_group.items()},
    )
