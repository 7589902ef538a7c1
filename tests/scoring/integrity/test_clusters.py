"""shared_device, shared_network and channel_burst: flagged cases and near misses."""

from __future__ import annotations

from datetime import timedelta

from scoring.integrity.clusters import channel_burst, shared_device, shared_network
from scoring.integrity.records import STRONG, merge_flags
from tests.scoring.integrity.make import T0, attempt


def phone(
    names: list[str], *, gap: timedelta, helper: str | None = None, user: str | None = ""
) -> list:
    return [
        attempt(name, device="phone-1", submitted=T0 + k * gap, helper=helper, user=user)
        for k, name in enumerate(names)
    ]


def test_four_residents_on_one_phone_in_a_day_is_shared_device() -> None:
    attempts = phone(["a", "b", "c", "d"], gap=timedelta(hours=2))
    flags = shared_device(attempts)
    assert sorted(f.attempt_id for f in flags) == sorted(a.attempt_id for a in attempts)
    detail = flags[0].reasons[0].detail
    assert detail["residents_in_window"] == 4 and detail["device_hash"] == "phone-1"
    assert flags[0].strong


def test_a_family_of_two_or_three_on_one_phone_is_not_shared_device() -> None:
    assert shared_device(phone(["mother", "father"], gap=timedelta(minutes=30))) == []
    assert shared_device(phone(["grandma", "mother", "son"], gap=timedelta(minutes=30))) == []


def test_four_residents_spread_over_days_are_not_shared_device() -> None:
    assert shared_device(phone(["a", "b", "c", "d"], gap=timedelta(hours=13))) == []


def test_one_resident_many_times_is_not_shared_device_but_erased_accounts_count_apart() -> None:
    same = [
        attempt(f"n{k}", user="u1", device="phone-1", submitted=T0 + timedelta(hours=k))
        for k in range(5)
    ]
    assert shared_device(same) == []
    erased = phone(["a", "b", "c", "d"], gap=timedelta(hours=1), user=None)
    assert len(shared_device(erased)) == 4


def test_helper_sessions_are_exempt_from_shared_device() -> None:
    assisted = phone([f"elder{k}" for k in range(12)], gap=timedelta(minutes=15), helper="vol-07")
    assert shared_device(assisted) == []
    # ... but they do not hide proxy answering on the same phone.
    proxies = phone([f"p{k}" for k in range(4)], gap=timedelta(minutes=5))
    flagged = {f.attempt_id for f in shared_device([*assisted, *proxies])}
    assert flagged == {a.attempt_id for a in proxies}


def test_history_attempts_on_the_phone_are_flagged_with_the_new_one() -> None:
    earlier = phone(["a", "b", "c"], gap=timedelta(hours=1))
    new = attempt("d", device="phone-1", submitted=T0 + timedelta(hours=4))
    flags = shared_device([new], history=earlier)
    assert len(flags) == 4
    assert shared_device([attempt("e", device="other")], history=earlier) == []


def village(days: int = 14, per_day: int = 4) -> list:
    """A village Wi-Fi's ordinary traffic: a few residents a day, in the evening."""
    return [
        attempt(
            f"v{d}-{k}", ip="village", submitted=T0 + timedelta(days=d, hours=9, minutes=20 * k)
        )
        for d in range(days)
        for k in range(per_day)
    ]


def test_a_crowd_behind_a_village_ip_in_an_hour_is_a_look_flag() -> None:
    crowd = [
        attempt(f"c{k}", ip="village", submitted=T0 + timedelta(days=15, minutes=2 * k))
        for k in range(25)
    ]
    flags = shared_network(crowd, history=village())
    assert len(flags) == 25
    reason = flags[0].reasons[0]
    assert reason.strength < STRONG and reason.detail["residents_in_window"] == 25
    assert reason.detail["expected_in_window"] < 1.0  # type: ignore[operator]


def test_an_ordinary_busy_evening_on_village_wifi_is_not_flagged() -> None:
    evening = [
        attempt(f"e{k}", ip="village", submitted=T0 + timedelta(days=15, minutes=6 * k))
        for k in range(8)
    ]
    assert shared_network(evening, history=village()) == []


def steady_channel(days: int = 14) -> list:
    return [
        attempt(f"q{d}-{k}", channel="village-qr", submitted=T0 + timedelta(days=d, hours=2 * k))
        for d in range(days)
        for k in range(6)
    ]


def test_a_campaign_push_is_a_channel_burst_look_flag() -> None:
    push = [
        attempt(f"p{k}", channel="village-qr", submitted=T0 + timedelta(days=15, minutes=k))
        for k in range(40)
    ]
    flags = channel_burst(push, history=steady_channel())
    assert len(flags) == 40
    reason = flags[0].reasons[0]
    assert reason.code == "channel_burst" and reason.strength < STRONG
    assert reason.detail["submissions_in_window"] == 40
    # Both look reasons together still only say "look".
    both = merge_flags([*flags, *shared_network(push, history=steady_channel())])
    assert all(not f.strong for f in both)


def test_a_steady_channel_is_not_a_burst() -> None:
    later = [
        attempt(f"l{k}", channel="village-qr", submitted=T0 + timedelta(days=15, hours=2 * k))
        for k in range(6)
    ]
    assert channel_burst(later, history=steady_channel()) == []
