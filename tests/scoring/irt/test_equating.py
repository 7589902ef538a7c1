"""True-score equating to the reference form: an easy and a hard form give the same totals to
the same population, where percent-correct does not, and the literate cut classifies
residents as their true ability would. Uses calibrated, not true, parameters."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.irt.calibration import calibrate
from scoring.irt.equating import (
    ReferenceForm,
    build_reference_form,
    dimension_item_weights,
    equated_totals,
    expected_total,
    expected_totals,
    reference_from_items,
    theta_for_total,
)
from scoring.irt.model import BLUEPRINT, LITERATE_TOTAL, ItemBank, item_bank
from tests.scoring.irt.simulate import answer, blueprint_forms, true_bank

RESIDENTS = 2000


def two_forms(bank: ItemBank, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint blueprint forms whose true mean difficulties differ by 0.5 ± 0.02 logits,
    the easier first."""
    while True:
        first: list[int] = []
        second: list[int] = []
        for dimension, count in BLUEPRINT.items():
            pool = rng.permutation(np.flatnonzero(bank.dimension == dimension))
            first.extend(pool[:count])
            second.extend(pool[count : 2 * count])
        gap = bank.b[second].mean() - bank.b[first].mean()
        if abs(abs(gap) - 0.5) <= 0.02:
            pair = (np.array(first), np.array(second))
            return pair if gap > 0 else pair[::-1]


def percent_totals(bank: ItemBank, form: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Today's score: percent correct weighted 40/20/20/20 by dimension, per resident."""
    weights = dimension_item_weights(bank.dimension[form])
    return correct.reshape(-1, form.size) @ weights


def test_equated_totals_remove_the_forms_difficulty() -> None:
    rng = np.random.default_rng(2026)
    bank = true_bank(rng)
    calibration_theta = rng.normal(0.0, 1.0, 3000)
    forms = blueprint_forms(bank, 3000, rng)
    sample = answer(calibration_theta, forms, bank.a, bank.b, rng)
    calibration = calibrate(sample.person, sample.item, sample.correct)
    calibrated = item_bank(bank.ids, bank.dimension, calibration.a, calibration.b)
    reference = build_reference_form(calibrated, eligible=calibration.calibrated)
    easy, hard = two_forms(bank, rng)
    # One population: the same 2,000 abilities sit both forms, so the comparison measures
    # the forms and not the luck of drawing two groups.
    theta = rng.normal(0.0, 1.0, RESIDENTS)
    raw, equated = {}, {}
    for name, form in (("easy", easy), ("hard", hard)):
        answers = answer(theta, np.tile(form, (RESIDENTS, 1)), bank.a, bank.b, rng)
        raw[name] = percent_totals(bank, form, answers.correct)
        equated[name] = equated_totals(
            answers.person, answers.item, answers.correct, calibration.a, calibration.b, reference
        )
    assert raw["easy"].mean() - raw["hard"].mean() >= 5.0
    assert abs(equated["easy"].mean() - equated["hard"].mean()) <= 1.0
    truth = ReferenceForm(
        bank.a[reference.items], bank.b[reference.items], reference.weight, reference.items
    )
    literate = expected_totals(theta, truth) >= LITERATE_TOTAL
    agreement = np.mean([(equated[name] >= LITERATE_TOTAL) == literate for name in equated])
    assert agreement >= 0.90


def test_the_reference_form_follows_the_blueprint_and_is_deterministic() -> None:
    bank = true_bank(np.random.default_rng(4))
    reference = build_reference_form(bank)
    again = build_reference_form(bank)
    assert (again.items == reference.items).all()  # same bank, same form
    counts = {d: int(np.sum(bank.dimension[reference.items] == d)) for d in BLUEPRINT}
    assert counts == BLUEPRINT
    assert len(set(reference.items.tolist())) == 30
    assert reference.maximum == pytest.approx(100.0)
    assert reference.weight == pytest.approx(np.full(30, 10.0 / 3.0))  # 40/12 = 20/6
    # The chosen difficulties spread over each dimension's range instead of bunching.
    knowledge = bank.b[reference.items[:12]]
    pool = bank.b[bank.dimension == "knowledge"]
    assert knowledge.min() < np.quantile(pool, 0.15) and knowledge.max() > np.quantile(pool, 0.85)
    ineligible = np.zeros(len(bank), dtype=bool)
    ineligible[:25] = True
    with pytest.raises(ValueError, match="knowledge"):
        build_reference_form(bank, eligible=~ineligible)


def test_theta_for_total_inverts_the_expected_total() -> None:
    reference = reference_from_items([(1.0, b, 10.0) for b in np.linspace(-1.5, 1.5, 10)])
    assert reference.maximum == pytest.approx(100.0)
    assert expected_total(0.0, reference) == pytest.approx(50.0)
    assert 0.0 < expected_total(-6.0, reference) < expected_total(6.0, reference) < 100.0
    for total in (5.0, 35.0, 70.0, 96.0):
        theta = theta_for_total(total, reference)
        assert expected_total(theta, reference) == pytest.approx(total, abs=1e-6)
    assert theta_for_total(70.0, reference) > 0.0
    for unreachable in (0.0, 100.0, 120.0):
        with pytest.raises(ValueError):
            theta_for_total(unreachable, reference)
