"""Attempts that cluster in time behind one device, one network or one campaign channel.

`shared_device`: one device hash behind at least `DEVICE_MIN_RESIDENTS` (4) distinct residents
within `DEVICE_WINDOW` (24 h). Rural households share phones: the 2020 census counts 2.62
persons per household, so two and even three residents of one household answering on the
evening the phone's owner comes home is ordinary, and is not flagged. Four or more distinct
residents on one phone in a day is beyond nearly all households and is what proxy answering
looks like (a helper going through a village list on one phone). Erased accounts count once per
attempt. Helper sessions (`paradata.helper_id`) are assisted answering by design, one tablet for
many elderly residents: they are neither counted nor flagged here (the other detectors still
screen them). Strength 0.6 at 4 residents, 0.05 more per further resident, at most 0.95.

`shared_network` and `channel_burst` compare a 1-hour sliding window's count with the rate the
same IP /24 or channel shows over the whole reference span (history and batch together), as a
Poisson upper tail, Bonferroni-corrected for the windows tested (one starting at each attempt).
A village's shared Wi-Fi or a carrier's NAT puts many honest residents behind one /24, and a
campaign push legitimately brings a crowd in an hour, so both also need a high absolute count
(`NETWORK_MIN_RESIDENTS` distinct residents, `CHANNEL_MIN_SUBMISSIONS` submissions) and carry
only "look" strengths (0.25 and 0.15: together 0.36, below `STRONG`). The rate is taken over
the reference span, not the channel's active hours, so that a new channel's first push is
measured against the quiet before it; honest evening peaks a few times the mean rate stay far
from the thresholds at the Bonferroni level."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from scipy import stats

from scoring.integrity.records import AttemptRecord, Flag, Reason, iso, make_flag

DEVICE_MIN_RESIDENTS: Final = 4
DEVICE_WINDOW: Final = timedelta(hours=24)
NETWORK_WINDOW: Final = timedelta(hours=1)
NETWORK_MIN_RESIDENTS: Final = 10
NETWORK_ALPHA: Final = 1e-3
NETWORK_STRENGTH: Final = 0.25
CHANNEL_WINDOW: Final = timedelta(hours=1)
CHANNEL_MIN_SUBMISSIONS: Final = 10
CHANNEL_ALPHA: Final = 1e-2
CHANNEL_STRENGTH: Final = 0.15
MIN_SPAN_HOURS: Final = 24.0 * 7  # a shorter reference span would call every busy evening a burst
MAX_LISTED: Final = 20


@dataclass(frozen=True)
class Window:
    """A run of one key's attempts within a window, with its count of distinct units."""

    key: str
    members: tuple[AttemptRecord, ...]
    count: int

    @property
    def ids(self) -> list[str]:
        return [a.attempt_id for a in self.members]


def _windows(
    attempts: Sequence[AttemptRecord],
    key: Callable[[AttemptRecord], str | None],
    unit: Callable[[AttemptRecord], str],
    width: timedelta,
    passes: Callable[[str, int, int], bool],
) -> list[Window]:
    """Every maximal window [t_i, t_i + width) (one starting at each attempt) of each key whose
    count of distinct units passes `passes(key, count, attempts of the key)`; two pointers over
    the key's attempts in time order, O(n) per key."""
    by_key: dict[str, list[AttemptRecord]] = {}
    for attempt in attempts:
        if (k := key(attempt)) is not None:
            by_key.setdefault(k, []).append(attempt)
    found = []
    for k, runs in by_key.items():
        runs.sort(key=lambda a: (a.submitted_at, a.attempt_id))
        units: Counter[str] = Counter()
        end = 0
        last_end = -1
        for start, first in enumerate(runs):
            while end < len(runs) and runs[end].submitted_at < first.submitted_at + width:
                units[unit(runs[end])] += 1
                end += 1
            if end > last_end and passes(k, len(units), len(runs)):
                found.append(Window(k, tuple(runs[start:end]), len(units)))
                last_end = end  # a window inside an earlier one adds nothing
            units[unit(first)] -= 1
            if units[unit(first)] == 0:
                del units[unit(first)]
    return found


def _flags(
    windows: Sequence[Window],
    targets: set[str],
    reason: Callable[[Window], Reason],
) -> list[Flag]:
    """Every member of a window that holds at least one target attempt is flagged; an attempt
    in several windows keeps the strongest."""
    best: dict[str, Reason] = {}
    for window in windows:
        if not targets.intersection(window.ids):
            continue
        made = reason(window)
        for member in window.ids:
            held = best.get(member)
            if held is None or made.strength > held.strength:
                best[member] = made
    return [make_flag(a, [r]) for a, r in best.items()]


