"""Adaptive testing: 15 adaptive items measure as precisely as 30 fixed ones, the blueprint's
shares hold, and the stopping rules stop.

The 30-item comparison is run on a 320-item bank (128/64/64/64, the same parameter
distribution as elsewhere): 15 items can only match 30 when the bank offers enough highly
informative items near every ability. On the 80-item bank the adaptive test is compared with
a fixed form of the same length instead."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from scoring.irt.adaptive import Answer, next_dimension, next_item, update_theta
from scoring.irt.model import BLUEPRINT, ItemBank
from scoring.irt.theta import eap
from tests.scoring.irt.simulate import BANK_SIZES, blueprint_forms, true_bank

RESIDENTS = 500


def run_cat(bank: ItemBank, theta: float, rng: np.random.Generator) -> list[Answer]:
    answered: list[Answer] = []
    while (item := next_item(bank, answered, rng)) is not None:
        p = special.expit(bank.a[item] * (theta - bank.b[item]))
        answered.append((item, bool(rng.random() < p)))
    return answered


def fixed_form_sds(
    bank: ItemBank, theta: np.ndarray, rng: np.random.Generator, blueprint: dict[str, int]
) -> np.ndarray:
    forms = blueprint_forms(bank, theta.size, rng, blueprint)
    sds = []
    for ability, form in zip(theta, forms, strict=True):
        right = rng.random(form.size) < special.expit(bank.a[form] * (ability - bank.b[form]))
        sds.append(eap(bank.a[form], bank.b[form], right)[1])
    return np.array(sds)


def cat_sds(
    bank: ItemBank, theta: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    sds, lengths = [], []
    for ability in theta:
        answered = run_cat(bank, float(ability), rng)
        sds.append(update_theta(bank, answered)[1])
        lengths.append(len(answered))
    return np.array(sds), lengths


def test_fifteen_adaptive_items_beat_thirty_fixed_ones() -> None:
    rng = np.random.default_rng(15)
    bank = true_bank(rng, {d: 4 * n for d, n in BANK_SIZES.items()})
    theta = rng.normal(0.0, 1.0, RESIDENTS)
    adaptive, lengths = cat_sds(bank, theta, rng)
    fixed = fixed_form_sds(bank, theta, rng, BLUEPRINT)
    assert max(lengths) <= 15
    assert adaptive.mean() <= fixed.mean()
    # Those who stopped early stopped because they were measured precisely enough.
    early = np.array(lengths) < 15
    assert early.any() and (adaptive[early] <= 0.35).all()


def test_on_the_80_item_bank_adaptive_beats_a_fixed_form_of_equal_length() -> None:
    rng = np.random.default_rng(16)
    bank = true_bank(rng)
    theta = rng.normal(0.0, 1.0, RESIDENTS)
    adaptive, _ = cat_sds(bank, theta, rng)
    fixed_15 = fixed_form_sds(
        bank, theta, rng, {"knowledge": 6, "method": 3, "spirit": 3, "application": 3}
    )
    assert adaptive.mean() < fixed_15.mean() - 0.03


def test_a_test_follows_the_blueprint_shares_and_never_repeats() -> None:
    bank = true_bank(np.random.default_rng(3))
    answered = run_cat(bank, 0.3, np.random.default_rng(4))
    items = [item for item, _ in answered]
    assert len(set(items)) == len(items)
    given = [str(bank.dimension[i]) for i in items]
    for n in range(1, len(given) + 1):
        for dimension, count in BLUEPRINT.items():
            # At every point each dimension is within one item of its share.
            assert abs(given[:n].count(dimension) - count / 30 * n) < 1.0 + 1e-9
    assert run_cat(bank, 0.3, np.random.default_rng(4)) == answered  # reproducible


def test_the_stopping_rules() -> None:
    bank = true_bank(np.random.default_rng(5))
    rng = np.random.default_rng(6)
    assert update_theta(bank, []) == (0.0, 1.0)
    first = next_item(bank, [], rng)
    assert first is not None and str(bank.dimension[first]) == "knowledge"
    fifteen: list[Answer] = [(int(i), i % 2 == 0) for i in range(15)]
    assert next_item(bank, fifteen, rng) is None
    assert next_item(bank, fifteen[:5], rng, se_target=0.99) is None
    assert next_item(bank, fifteen[:5], rng, se_target=0.01) is not None
    everything: list[Answer] = [(i, True) for i in range(len(bank))]
    assert next_dimension(bank, everything) is None
    assert next_item(bank, everything, rng, max_items=1000, se_target=0.0) is None


def test_the_first_items_are_the_most_informative_at_the_start() -> None:
    bank = true_bank(np.random.default_rng(7))
    knowledge = np.flatnonzero(bank.dimension == "knowledge")
    top_five = set(knowledge[np.argsort(-bank.information(0.0)[knowledge])[:5]].tolist())
    picks = {next_item(bank, [], np.random.default_rng(seed)) for seed in range(60)}
    assert picks == top_five
    theta, se = update_theta(bank, [(int(knowledge[0]), True)])
    assert theta > 0.0 and se < 1.0
    assert theta == pytest.approx(eap(bank.a[knowledge[:1]], bank.b[knowledge[:1]], [1])[0])
