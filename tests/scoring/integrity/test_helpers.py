"""The per-helper checks: helper_speed (a helper's sessions faster than reading aloud allows,
counting the gap since his previous submission) and helper_copying (one helper's residents
repeating the same wrong answers across townships and weeks); and the copying model's item fit,
which must stay sane on large pools."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from functools import cache

import numpy as np

from scoring.integrity.copying import copying, fit_copying_model
from scoring.integrity.detectors import screen
from scoring.integrity.helpers import helper_copying, helper_speed
from scoring.integrity.items import fit_items
from scoring.integrity.records import STRONG, AttemptRecord, flag_score
from scoring.integrity.speed import speed_norms
from scripts.eval_integrity import QUICK
from tests.scoring.integrity.make import T0, attempt, item
from tests.scoring.integrity.simulate import CountySpec, simulate_county

# Self-answered residents' 30-item forms take 4-8 minutes: the norm (median 360 s).
REFERENCE = [
    attempt(f"self{k}", seconds=float(s), submitted=T0 - timedelta(hours=k))
    for k, s in enumerate(np.random.default_rng(5).lognormal(np.log(360.0), 0.3, 60))
]
NORMS = speed_norms(REFERENCE)


def sessions(
    helper: str,
    count: int,
    *,
    pace: float,
    own_seconds: float | None = None,
    device: str | None = "tablet-1",
    channel: str | None = "assisted",
) -> list[AttemptRecord]:
    """`count` sessions of one helper submitted `pace` seconds apart; each session's own time is
    the pace (read one after another) unless `own_seconds` says otherwise."""
    return [
        attempt(
            f"{helper}-r{k}",
            submitted=T0 + timedelta(seconds=pace * k),
            seconds=own_seconds or pace,
            device=device,
            helper=helper,
            channel=channel,
        )
        for k in range(count)
    ]


def flagged(flags: list, code: str) -> set[str]:
    return {f.attempt_id for f in flags if code in f.codes}


def test_sessions_issued_early_and_submitted_a_minute_apart_are_flagged_after_the_first() -> None:
    made_up = sessions("vol-13", 8, pace=70.0, own_seconds=3600.0)
    flags = helper_speed(made_up, norms=NORMS)
    assert flagged(flags, "helper_speed") == {a.attempt_id for a in made_up[1:]}
    detail = flags[0].reasons[0].detail
    assert detail["helper_id"] == "vol-13" and detail["own_seconds"] == 3600.0
    assert detail["seconds"] == detail["seconds_since_previous"] == 70.0
    assert detail["helper_sessions"] == 8 and detail["fast_sessions"] == 7
    assert float(detail["p_value"]) <= float(detail["threshold"])  # type: ignore[arg-type]
    assert all(f.score >= STRONG for f in flags)


def test_an_honest_helper_reading_aloud_one_resident_after_another_is_not_flagged() -> None:
    honest = sessions("vol-07", 15, pace=600.0)
    assert helper_speed(honest, norms=NORMS) == []


def test_two_tablets_side_by_side_are_two_lanes_but_one_tablet_at_that_pace_is_not() -> None:
    left = sessions("vol-08", 8, pace=420.0, device="tablet-1")
    right = [
        dataclasses.replace(
            a,
            attempt_id=f"{a.attempt_id}-b",
            user_id=f"{a.user_id}-b",
            device_hash="tablet-2",
            submitted_at=a.submitted_at + timedelta(seconds=30),
        )
        for a in left
    ]
    assert helper_speed([*left, *right], norms=NORMS) == []
    one_tablet = [dataclasses.replace(a, device_hash="tablet-1") for a in right]
    assert flagged(helper_speed([*left, *one_tablet], norms=NORMS), "helper_speed")


def test_a_minority_of_fast_sessions_is_not_a_finding_however_many_sessions() -> None:
    """12 of 30 sessions under the 1st percentile is far beyond Binomial(30, 0.01), but a helper
    whose sessions are mostly of a normal length is reading aloud: the share floor holds."""
    steady = sessions("vol-09", 18, pace=600.0)
    quick = [
        dataclasses.replace(
            a,
            attempt_id=f"{a.attempt_id}-q",
            user_id=f"{a.user_id}-q",
            submitted_at=a.submitted_at + timedelta(days=1),
        )
        for a in sessions("vol-09", 12, pace=100.0)
    ]
    assert helper_speed([*steady, *quick], norms=NORMS) == []
    assert flagged(helper_speed([*steady[:10], *quick], norms=NORMS), "helper_speed")


def test_without_a_device_id_or_with_client_times_the_gap_proves_nothing() -> None:
    """Two tablets without the header, or submissions held up by the network and delivered
    together: the gaps are short but the sessions were not."""
    no_device = sessions("vol-11", 8, pace=60.0, own_seconds=420.0, device=None)
    assert helper_speed(no_device, norms=NORMS) == []
    delivered_late = [
        dataclasses.replace(a, durations_ms=tuple([14_000.0] * 30))  # 7 minutes on screen
        for a in sessions("vol-12", 8, pace=20.0, own_seconds=2400.0)
    ]
    assert helper_speed(delivered_late, norms=NORMS) == []
    made_up = [dataclasses.replace(a, durations_ms=tuple([2_500.0] * 30)) for a in delivered_late]
    assert len(flagged(helper_speed(made_up, norms=NORMS), "helper_speed")) == 7


def test_the_self_answered_norm_is_used_when_the_pool_has_one() -> None:
    """Helpers' own slow sessions do not move the bound: it is the residents' reading alone."""
    slow_helpers = [
        dataclasses.replace(a, seconds=3000.0)
        for a in sessions("vol-20", 60, pace=3000.0, device="slow-tablet")
    ]
    made_up = sessions("vol-13", 8, pace=120.0, own_seconds=3600.0)
    everyone = speed_norms([*REFERENCE, *slow_helpers])  # a norm the slow sessions inflate
    flags = helper_speed(made_up, history=[*REFERENCE, *slow_helpers], norms=everyone)
    key = ("assessment", 30, False)
    alone = round(NORMS[key].quantile(0.01), 1)
    assert round(everyone[key].quantile(0.01), 1) != alone  # the slow sessions move it
    bound = flags[0].reasons[0].detail["fast_below_seconds"] if flags else None
    assert bound == alone


def test_the_minute_pass_leaves_the_helper_checks_to_the_night() -> None:
    made_up = sessions("vol-13", 8, pace=70.0, own_seconds=3600.0)
    night = screen(made_up, history=REFERENCE, norms=NORMS)
    assert all("helper_speed" in f.codes for f in night if f.attempt_id != made_up[0].attempt_id)
    minute = screen(made_up, history=REFERENCE, norms=NORMS, per_helper=False)
    assert not any("helper_speed" in f.codes for f in minute)


def test_both_copying_tests_on_one_attempt_count_once() -> None:
    assert flag_score({"copying": 0.7, "helper_copying": 0.6}) == 0.7
    assert flag_score({"copying": 0.6, "helper_copying": 0.8, "speeding": 0.5}) == 0.9
    assert flag_score({"copying": 0.6, "speeding": 0.5}) == 0.8


def test_paper_forms_are_untimed_and_never_helper_speed() -> None:
    paper = sessions("vol-10", 20, pace=1.0, channel="paper")
    assert helper_speed(paper, norms=NORMS) == []


def test_earlier_fast_sessions_are_flagged_with_the_new_one_and_alone_they_are_not() -> None:
    made_up = sessions("vol-13", 8, pace=70.0, own_seconds=3600.0)
    flags = helper_speed(made_up[-1:], history=made_up[:-1], norms=NORMS)
    assert flagged(flags, "helper_speed") == {a.attempt_id for a in made_up[1:]}
    assert flags[0].reasons[0].detail["helper_sessions"] == 8
    other = sessions("vol-14", 8, pace=70.0, own_seconds=3600.0)
    assert helper_speed(other[:1], history=made_up, norms=NORMS) == []  # vol-13 not tested


def test_self_answered_attempts_are_never_helper_checked() -> None:
    fast = sessions("x", 10, pace=30.0)
    residents = [dataclasses.replace(a, helper_id=None) for a in fast]
    assert helper_speed(residents, norms=NORMS) == []
    assert helper_copying(residents) == []


@cache
def county_with_helpers() -> tuple[list[AttemptRecord], dict[str, set[str]]]:
    """A quick county with 30 more honest helpers: its attempts, and the ids of the made-up
    sessions and of the honest helpers' attempts."""
    county = simulate_county(dataclasses.replace(QUICK, honest_helpers=30), 7)
    records = [AttemptRecord.from_doc(doc) for doc in county.docs]
    return records, {
        "made_up": county.ids("helper_fabricated"),
        "honest_helpers": county.ids("assisted", "paper"),
    }


