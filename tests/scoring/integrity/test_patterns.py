"""straight_lining: against chance for the form's option counts."""

from __future__ import annotations

import numpy as np

from scoring.integrity.patterns import straight_lining
from tests.scoring.integrity.make import KEYS, attempt, item

SEED = 11


def shuffled_items(
    positions: list[int], n_options: int = 4, seed: int = SEED
) -> list[dict[str, object]]:
    """Items whose options were shuffled; the resident tapped the given shown positions."""
    rng = np.random.default_rng(seed)
    items = []
    for number, position in enumerate(positions):
        order = [KEYS[k] for k in rng.permutation(n_options)]
        items.append(item(number, (order[position],), right=bool(rng.random() < 0.6), order=order))
    return items


def test_the_same_position_on_nearly_every_item_is_straight_lining() -> None:
    positions = [0] * 27 + [1, 2, 3]
    flags = straight_lining([attempt("liner", items=shuffled_items(positions))])
    assert len(flags) == 1
    detail = flags[0].reasons[0].detail
    assert detail["position"] == "A" and detail["items_at_position"] == 27
    assert detail["p_value"] < 1e-10  # type: ignore[operator]
    assert flags[0].strong


def test_an_honest_spread_of_positions_is_not_straight_lining() -> None:
    rng = np.random.default_rng(SEED)
    honest = [
        attempt(f"h{k}", items=shuffled_items(list(rng.integers(0, 4, 30)), seed=k))
        for k in range(50)
    ]
    assert straight_lining(honest) == []


def test_true_false_items_need_more_than_four_option_items() -> None:
    tf = ("A", "B")  # 对 before 错, never shuffled
    ten_of_ten = [item(k, ("A",), order=tf) for k in range(10)]
    assert straight_lining([attempt("tf", items=ten_of_ten)]) == []  # p = 2 × 0.5¹⁰ ≈ 0.002
    # ten of ten at one position of four-option items is far less likely by chance
    four = shuffled_items([0] * 10)
    assert len(straight_lining([attempt("four", items=four)])) == 1  # p ≈ 4 × 0.25¹⁰ ≈ 4e-6


def test_short_forms_and_multiple_choice_answers_are_not_judged() -> None:
    assert straight_lining([attempt("short", items=shuffled_items([0] * 9))]) == []
    multiple = [item(k, ("A", "B"), order=KEYS) for k in range(30)]
    assert straight_lining([attempt("multi", items=multiple)]) == []
