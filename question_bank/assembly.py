"""Quiz assembly from the in-memory published bank (no MongoDB at quiz start).

Pure functions: given the published questions, the resident's group and what they answered
recently, choose the questions, drop options for the elderly where the bank allows, and
shuffle the options. Rules per mode and per group are data (`MODE_RULES`, `GROUP_RULES`)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator
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
    # At most 15 items, one at a time (it stops earlier once θ is precise); an hour in all.
    "adaptive": ModeRules(count=15, time_limit_seconds=60 * 60),
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


AUDIENCE_TIERS = (2, 1, 0)  # the resident's own group, "general", someone else's group


@dataclass(frozen=True)
class _Pool:
    """The questions one kind of quiz draws from: per dimension, per audience tier (see
    `_audience_tier`), per topic. Arranged once per bank generation, so that a quiz start
    touches only the steps it draws from."""

    lists: dict[str, dict[int, dict[str, list[PublishedQuestion]]]]
    ids: dict[str, frozenset[str]]  # per dimension

    def size(self, dimension: str, excluded: frozenset[str]) -> int:
        return len(self.ids[dimension]) - len(self.ids[dimension] & excluded)


def _audience_tier(question: PublishedQuestion, audience: str) -> int:
    return 2 if audience in question.audiences else 1 if "general" in question.audiences else 0


class _Pools:
    """Pools by (audience, topic, without multiple choice) for one bank generation."""

    def __init__(self) -> None:
        self._generation: int | None = None
        self._pools: dict[tuple[str, str | None, bool], _Pool] = {}

    def get(
        self,
        bank: Iterable[PublishedQuestion],
        generation: int,
        kind: tuple[str, str | None, bool],
    ) -> _Pool:
        if generation != self._generation:
            self._generation, self._pools = generation, {}
        pool = self._pools.get(kind)
        if pool is None:
            pool = self._pools[kind] = _arrange(bank, *kind)
        return pool


def _arrange(
    bank: Iterable[PublishedQuestion], audience: str, topic: str | None, no_multiple: bool
) -> _Pool:
    lists: dict[str, dict[int, dict[str, list[PublishedQuestion]]]] = {
        d: {tier: {} for tier in AUDIENCE_TIERS} for d in DIMENSIONS
    }
    for q in bank:
        if (topic is not None and q.topic != topic) or (no_multiple and q.type == "multiple"):
            continue
        if q.dimension in lists:
            lists[q.dimension][_audience_tier(q, audience)].setdefault(q.topic, []).append(q)
    ids = {
        d: frozenset(q.id for by_topic in tiers.values() for qs in by_topic.values() for q in qs)
        for d, tiers in lists.items()
    }
    return _Pool(lists, ids)


_POOLS = _Pools()


def assemble(
    bank: Iterable[PublishedQuestion],
    *,
    mode: str,
    group: str | None,
    rng: random.Random,
    topic: str | None = None,
    recently_answered: frozenset[str] = frozenset(),
    weak_topics: tuple[str, ...] = (),
    generation: int | None = None,
) -> list[ServedQuestion]:
    """Choose a quiz's questions: the four dimensions in turn; within a dimension, questions
    for the resident's group first, then general ones, then others, with topics the resident
    recently got wrong moved up one and a half steps; at random within a step. Recently
    answered questions come after all others, and only if too few others remain.

    `generation` names the state of `bank` (it changes whenever the bank does) so its
    arrangement is reused between quizzes; without it the bank is arranged for this call."""
    rules = group_rules(group)
    kind = (audience_of(group), topic, mode == "daily" and not rules.multiple_in_daily)
    pool = _arrange(bank, *kind) if generation is None else _POOLS.get(bank, generation, kind)
    count = MODE_RULES[mode].count
    fresh = {d: pool.size(d, recently_answered) for d in DIMENSIONS}
    repeat = sum(fresh.values()) < count  # repeat recent questions only when too few others
    available = {d: len(pool.ids[d]) for d in DIMENSIONS} if repeat else fresh
    chosen = [
        q
        for dimension, quota in _quotas(available, count).items()
        for q in _draw(pool.lists[dimension], quota, weak_topics, recently_answered, repeat, rng)
    ]
    rng.shuffle(chosen)
    return [ServedQuestion(q, _option_order(q, rules, rng)) for q in chosen]


def _quotas(available: dict[str, int], count: int) -> dict[str, int]:
    """How many questions each dimension gives: one each in turn, while it has any left."""
    quotas = dict.fromkeys(DIMENSIONS, 0)
    given = 0
    while given < count and any(quotas[d] < available[d] for d in DIMENSIONS):
        for dimension in DIMENSIONS:
            if quotas[dimension] < available[dimension] and given < count:
                quotas[dimension] += 1
                given += 1
    return quotas


def _draw(
    tiers: dict[int, dict[str, list[PublishedQuestion]]],
    quota: int,
    weak_topics: tuple[str, ...],
    recent: frozenset[str],
    repeat: bool,
    rng: random.Random,
) -> list[PublishedQuestion]:
    """`quota` questions of one dimension, walking its steps from the most preferred; then,
    if repeats are allowed, the same steps again for recently answered questions."""
    drawn: list[PublishedQuestion] = []
    passes = (False, True) if repeat and recent else (False,)
    for answered in passes:
        for step in _steps(tiers, weak_topics):
            if len(drawn) >= quota:
                return drawn
            if recent:
                step = [q for q in step if (q.id in recent) == answered]
            drawn.extend(rng.sample(step, min(quota - len(drawn), len(step))))
    return drawn


def _steps(
    tiers: dict[int, dict[str, list[PublishedQuestion]]], weak_topics: tuple[str, ...]
) -> Iterator[list[PublishedQuestion]]:
    """A dimension's questions in order of preference, built lazily (most quizzes need only
    the first step or two): audience tiers score 2/1/0 and a weak topic adds 1.5, so the
    order is 2+weak, 1+weak, 2, 0+weak, 1, 0."""
    weak = set(weak_topics)
    for tier, in_weak in ((2, True), (1, True), (2, False), (0, True), (1, False), (0, False)):
        by_topic = tiers[tier]
        if in_weak:
            yield [q for t in weak if t in by_topic for q in by_topic[t]]
        elif weak:
            yield [q for t, qs in by_topic.items() if t not in weak for q in qs]
        else:
            yield [q for qs in by_topic.values() for q in qs]


def _option_order(q: PublishedQuestion, rules: GroupRules, rng: random.Random) -> tuple[str, ...]:
    keys = [key for key, _ in q.options]
    if q.type == "true_false":
        return tuple(keys)  # 对 before 错, as everyone expects
    if q.type == "single" and len(keys) > rules.max_options:
        wrong = [k for k in keys if k not in q.answer]
        keys = list(q.answer) + rng.sample(wrong, rules.max_options - len(q.answer))
    # One draw from the precomputed permutations instead of a shuffle in Python, which cost
    # most of a quiz start's assembly time.
    return tuple(keys[i] for i in rng.choice(_PERMUTATIONS[len(keys)]))


_PERMUTATIONS = [list(itertools.permutations(range(n))) for n in range(7)]  # up to 6 options


def expected_facility(question: PublishedQuestion, facility: dict[str, float]) -> float:
    """Observed share correct (enough attempts) or the editors' rating's prior."""
    observed = facility.get(f"{question.id}:{question.version}")
    return observed if observed is not None else PRIOR_FACILITY.get(question.difficulty, 0.6)


def assemble_assessment(
    bank: Iterable[PublishedQuestion],
    *,
    rng: random.Random,
    facility: dict[str, float],
    held: frozenset[str] = frozenset(),
) -> list[ServedQuestion] | None:
    """A standard form by the blueprint, or None if a dimension lacks items.

    Forms are made comparable by stratified sampling: each dimension's items are ranked by
    expected facility and cut into as many strata as items are needed, one item drawn from
    each, so every form spans the same range of difficulty. Options are shuffled but never
    dropped (the elderly rule would make a form easier, and forms must be comparable). Items
    in `held` ("id:version", e.g. flagged for DIF and not yet reviewed) are never drawn."""
    by_dimension: dict[str, list[PublishedQuestion]] = {d: [] for d in ASSESSMENT_BLUEPRINT}
    for question in bank:
        if question.dimension in by_dimension and f"{question.id}:{question.version}" not in held:
            by_dimension[question.dimension].append(question)
    form: list[PublishedQuestion] = []
    for dimension, needed in ASSESSMENT_BLUEPRINT.items():
        pool = sorted(by_dimension[dimension], key=lambda q: (expected_facility(q, facility), q.id))
        if len(pool) < needed:
            return None
        form.extend(_one_per_stratum(pool, needed, rng))
    rng.shuffle(form)
    return [ServedQuestion(q, _option_order(q, DEFAULT_GROUP_RULES, rng)) for q in form]


def serve_for_measure(question: PublishedQuestion, rng: random.Random) -> ServedQuestion:
    """One question placed as measures place them (assessment, adaptive practice): options
    shuffled, none dropped, since calibrated parameters hold for the full set of options."""
    return ServedQuestion(question, _option_order(question, DEFAULT_GROUP_RULES, rng))


def _one_per_stratum(
    ranked: list[PublishedQuestion], strata: int, rng: random.Random
) -> list[PublishedQuestion]:
    bounds = [round(i * len(ranked) / strata) for i in range(strata + 1)]
    return [rng.choice(ranked[bounds[i] : bounds[i + 1]]) for i in range(strata)]
