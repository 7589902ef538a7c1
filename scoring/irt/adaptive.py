"""Adaptive testing (CAT) on a calibrated bank, as pure functions of the answers so far.

After each answer θ is re-estimated by EAP from all answers (prior N(0, 1)). The next item
comes from the dimension furthest below its share of the blueprint (share × items given so far
plus one, minus items given in it; ties go to the blueprint's order), so a short test still
covers the four dimensions in proportion. Within it, the item is drawn at random among the
`randomesque` unused items with the largest Fisher information at the current θ (Kingsbury &
Zara, 1989): pure maximum information would give every resident of similar ability the same
items. The test stops when the posterior SD reaches `se_target` (0.35) or after `max_items`
(15) items; `next_item` then returns None."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scoring.irt.model import BLUEPRINT, ItemBank
from scoring.irt.theta import eap

Answer = tuple[int, bool]  # (bank index, answered right)


def update_theta(
    bank: ItemBank, answered: Sequence[Answer], prior_mean: float = 0.0, prior_sd: float = 1.0
) -> tuple[float, float]:
    """(EAP θ, posterior SD) from the answers so far; the prior's when there are none."""
    if not answered:
        return prior_mean, prior_sd
    items = np.array([item for item, _ in answered], dtype=np.int64)
    right = np.array([correct for _, correct in answered], dtype=bool)
    return eap(bank.a[items], bank.b[items], right, prior_mean, prior_sd)


def next_dimension(
    bank: ItemBank, answered: Sequence[Answer], blueprint: dict[str, int] = BLUEPRINT
) -> str | None:
    """The dimension furthest below its blueprint share that still has unused items."""
    given = [str(bank.dimension[item]) for item, _ in answered]
    used = {item for item, _ in answered}
    total = sum(blueprint.values())
    best: tuple[float, str] | None = None
    for dimension, count in blueprint.items():
        remaining = np.flatnonzero(bank.dimension == dimension)
        if all(int(item) in used for item in remaining):
            continue
        deficit = count / total * (len(given) + 1) - given.count(dimension)
        if best is None or deficit > best[0]:
            best = (deficit, dimension)
    return None if best is None else best[1]


def next_item(
    bank: ItemBank,
    answered: Sequence[Answer],
    rng: np.random.Generator,
    *,
    blueprint: dict[str, int] = BLUEPRINT,
    max_items: int = 15,
    se_target: float = 0.35,
    randomesque: int = 5,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
) -> int | None:
    """The bank index of the next item, or None when the test should stop."""
    theta, se = update_theta(bank, answered, prior_mean, prior_sd)
    if len(answered) >= max_items or (answered and se <= se_target):
        return None
    dimension = next_dimension(bank, answered, blueprint)
    if dimension is None:
        return None
    used = np.zeros(len(bank), dtype=bool)
    used[[item for item, _ in answered]] = True
    pool = np.flatnonzero((bank.dimension == dimension) & ~used)
    information = bank.information(theta)[pool]
    best = pool[np.argsort(-information, kind="stable")[:randomesque]]
    return int(rng.choice(best))