def shared_device(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    min_residents: int = DEVICE_MIN_RESIDENTS,
    window: timedelta = DEVICE_WINDOW,
) -> list[Flag]:
    """`shared_device` flags: the device's windows with ≥ min_residents residents; history
    attempts in such a window with a batch attempt are flagged too (the earlier residents were
    clean when they alone had used the phone)."""
    pool = [a for a in (*attempts, *history) if a.helper_id is None]
    windows = _windows(
        pool,
        lambda a: a.device_hash,
        lambda a: a.resident,
        window,
        lambda _k, count, _n: count >= min_residents,
    )

    def reason(w: Window) -> Reason:
        detail: dict[str, object] = {
            "device_hash": w.key,
            "residents_in_window": w.count,
            "min_residents": min_residents,
            "window_hours": window.total_seconds() / 3600,
            "attempts_in_window": len(w.members),
            "first_submitted": iso(w.members[0].submitted_at),
            "last_submitted": iso(w.members[-1].submitted_at),
            "attempts": w.ids[:MAX_LISTED],
        }
        strength = min(0.95, 0.6 + 0.05 * (w.count - min_residents))
        return Reason("shared_device", detail, strength)

    return _flags(windows, {a.attempt_id for a in attempts}, reason)


def _span_hours(pool: Sequence[AttemptRecord]) -> float:
    times = [a.submitted_at for a in pool]
    span = (max(times) - min(times)).total_seconds() / 3600 if times else 0.0
    return max(span, MIN_SPAN_HOURS)


def _poisson_bursts(
    attempts: Sequence[AttemptRecord],
    history: Sequence[AttemptRecord],
    key: Callable[[AttemptRecord], str | None],
    unit: Callable[[AttemptRecord], str],
    width: timedelta,
    min_count: int,
    alpha: float,
) -> tuple[list[Window], dict[str, float]]:
    """Windows whose count is far above the key's own rate (Poisson tail ≤ alpha / windows),
    and each key's expected count per window."""
    pool = [*attempts, *history]
    span = _span_hours(pool)
    hours = width.total_seconds() / 3600
    totals: Counter[str] = Counter(k for a in pool if (k := key(a)) is not None)
    expected = {k: n / span * hours for k, n in totals.items()}

    def passes(k: str, count: int, n: int) -> bool:
        return count >= min_count and _tail(count, expected[k]) <= alpha / n

    return _windows(pool, key, unit, width, passes), expected


def _tail(count: int, mean: float) -> float:
    return float(stats.poisson.sf(count - 1, mean))


def shared_network(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    min_residents: int = NETWORK_MIN_RESIDENTS,
    window: timedelta = NETWORK_WINDOW,
    alpha: float = NETWORK_ALPHA,
) -> list[Flag]:
    """`shared_network` ("look") flags: an IP /24 behind far more residents within an hour
    than its own rate predicts, and at least min_residents of them."""
    windows, expected = _poisson_bursts(
        attempts, history, lambda a: a.ip_hash, lambda a: a.resident, window, min_residents, alpha
    )

    def reason(w: Window) -> Reason:
        detail: dict[str, object] = {
            "ip_hash": w.key,
            "residents_in_window": w.count,
            "expected_in_window": round(expected[w.key], 3),
            "p_value": _tail(w.count, expected[w.key]),
            "window_hours": window.total_seconds() / 3600,
            "first_submitted": iso(w.members[0].submitted_at),
            "last_submitted": iso(w.members[-1].submitted_at),
        }
        return Reason("shared_network", detail, NETWORK_STRENGTH)

    return _flags(windows, {a.attempt_id for a in attempts}, reason)


def channel_burst(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    min_submissions: int = CHANNEL_MIN_SUBMISSIONS,
    window: timedelta = CHANNEL_WINDOW,
    alpha: float = CHANNEL_ALPHA,
) -> list[Flag]:
    """`channel_burst` ("look") flags: a campaign channel's submissions in an hour far above
    the channel's own rate. A push is legitimate; the flag asks a reviewer to look at who the
    push brought, not to exclude them."""
    windows, expected = _poisson_bursts(
        attempts,
        history,
        lambda a: a.channel,
        lambda a: a.attempt_id,
        window,
        min_submissions,
        alpha,
    )

    def reason(w: Window) -> Reason:
        detail: dict[str, object] = {
            "channel": w.key,
            "submissions_in_window": w.count,
            "expected_in_window": round(expected[w.key], 3),
            "p_value": _tail(w.count, expected[w.key]),
            "window_hours": window.total_seconds() / 3600,
            "first_submitted": iso(w.members[0].submitted_at),
            "last_submitted": iso(w.members[-1].submitted_at),
        }
        return Reason("channel_burst", detail, CHANNEL_STRENGTH)

    return _flags(windows, {a.attempt_id for a in attempts}, reason)
