"""Pure logic: quiz tickets, assembly rules and marking."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from question_bank.assembly import assemble
from question_bank.cache import PublishedQuestion
from scoring.quizzes import tickets
from scoring.quizzes.service import mark, tickets_shown_keys

KEY = b"k" * 32
OID = "0123456789abcdef01234567"


@given(
    st.lists(
        st.permutations("ABCDEF").map(lambda p: tuple(p[: random.Random(len(p)).randint(2, 6)])),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(tickets.MODES),
    st.text(alphabet="abcxyz-_0123", max_size=20),
)
def test_ticket_round_trip(orders: list[tuple[str, ...]], mode: str, channel: str) -> None:
    refs = tuple(tickets.QuizRef(OID, i + 1, order) for i, order in enumerate(orders))
    ticket = tickets.Ticket(
        mode, OID, 1_700_000_000, 1_700_000_600, "a1b2c3d4e5f6", refs, channel, "健康"
    )
    assert tickets.decode(tickets.encode(ticket, KEY), KEY) == ticket


def test_tampered_or_foreign_tickets_are_refused() -> None:
    ticket = tickets.Ticket(
        "daily", OID, 1, 2, "a1b2c3d4e5f6", (tickets.QuizRef(OID, 1, ("B", "A")),)
    )
    encoded = tickets.encode(ticket, KEY)
    with pytest.raises(tickets.InvalidTicket):
        tickets.decode(encoded, b"another-key" * 3)
    flipped = encoded[:10] + ("A" if encoded[10] != "A" else "B") + encoded[11:]
    with pytest.raises(tickets.InvalidTicket):
        tickets.decode(flipped, KEY)
    with pytest.raises(tickets.InvalidTicket):
        tickets.decode("!!!", KEY)


def question(
    qid: str,
    qtype: str = "single",
    answer: tuple[str, ...] = ("A",),
    dimension: str = "knowledge",
    audiences: tuple[str, ...] = ("general",),
    topic: str = "健康",
) -> PublishedQuestion:
    options = (
        (("A", "对"), ("B", "错"))
        if qtype == "true_false"
        else tuple((k, f"选项{k}") for k in "ABCD")
    )
    return PublishedQuestion(
        qid, 1, qtype, f"题{qid}", options, answer, "解析", dimension, topic, audiences, 3
    )


def test_marks_all_or_nothing_and_configurable_partial_credit() -> None:
    single = question("s")
    multiple = question("m", "multiple", ("A", "C", "D"))
    assert mark(single, {"A"}, "none") == 1.0 and mark(single, {"B"}, "none") == 0.0
    assert mark(multiple, {"A", "C", "D"}, "none") == 1.0
    assert mark(multiple, {"A", "C"}, "none") == 0.0
    assert mark(multiple, {"A", "C"}, "subset_half") == 0.5
    assert mark(multiple, {"A", "B"}, "subset_half") == 0.0, "a wrong option earns nothing"
    assert mark(multiple, set(), "subset_half") == 0.0


def test_shown_keys_follow_the_shuffle() -> None:
    assert tickets_shown_keys(("C", "A", "D", "B"), ("A", "D")) == ["B", "C"]


def test_assembly_avoids_recent_questions_while_others_remain_and_prefers_the_audience() -> None:
    bank = [
        question(f"q{i}", dimension=d, audiences=("farmer",) if (i // 4) % 2 == 0 else ("youth",))
        for i, d in enumerate(["knowledge", "method", "spirit", "application"] * 5)
    ]
    recent = frozenset(f"q{i}" for i in range(4, 16))
    served = assemble(
        bank, mode="daily", group="farmer", rng=random.Random(1), recently_answered=recent
    )
    ids = {s.question.id for s in served}
    assert len(served) == 5 and not ids & recent
    everything_recent = frozenset(q.id for q in bank)
    assert (
        len(
            assemble(
                bank,
                mode="daily",
                group="farmer",
                rng=random.Random(2),
                recently_answered=everything_recent,
            )
        )
        == 5
    )
    farmer_share = sum(
        "farmer" in s.question.audiences
        for s in assemble(bank, mode="daily", group="farmer", rng=random.Random(3))
    )
    assert farmer_share == 5


def test_elderly_rules_drop_options_but_keep_the_answer() -> None:
    bank = [
        question(f"q{i}", answer=("D",), dimension=d)
        for i, d in enumerate(["knowledge", "method", "spirit", "application"] * 3)
    ]
    bank.append(question("multi", "multiple", ("A", "B")))
    for seed in range(20):
        served = assemble(bank, mode="daily", group="elderly", rng=random.Random(seed))
        assert all(s.question.type != "multiple" for s in served)
        for s in served:
            assert len(s.order) == 3 and "D" in s.order


def test_assembly_moves_weak_topics_up_and_mixes_the_four_dimensions() -> None:
    dimensions = ["knowledge", "method", "spirit", "application"]
    bank = [
        question(f"q{i}", dimension=dimensions[i % 4], topic="农业" if i % 8 < 4 else "健康")
        for i in range(80)
    ]
    for seed in range(10):
        served = assemble(
            bank, mode="practice", group="farmer", rng=random.Random(seed), weak_topics=("农业",)
        )
        assert {s.question.topic for s in served} == {"农业"}
        counts = [sum(s.question.dimension == d for s in served) for d in dimensions]
        assert counts == [3, 3, 2, 2]
        assert all(len(s.order) == 4 and sorted(s.order) == list("ABCD") for s in served)


def test_assembly_reuses_its_arrangement_only_for_the_same_bank_generation() -> None:
    first = [question(f"a{i}", dimension=d) for i, d in enumerate(["knowledge", "method"] * 5)]
    second = [question(f"b{i}", dimension=d) for i, d in enumerate(["spirit", "method"] * 5)]
    rng = random.Random(4)
    served = assemble(first, mode="daily", group=None, rng=rng, generation=101)
    assert {s.question.id[0] for s in served} == {"a"}
    again = assemble(second, mode="daily", group=None, rng=rng, generation=101)
    assert {s.question.id[0] for s in again} == {"a"}, "same generation: same arrangement"
    changed = assemble(second, mode="daily", group=None, rng=rng, generation=102)
    assert {s.question.id[0] for s in changed} == {"b"}
