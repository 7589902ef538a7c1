"""speeding and impossible_perfect: flagged cases and near misses."""

from __future__ import annotations

import numpy as np

from scoring.integrity.speed import (
    MIN_NORM_ATTEMPTS,
    impossible_perfect,
    speed_norms,
    speeding,
)
from tests.scoring.integrity.make import attempt, item

SEED = 7


def honest_times(n: int = 80) -> list[float]:
    """Totals of 30-item forms: lognormal around 360 s (SD 0.3 of log-seconds)."""
    return list(np.random.default_rng(SEED).lognormal(np.log(360.0), 0.3, n))


def mixed_items(wrong: int = 5) -> list[dict[str, object]]:
    return [item(i, ("B",), right=False) if i < wrong else item(i) for i in range(30)]


def crowd() -> list:
    return [attempt(f"h{k}", seconds=s, items=mixed_items()) for k, s in enumerate(honest_times())]


def test_the_norm_is_robust_to_the_speeders_it_judges() -> None:
    speeders = [attempt(f"s{k}", seconds=45.0) for k in range(20)]
    norm = speed_norms([*crowd(), *speeders])[("assessment", 30, False)]
    assert abs(np.exp(norm.median_log) - 360.0) < 60.0
    assert 0.2 < norm.scale_log < 0.45


def test_far_below_the_norm_is_speeding_with_its_evidence() -> None:
    fast = attempt("fast", seconds=90.0, items=mixed_items())  # 3 s per item, above the floor
    flags = speeding([fast], history=crowd())
    assert [f.attempt_id for f in flags] == [fast.attempt_id]
    detail = flags[0].reasons[0].detail
    assert detail["robust_z"] < -3.5  # type: ignore[operator]
    assert detail["seconds"] == 90.0 and detail["items"] == 30
    assert 300 < detail["norm_median_seconds"] < 420  # type: ignore[operator]
    assert flags[0].strong


def test_a_brisk_honest_reader_is_not_speeding() -> None:
    brisk = attempt("brisk", seconds=180.0, items=mixed_items())  # half the median: z ≈ -2.3
    assert speeding([brisk], history=crowd()) == []


def test_the_floor_applies_without_a_norm() -> None:
    few = [attempt(f"h{k}", seconds=360.0) for k in range(MIN_NORM_ATTEMPTS - 2)]  # 29 with it
    flags = speeding([attempt("floor", seconds=50.0)], history=few)
    assert len(flags) == 1
    assert flags[0].reasons[0].detail["norm_median_seconds"] is None
    assert flags[0].reasons[0].strength >= 0.8
    assert speeding([attempt("slow-ish", seconds=70.0)], history=few) == []


def test_half_the_items_under_two_seconds_is_speeding_even_with_a_normal_total() -> None:
    durations = [1200.0] * 16 + [20000.0] * 14  # 16 rushed items, then the phone left idle
    rushed = attempt("rushed", seconds=300.0, durations_ms=durations, items=mixed_items())
    flags = speeding([rushed], history=crowd())
    assert flags and flags[0].reasons[0].detail["items_under_floor"] == 16
    steady = attempt("steady", seconds=300.0, durations_ms=[1500.0] * 4 + [10000.0] * 26)
    assert speeding([steady], history=crowd()) == []


def test_a_perfect_score_faster_than_honest_residents_is_impossible_perfect() -> None:
    key = attempt("key", seconds=160.0)  # every item right, under the 1st percentile (~180 s)
    flags = impossible_perfect([key], history=crowd())
    assert len(flags) == 1
    detail = flags[0].reasons[0].detail
    assert detail["seconds"] < detail["honest_p01_seconds"]  # type: ignore[operator]
    assert speeding([key], history=crowd()) == []  # not fast enough to be speeding alone


def test_perfect_at_honest_speed_or_fast_but_imperfect_is_not_impossible_perfect() -> None:
    able = attempt("able", seconds=300.0)
    fast_with_mistakes = attempt("mistakes", seconds=140.0, items=mixed_items(wrong=1))
    assert impossible_perfect([able, fast_with_mistakes], history=crowd()) == []
    short = attempt("daily", seconds=5.0, n_items=3)  # a 3-item quiz: no feat
    assert impossible_perfect([short], history=crowd()) == []


def test_a_perfect_score_is_judged_against_the_able_where_there_are_enough() -> None:
    # Able residents read faster: 40 of them around 200 s; the others around 360 s.
    times = np.random.default_rng(SEED).lognormal(np.log(200.0), 0.3, 40)
    fast_able = [attempt(f"a{k}", seconds=float(t)) for k, t in enumerate(times)]
    perfect = attempt("perfect", seconds=165.0)
    assert impossible_perfect([perfect], history=crowd()) != []  # against everyone: too fast
    assert impossible_perfect([perfect], history=[*crowd(), *fast_able]) == []  # not for the able
    norms = speed_norms([*crowd(), *fast_able])
    assert norms[("assessment", 30, True)].attempts == 40  # crowd() scores 83 %: not able


def test_a_paper_form_has_no_time_to_judge() -> None:
    """Typed in from paper: no measured time, so neither speeding nor impossible perfection,
    and it does not enter the norms."""
    paper = [attempt(f"p{i}", seconds=-5.0, channel="paper") for i in range(40)]
    assert speeding(paper) == [] and impossible_perfect(paper) == []
    assert speed_norms(paper) == {}