def test_a_helper_repeating_his_answers_across_townships_is_helper_copying_only() -> None:
    records, ids = county_with_helpers()
    made_up, honest_helpers = ids["made_up"], ids["honest_helpers"]
    model = fit_copying_model(records, seed=7)
    found = flagged(helper_copying(records, model=model, seed=7), "helper_copying")
    assert len(found & made_up) >= 0.6 * len(made_up)
    assert len(found & honest_helpers) <= 0.01 * len(honest_helpers)
    # One made-up session per township-week: the township-week test cannot see them.
    assert not flagged(copying(records, model=model, seed=7), "copying") & made_up


def test_screen_runs_the_helper_checks_and_spares_honest_helpers() -> None:
    records, ids = county_with_helpers()
    made_up, honest_helpers = ids["made_up"], ids["honest_helpers"]
    strong = {f.attempt_id for f in screen(records, seed=7) if f.strong}
    assert len(honest_helpers) > 300
    assert len(strong & made_up) >= 0.8 * len(made_up)
    assert len(strong & honest_helpers) <= 0.01 * len(honest_helpers)


def test_the_copying_models_slopes_stay_sane_on_a_large_pool() -> None:
    """The joint MAP fit it replaced reached a = 139 on this pool (seed 2, 120 more helpers)
    and called honest low scorers copiers; marginal ML keeps the slopes in a plausible range."""
    spec = dataclasses.replace(CountySpec(), honest_helpers=120)
    records = [AttemptRecord.from_doc(d) for d in simulate_county(spec, 2).docs]
    model = fit_items(records)
    assert float(np.max(model.a)) < 4.0 and float(np.min(model.a)) > 0.25
    thetas = model.thetas(records)
    assert float(np.std(thetas)) > 0.6  # abilities spread, not shrunk by exploding slopes
    county = simulate_county(spec, 2)
    honest = county.ids("honest", "campaign", "assisted", "paper")
    found = flagged(copying(records, seed=2), "copying")
    assert len(found & honest) <= 0.002 * len(honest)  # the old fit: 92 of them


def test_sparse_items_take_their_difficulty_from_their_share_and_repeats_do_not_break() -> None:
    """An item answered by fewer than 30 is not calibrated: a = 1, b from its share right, and
    it does not move abilities; a malformed attempt holding a question twice is read once."""
    hard = [
        attempt(f"h{k}", items=[item(i) for i in range(29)] + [item(99, ("B",), right=k < 2)])
        for k in range(20)
    ]
    repeated = attempt("twice", items=[item(0), item(0, ("B",), right=False), item(1)])
    model = fit_items([*hard, repeated])
    column = model.index[("q0099", 1)]
    assert not model.calibrated[column] and model.a[column] == 1.0
    assert model.b[column] > 1.5  # 2 of 20 right: hard
    assert np.allclose(model.thetas(hard[:2]), model.thetas(hard[2:4]))  # q0099 moves nobody
    assert model.thetas([repeated]).shape == (1,)
