"""The item model behind the copying test: P(wrong | θ) from a 2PL and P(response | wrong) from
each wrong response's popularity.

The 2PL is the project's calibration (scoring.irt.calibration: marginal maximum likelihood by
EM, log a ~ N(0, 0.5²), b ~ N(0, 1)), fitted to the reference attempts, and every attempt's θ is
its EAP on those items. An earlier joint MAP fit (persons and items alternately) diverged on large
reference pools: with hundreds of answers per item the priors no longer held the slopes, some
reached 7 and one 139, abilities shrank, and honest low scorers' shared popular wrong answers
came out as copying (p ~ 1e-11). Marginalising over θ is what keeps the slopes consistent as
the pool grows. An item absent from the reference (a new question in streaming use) is taken as
a = 1, b = 0; an item with fewer than 30 answers as a = 1 and b from its share right, and it does
not move abilities.

Popularity is the share of a wrong response (the exact set of keys chosen; an empty answer is a
response too) among the item's wrong answers outside the group under test (a township-week and
mode, or one helper's attempts of a mode), with 0.5 pseudo-answers per response (Jeffreys):
leaving the group out keeps a circulated answer sheet, or a helper's own answers, from making
its own wrong answers look popular."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from scoring.integrity.records import AttemptRecord, FloatArray, ItemAnswer, ItemKey, Response
from scoring.irt.calibration import calibrate
from scoring.irt.theta import eap_many

SMOOTHING: Final = 0.5  # pseudo-answers per wrong response (Jeffreys)
GroupKey = tuple[str, str, str]  # township, week, mode
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def group_key(attempt: AttemptRecord) -> GroupKey:
    """The attempts that could have copied from each other: one township-week and mode."""
    return (attempt.township_code or "", attempt.week, attempt.mode)


def helper_group_key(attempt: AttemptRecord) -> GroupKey | None:
    """The attempts one helper entered (a session or a paper form), of one mode, whatever the
    township or week: a helper filling in answers himself repeats them wherever he goes."""
    if attempt.helper_id is None:
        return None
    return (f"helper:{attempt.helper_id}", "", attempt.mode)


@dataclass(frozen=True)
class ItemModel:
    index: Mapping[ItemKey, int]
    a: FloatArray
    b: FloatArray
    wrong: tuple[Mapping[Response, int], ...]  # per item: counts of each wrong response
    wrong_by_group: Mapping[GroupKey, Mapping[int, Mapping[Response, int]]]
    calibrated: BoolArray  # per item: estimated by the calibration, not from its share alone

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
        """EAP abilities of the attempts on the calibrated items (others are skipped: their b
        is a rough placement that would move abilities on a guess)."""
        rows, cols, right = [], [], []
        for row, attempt in enumerate(attempts):
            for column, answer in _first_answers(attempt, self.index):
                if self.calibrated[column]:
                    rows.append(row)
                    cols.append(column)
                    right.append(answer.right)
        theta, _ = eap_many(rows, cols, right, self.a, self.b, n_persons=len(attempts))
        return theta


def _first_answers(
    attempt: AttemptRecord, index: Mapping[ItemKey, int]
) -> list[tuple[int, ItemAnswer]]:
    """The attempt's answers to known items, each item once (a malformed attempt holding a
    question twice must not stop the screening: the calibration refuses repeated answers)."""
    seen: dict[int, ItemAnswer] = {}
    for answer in attempt.items:
        column = index.get(answer.key)
        if column is not None and column not in seen:
            seen[column] = answer
    return list(seen.items())


def fit_items(reference: Sequence[AttemptRecord]) -> ItemModel:
    """The 2PL (module docstring) and the wrong-response counts of every item."""
    index: dict[ItemKey, int] = {}
    rows, cols, right = [], [], []
    wrong: list[Counter[Response]] = []
    by_group: dict[GroupKey, dict[int, Counter[Response]]] = {}
    for row, attempt in enumerate(reference):
        groups = [by_group.setdefault(group_key(attempt), {})]
        if (helper := helper_group_key(attempt)) is not None:
            groups.append(by_group.setdefault(helper, {}))
        for item in attempt.items:
            index.setdefault(item.key, len(index))
        for column, item in _first_answers(attempt, index):
            while len(wrong) <= column:
                wrong.append(Counter())
            rows.append(row)
            cols.append(column)
            right.append(item.right)
            if not item.right:
                wrong[column][item.chosen] += 1
                for group in groups:
                    group.setdefault(column, Counter())[item.chosen] += 1
    fitted = calibrate(rows, cols, right, n_items=len(index))
    calibrated = fitted.calibrated
    # Items with too few answers to calibrate keep a = 1 and take b from their share right
    # (smoothed), not the calibration's b = 0: a hard new item must still make a wrong answer
    # likely, or shared wrong answers on it would look rarer than they are.
    n_items = len(index)
    answered = np.asarray(cols, dtype=np.int64)
    share = (np.bincount(answered, np.asarray(right, dtype=np.float64), n_items) + 0.5) / (
        np.bincount(answered, None, n_items) + 1.0
    )
    b = np.where(calibrated, fitted.b, -special.logit(share))
    return ItemModel(
        index=index,
        a=fitted.a,
        b=b,
        wrong=tuple(dict(c) for c in wrong),
        wrong_by_group={g: {i: dict(c) for i, c in items.items()} for g, items in by_group.items()},
        calibrated=calibrated,
    )
