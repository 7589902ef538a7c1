"""AttemptRecord.from_doc, the flag score and the Poisson-binomial helper."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest

from scoring.integrity.records import (
    STRONG,
    AttemptRecord,
    Reason,
    combined_score,
    make_flag,
    merge_flags,
    poisson_binomial,
    upper_tails,
)


def test_from_doc_reads_the_stored_shape_and_tolerates_missing_paradata() -> None:
    doc = {
        "_id": "u1:n1",
        "user_id": "u1",
        "mode": "assessment",
        "channel": "village-qr",
        "issued_at": datetime(2026, 12, 6, 15, 50),  # naive, as pymongo returns: UTC
        "submitted_at": datetime(2026, 12, 6, 16, 0),  # Sunday 16:00 UTC = Monday 00:00 China
        "profile": {"township_code": "450223101"},
        "items": [
            {
                "question_id": "q1",
                "version": 2,
                "order": ["C", "A", "D", "B"],
                "chosen": ["D"],
                "mark": 0.0,
            },
            {"question_id": "q2", "version": 1, "order": ["A", "B"], "chosen": [], "mark": 0.0},
        ],
        "review": {"too_fast": False, "seconds": 600.0},
    }
    record = AttemptRecord.from_doc(doc)
    assert record.township_code == "450223101"
    assert record.week == "2026-W50"  # the China-time ISO week, not UTC's W49
    assert record.submitted_at.tzinfo is UTC
    assert record.elapsed == 600.0  # from the review block when there is no paradata
    assert record.device_hash is None and record.durations_ms is None
    assert record.items[0].key == ("q1", 2)
    assert record.items[0].shown_position == 2
    assert record.items[1].shown_position is None
    assert record.score == 0.0 and not record.all_right


def test_from_doc_prefers_paradata_and_counts_erased_residents_by_attempt() -> None:
    doc = {
        "_id": "x:n2",
        "user_id": None,
        "mode": "practice",
        "submitted_at": datetime(2026, 12, 1, tzinfo=UTC),
        "issued_at": datetime(2026, 11, 30, 23, 50, tzinfo=UTC),
        "items": [{"question_id": "q1", "order": ["A", "B"], "chosen": ["A"], "mark": 1.0}],
        "paradata": {"seconds": 12.5, "durations_ms": [1000, 2000], "helper_id": "vol-1"},
    }
    record = AttemptRecord.from_doc(doc)
    assert record.elapsed == 12.5
    assert record.resident == "erased:x:n2"
    assert record.durations_ms is None  # two durations for one item: not this attempt's
    assert record.helper_id == "vol-1"
    assert record.township_code is None and record.channel is None
    assert record.all_right and record.score == 100.0


def test_the_score_is_a_noisy_or_and_look_reasons_stay_below_strong() -> None:
    assert combined_score([0.6, 0.5]) == pytest.approx(0.8)
    look = make_flag("a", [Reason("channel_burst", {}, 0.15), Reason("shared_network", {}, 0.25)])
    assert look.score < STRONG and not look.strong
    with pytest.raises(ValueError, match="unknown reason"):
        make_flag("a", [Reason("suspicious", {}, 0.9)])


def test_merge_keeps_one_reason_per_code_the_strongest() -> None:
    flags = [
        make_flag("a", [Reason("speeding", {"n": 1}, 0.6)]),
        make_flag("a", [Reason("speeding", {"n": 2}, 0.8), Reason("copying", {}, 0.7)]),
        make_flag("b", [Reason("channel_burst", {}, 0.15)]),
    ]
    merged = merge_flags(flags)
    assert [f.attempt_id for f in merged] == ["a", "b"]
    assert merged[0].codes == ("speeding", "copying")
    assert merged[0].reasons[0].detail == {"n": 2}
    assert merged[0].score == pytest.approx(1 - 0.2 * 0.3)


def test_poisson_binomial_matches_enumeration() -> None:
    p = np.array([0.1, 0.5, 0.3, 0.9, 0.02])
    exact = np.zeros(6)
    for outcome in itertools.product((0, 1), repeat=5):
        exact[sum(outcome)] += np.prod(np.where(outcome, p, 1 - p))
    assert poisson_binomial(p)[0] == pytest.approx(exact)
    truncated = poisson_binomial(p, upto=2)[0]
    assert truncated[:2] == pytest.approx(exact[:2])
    assert truncated[2] == pytest.approx(exact[2:].sum())
    assert upper_tails(poisson_binomial(p))[0, 3] == pytest.approx(exact[3:].sum())
