"""Quiz assembly from the in-memory published bank (no MongoDB at quiz start).

Pure functions: given the published questions, the resident's group and what they answered
recently, choose the questions, drop options for the elderly where the bank allows, and
shuffle the options. Rules per mode and per group are data (`MODE_RULES`, `GROUP_RULES`)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from question_bank.cache import PublishedQuestion

DIMENSIONS = ("knowledge", "method", "spirit", "application")


@dataclass(frozen=True)
class ModeRules:
    count: int
    time_limit_seconds: int


@dataclass(frozen=True)
class GroupRules:
    """适老化 and friends: per population group."""

    time_factor: float = 1.0
    max_options: int = 6
    multiple_in_daily: bool = True


MODE_RULES = {
    "daily": ModeRules(count=5, time_limit_seconds=10 * 60),
    "practice": ModeRules(count=10, time_limit_seconds=30 * 60),
    "contest": ModeRules(count=20, time_limit_seconds=15 * 60),
    # Generous: a literacy measure, not a speed test (twice that again for the elderly).
    "assessment": ModeRules(count=30, time_limit_seconds=45 * 60),
}
# Items per dimension, proportional to the 40/20/20/20 weights of the national survey.
ASSESSMENT_BLUEPRINT = {"knowledge": 12, "method": 6, "spirit": 6, "application": 6}
# Expected share correct for the editors' difficulty rating (1 easy … 5 hard), used until an
# item has enough attempts for its observed facility to be trusted.
PRIOR_FACILITY = {1: 0.85, 2: 0.72, 3: 0.6, 4: 0.45, 5: 0.3}
GROUP_RULES = {"elderly": GroupRules(time_factor=2.0, max_options=3, multiple_in_daily=False)}
DEFAULT_GROUP_RULES = GroupRules()


@dataclass(frozen=True)
class ServedQuestion:
    """A question as placed in one quiz: `order[i]` is the original option key shown at
    position i (shown keys are A, B, C… in order)."""

    question: PublishedQuestion
    order: tuple[str, ...]

    def shown_key(self, original: str) -> str:
        return "ABCDEF"[self.order.index(original)]

    def original_key(self, shown: str) -> str | None:
        index = "ABCDEF".find(shown)
        return self.order[index] if 0 <= index < len(self.order) else None


def audience_of(group: str | None) -> str:
    return group if group in ("farmer", "elderly", "youth", "worker", "official") else "general"


def group_rules(group: str | None) -> GroupRules:
    return GROUP_RULES.get(group or "", DEFAULT_GROUP_RULES)


def time_limit(mode: str, group: str | None) -> int:
    return int(MODE_RULES[mode].time_limit_seconds * group_rules(group).time_factor)


def assemble(
    bank: Iterable[PublishedQuestion],
    *,
    mode: str,
    group: str | None,
    rng: random.Random,
    topic: str | None = None,
    recently_answered: frozenset[str] = frozenset(),
    weak_topics: tuple[str, ...] = (),
) -> list[ServedQuestion]:
    rules = group_rules(group)
    pool = [q for q in bank if topic is None or q.topic == topic]
    if mode == "daily" and not rules.multiple_in_daily:
        pool = [q for q in pool if q.type != "multiple"]
    fresh = [q for q in pool if q.id not in recently_answered]
    count = MODE_RULES[mode].count
    if len(fresh) >= count:  # repeat recent questions only when nothing else remains
        pool = fresh
    audience = audience_of(group)

    def preference(q: PublishedQuestion) -> float:
        score = 2.0 if audience in q.audiences else 1.0 if "general" in q.audiences else 0.0
        if q.topic in weak_topics:
            score += 1.5
        if q.id in recently_answered:
            score -= 5.0
        return score + rng.random()  # random tie-break, different per quiz

    chosen = _mix_dimensions(sorted(pool, key=preference, reverse=True), count)
    rng.shuffle(chosen)
    return [ServedQuestion(q, _option_order(q, rules, rng)) for q in chosen]


def _mix_dimensions(ranked: list[PublishedQuestion], count: int) -> list[PublishedQuestion]:
    """Take the best-ranked question of each dimension in turn, so a quiz mixes them."""
    queues = {d: [q for q in ranked if q.dimension == d] for d in DIMENSIONS}
    chosen: list[PublishedQuestion] = []
    while len(chosen) < count and any(queues.values()):
        for dimension in DIMENSIONS:
            if queues[dimension] and len(chosen) < count:
                chosen.append(queues[dimension].pop(0))
    return chosen


def _option_order(q: PublishedQuestion, rules: GroupRules, rng: random.Random) -> tuple[str, ...]:
    keys = [key for key, _ in q.options]
    if q.type == "true_false":
        return tuple(keys)  # 对 before 错, as everyone expects
    if q.type == "single" and len(keys) > rules.max_options:
        wrong = [k for k in keys if k not in q.answer]
        keys = list(q.answer) + rng.sample(wrong, rules.max_options - len(q.answer))
    rng.shuffle(keys)
    return tuple(keys)


def expected_facility(question: PublishedQuestion, facility: dict[str, float]) -> float:
    """Observed share correct (enough attempts) or the editors' rating's prior."""
    observed = facility.get(f"{question.id}:{question.version}")
    return observed if observed is not None else PRIOR_FACILITY.get(question.difficulty, 0.6)


def assemble_assessment(
    bank: Iterable[PublishedQuestion],
    *,
    rng: random.Random,
    facility: dict[str, float],
) -> list[ServedQuestion] | None:
    """A standard form by the blueprint, or None if a dimension lacks items.

    Forms are made comparable by stratified sampling: each dimension's items are ranked by
    expected facility and cut into as many strata as items are needed, one item drawn from
    each, so every form spans the same range of difficulty. Options are shuffled but never
    dropped (the elderly rule would make a form easier, and forms must be comparable)."""
    by_dimension: dict[str, list[PublishedQuestion]] = {d: [] for d in ASSESSMENT_BLUEPRINT}
    for question in bank:
        if question.dimension in by_dimension:
            by_dimension[question.dimension].append(question)
    form: list[PublishedQuestion] = []
    for dimension, needed in ASSESSMENT_BLUEPRINT.items():
        pool = sorted(by_dimension[dimension], key=lambda q: (expected_facility(q, facility), q.id))
        if len(pool) < needed:
            return None
        form.extend(_one_per_stratum(pool, needed, rng))
    rng.shuffle(form)
    return [ServedQuestion(q, _option_order(q, DEFAULT_GROUP_RULES, rng)) for q in form]


def _one_per_stratum(
    ranked: list[PublishedQuestion], strata: int, rng: random.Random
) -> list[PublishedQuestion]:
    bounds = [round(i * len(ranked) / strata) for i in range(strata + 1)]
    return [rng.choice(ranked[bounds[i] : bounds[i + 1]]) for i in range(strata)]
