"""The calibration job's reading of stored attempts: first answers only, and a bounded,
deterministic sample of residents when there are too many to hold."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from scoring.irt.pipeline import FirstResponses

START = datetime(2026, 1, 1, tzinfo=UTC)


def attempts(seed: int, count: int, persons: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "_id": f"a{n}",
            "user_id": f"u{rng.randrange(persons)}",
            "submitted_at": START + timedelta(seconds=rng.randrange(10**6)),
            "items": [
                {
                    "question_id": f"q{rng.randrange(50)}",
                    "version": 1,
                    "mark": float(rng.random() < 0.5),
                }
                for _ in range(5)
            ],
            "profile": {"group": "farmer"},
        }
        for n in range(count)
    ]


def read(docs: list[dict[str, Any]], max_persons: int) -> FirstResponses:
    responses = FirstResponses(max_persons=max_persons)
    for doc in docs:
        responses.add(doc)
    return responses


def test_each_persons_first_answer_to_each_item_is_kept() -> None:
    early = {"question_id": "q1", "version": 2, "mark": 1.0}
    late = {"question_id": "q1", "version": 2, "mark": 0.0}
    responses = read(
        [
            {
                "_id": "b",
                "user_id": "u",
                "submitted_at": START + timedelta(days=1),
                "items": [late],
            },
            {"_id": "a", "user_id": "u", "submitted_at": START, "items": [early]},
            {"_id": "c", "user_id": None, "submitted_at": START, "items": [late]},
        ],
        max_persons=10,
    )
    kept = sorted((item, right) for _, item, right, _ in responses.answers())
    # The erased resident's attempt (no user id) counts as a person of its own.
    assert kept == [("q1:2", False), ("q1:2", True)]
    assert responses.sample_share == 1.0


def test_too_many_residents_are_sampled_the_same_way_whatever_the_order() -> None:
    docs = attempts(seed=1, count=6_000, persons=3_000)
    forward, backward = read(docs, 500), read(list(reversed(docs)), 500)
    people = {p for p, _, _, _ in forward.answers()}
    assert len(people) == 500 and 0 < forward.sample_share < 1
    assert sorted((forward_key(forward, a)) for a in forward.answers()) == sorted(
        forward_key(backward, a) for a in backward.answers()
    )
    # A sampled resident keeps every first answer, as if nobody had been dropped.
    everyone = read(docs, 10_000)
    sampled = {forward_key(forward, a) for a in forward.answers()}
    full = {forward_key(everyone, a) for a in everyone.answers()}
    assert sampled <= full


def forward_key(
    responses: FirstResponses, answer: tuple[int, str, bool, int]
) -> tuple[str, str, bool]:
    """An answer keyed by the person's id rather than this reader's index for them."""
    names = {index: person for person, index in responses._persons.items()}
    person, item, right, _ = answer
    return names[person], item, right


def test_a_later_version_is_not_a_first_sight_and_too_fast_attempts_are_not_read() -> None:
    first = {"question_id": "q", "version": 1, "mark": 0.0, "order": ["A", "B", "C", "D"]}
    edited = {"question_id": "q", "version": 2, "mark": 1.0, "order": ["B", "A", "D", "C"]}
    responses = read(
        [
            {"_id": "a", "user_id": "u", "submitted_at": START, "items": [first]},
            {"_id": "b", "user_id": "u", "submitted_at": START + timedelta(1), "items": [edited]},
            {
                "_id": "c",
                "user_id": "v",
                "submitted_at": START,
                "items": [edited],
                "review": {"too_fast": True},
            },
        ],
        max_persons=10,
    )
    assert [(item, right, shown) for _, item, right, shown in responses.answers()] == [
        ("q:1", False, 4)
    ]
    assert responses.skipped_too_fast == 1
