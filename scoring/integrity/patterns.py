"""Straight-lining: the same shown position chosen on (almost) every item of a form.

The position a resident taps is the index of the chosen key in the order shown. Multiple-choice
options are shuffled per attempt, so an honest resident's positions are spread evenly whatever
they know; true/false items are not shuffled (对 before 错) and have only two positions, so
"the same position every time" is weaker evidence there and depends on the answer keys. Chance
is therefore taken per item from the reference attempts: the share of answers at each shown
position (with a Dirichlet prior of `PRIOR_ANSWERS` answers spread evenly over the item's
positions, so a rarely answered item falls back to 1/options).

For each position j the number of items answered at j is a Poisson-binomial count with those
per-item probabilities; its upper tail, times the number of positions tried (Bonferroni), is
the p-value. `straight_lining` needs p ≤ `ALPHA` and the modal position on at least
`MIN_MODAL_SHARE` of the answered items (an effect size: a statistically odd but mixed pattern
is not straight-lining), on forms of at least `MIN_ITEMS` single-answer items. A 10-item form of
true/false items answered 9 times 对 has p ≈ 0.02 and is not flagged; a 30-item four-option
form answered 24 times at A has p ≈ 2e-9."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from scoring.integrity.records import (
    AttemptRecord,
    Flag,
    FloatArray,
    ItemKey,
    Reason,
    make_flag,
    poisson_binomial,
    strength_from_p,
    upper_tails,
)

MIN_ITEMS: Final = 10
ALPHA: Final = 1e-4  # per attempt: about 0.3 false flags in a county's month of 3,000
MIN_MODAL_SHARE: Final = 0.8
PRIOR_ANSWERS: Final = 10.0


def position_chances(reference: Sequence[AttemptRecord]) -> dict[ItemKey, FloatArray]:
    """Per item, the probability of each shown position among its answers (smoothed)."""
    counts: dict[ItemKey, FloatArray] = {}
    for attempt in reference:
        for item in attempt.items:
            position = item.shown_position
            if position is None:
                continue
            table = counts.get(item.key)
            if table is None or table.size < len(item.order):
                grown = np.zeros(len(item.order))
                if table is not None:
                    grown[: table.size] = table
                table = counts[item.key] = grown
            table[position] += 1.0
    return {
        key: (table + PRIOR_ANSWERS / table.size) / (table.sum() + PRIOR_ANSWERS)
        for key, table in counts.items()
    }


def straight_lining(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    chances: Mapping[ItemKey, FloatArray] | None = None,
) -> list[Flag]:
    """`straight_lining` flags of the attempts (history only adds to the per-item chances)."""
    table = chances if chances is not None else position_chances([*attempts, *history])
    flags = []
    for attempt in attempts:
        answered = [(i, p) for i in attempt.items if (p := i.shown_position) is not None]
        if len(answered) < MIN_ITEMS:
            continue
        width = max(len(i.order) for i, _ in answered)
        chance = np.zeros((len(answered), width))
        positions = np.array([p for _, p in answered])
        for row, (item, _) in enumerate(answered):
            known = table.get(item.key)
            if known is None or known.size != len(item.order):
                known = np.full(len(item.order), 1.0 / len(item.order))
            chance[row, : known.size] = known
        counts = np.bincount(positions, minlength=width)
        modal = int(np.argmax(counts))
        if counts[modal] < MIN_MODAL_SHARE * len(answered):
            continue
        tails = [
            float(upper_tails(poisson_binomial(chance[:, j]))[0, counts[j]])
            for j in range(width)
            if counts[j] > 0
        ]
        p_value = min(1.0, min(tails) * width)
        if p_value > ALPHA:
            continue
        detail: dict[str, object] = {
            "position": "ABCDEF"[modal] if modal < 6 else str(modal),
            "items_at_position": int(counts[modal]),
            "items_answered": len(answered),
            "expected_at_position": round(float(chance[:, modal].sum()), 2),
            "p_value": p_value,
            "alpha": ALPHA,
        }
        strength = strength_from_p(p_value, ALPHA)
        flags.append(make_flag(attempt.attempt_id, [Reason("straight_lining", detail, strength)]))
    return flags
