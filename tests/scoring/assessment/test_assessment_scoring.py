"""The assessment's arithmetic and forms, as pure functions: weights, exact cut-offs, tiers,
and forms that cover the blueprint with comparable difficulty."""

from __future__ import annotations

import random
import statistics
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from question_bank.assembly import (
    ASSESSMENT_BLUEPRINT,
    assemble_assessment,
    expected_facility,
)
from question_bank.cache import PublishedQuestion
from scoring.assessment import scoring as assessment
from scoring.assessment.scoring import DIMENSION_WEIGHTS, score, tier_of


def bank(per_dimension: int = 40) -> list[PublishedQuestion]:
    rng = random.Random(7)
    questions = []
    for dimension in ASSESSMENT_BLUEPRINT:
        for i in range(per_dimension):
            questions.append(
                PublishedQuestion(
                    id=f"{dimension[:3]}{i:021d}",
                    version=1,
                    type="single",
                    stem=f"{dimension} {i}",
                    options=(("A", "甲"), ("B", "乙"), ("C", "丙")),
                    answer=("A",),
                    explanation="",
                    dimension=dimension,
                    topic="健康",
                    audiences=("general",),
                    difficulty=rng.randint(1, 5),
                )
            )
    return questions


def test_weights_are_the_national_surveys_and_sum_to_100() -> None:
    assert DIMENSION_WEIGHTS == {"knowledge": 40, "method": 20, "spirit": 20, "application": 20}
    assert sum(DIMENSION_WEIGHTS.values()) == 100


def test_every_assembled_form_follows_the_blueprint_and_scores_100_when_all_right() -> None:
    questions = bank()
    for seed in range(200):
        form = assemble_assessment(questions, rng=random.Random(seed), facility={})
        assert form is not None and len(form) == 30
        counts = {d: sum(1 for s in form if s.question.dimension == d) for d in DIMENSION_WEIGHTS}
        assert (
            counts
            == ASSESSMENT_BLUEPRINT
            == {
                "knowledge": 12,
                "method": 6,
                "spirit": 6,
                "application": 6,
            }
        )
        perfect = score((s.question.dimension, 1.0) for s in form)
        assert perfect.total == 100 and perfect.tier == "advanced"
        assert {d: int(v) for d, v in perfect.dimension_scores.items()} == DIMENSION_WEIGHTS


def test_a_dimension_short_of_items_means_no_form() -> None:
    questions = [q for q in bank() if q.dimension != "spirit"] + bank(5)[80:85]
    assert assemble_assessment(questions, rng=random.Random(1), facility={}) is None


@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=1),
    st.lists(st.integers(0, 6), min_size=3, max_size=3),
)
def test_dimension_scores_always_add_up_to_the_total(knowledge: list[int], rest: list[int]) -> None:
    correct = dict(zip(DIMENSION_WEIGHTS, knowledge + rest, strict=True))
    marks = [
        (d, 1.0 if i < correct[d] else 0.0)
        for d, items in ASSESSMENT_BLUEPRINT.items()
        for i in range(items)
    ]
    result = score(marks)
    assert sum(result.dimension_scores.values()) == result.total
    assert 0 <= result.total <= 100
    expected = sum(
        Fraction(DIMENSION_WEIGHTS[d] * correct[d], ASSESSMENT_BLUEPRINT[d])
        for d in DIMENSION_WEIGHTS
    )
    assert result.total == expected


def test_tier_cut_offs_are_inclusive() -> None:
    assert tier_of(Fraction(85)) == "advanced"
    assert tier_of(Fraction(8499, 100)) == "literate"
    assert tier_of(Fraction(70)) == "literate"
    assert tier_of(Fraction(699, 10)) == "basic"
    assert tier_of(69.9) == "basic"
    assert tier_of(Fraction(55)) == "basic"
    assert tier_of(Fraction(5499, 100)) == "low"
    assert tier_of(0) == "low"


def test_21_of_30_equal_items_is_exactly_70_and_literate() -> None:
    marks = [
        (d, 1.0 if i < n * 7 // 10 else 0.0)
        for d, n in ASSESSMENT_BLUEPRINT.items()
        for i in range(n)
    ]
    # 8 of 12 knowledge (26.67) + 4 of 6 in each other dimension (13.33 × 3) = 66.67: basic
    assert score(marks).tier == "basic"
    marks = (
        [("knowledge", 1.0)] * 9
        + [("knowledge", 0.0)] * 3
        + [
            (d, 1.0 if i < 4 else 0.0)
            for d in ("method", "spirit", "application")
            for i in range(6)
        ]
    )
    result = score(marks)  # 30 + 40 = 70 exactly, with no floating-point shortfall
    assert result.total == 70 and result.literate and result.tier == "literate"
    assert result.as_response()["total"] == 70.0


def test_displayed_scores_never_round_up_across_a_cut_off() -> None:
    assert assessment.display(Fraction(6999, 100) + Fraction(1, 300)) == 69.99


def test_forms_are_of_comparable_difficulty() -> None:
    """Stratified forms vary far less in expected difficulty than forms drawn at random."""
    questions = bank(60)
    facility = {f"{q.id}:1": random.Random(q.id).uniform(0.2, 0.95) for q in questions}

    def mean_facility(items: list[PublishedQuestion]) -> float:
        return statistics.fmean(expected_facility(q, facility) for q in items)

    stratified, unstratified = [], []
    for seed in range(300):
        rng = random.Random(seed)
        form = assemble_assessment(questions, rng=rng, facility=facility)
        assert form is not None
        stratified.append(mean_facility([s.question for s in form]))
        pick = [
            q
            for d, n in ASSESSMENT_BLUEPRINT.items()
            for q in rng.sample([q for q in questions if q.dimension == d], n)
        ]
        unstratified.append(mean_facility(pick))
    assert statistics.pstdev(stratified) < statistics.pstdev(unstratified) / 2
    assert statistics.pstdev(stratified) < 0.02


def test_observed_facility_overrides_the_editors_rating_once_known() -> None:
    question = bank(1)[0]
    assert expected_facility(question, {}) in (0.85, 0.72, 0.6, 0.45, 0.3)
    assert expected_facility(question, {f"{question.id}:1": 0.33}) == 0.33
