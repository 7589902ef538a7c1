"""The attempt as the detectors read it, and the flags they return.

A detector never reads the database: it receives `AttemptRecord`s built by `from_doc` from the
stored attempt documents and returns `Flag`s whose reasons carry their evidence as plain
values, so that a reviewer (or a later rerun) can see why without the detector's state.

Scores combine reasons as independent pieces of evidence, `score = 1 − Π(1 − strength)` (a
noisy-OR): two moderate reasons make a stronger flag than either, and no reason is ever
outweighed by a weak one. A score of `STRONG` or more asks for a review that may exclude the
attempt from the figures; below it the flag only says "look". The "look" reasons
(channel_burst, shared_network) are capped so that together they stay below `STRONG`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import numpy as np
import numpy.typing as npt

CHINA: Final = timezone(timedelta(hours=8))  # the county's periods (no daylight saving)

REASON_CODES: Final = frozenset(
    {
        "speeding",
        "impossible_perfect",
        "copying",
        "shared_device",
        "shared_network",
        "channel_burst",
        "straight_lining",
        "helper_speed",
        "helper_copying",
    }
)
STRONG: Final = 0.5
LOOK_CODES: Final = frozenset({"channel_burst", "shared_network"})
OVERLAPPING: Final = ("copying", "helper_copying")  # flag_score counts only the stronger
Response = tuple[str, ...]  # the original option keys chosen, sorted
ItemKey = tuple[str, int]  # question id, version
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ItemAnswer:
    question_id: str
    version: int
    order: tuple[str, ...]  # original keys in the order shown (shown position = index)
    chosen: Response
    mark: float

    @property
    def key(self) -> ItemKey:
        return (self.question_id, self.version)

    @property
    def right(self) -> bool:
        return self.mark >= 1.0

    @property
    def shown_position(self) -> int | None:
        """The shown position of a single chosen option; None for no or several choices."""
        if len(self.chosen) != 1 or self.chosen[0] not in self.order:
            return None
        return self.order.index(self.chosen[0])


def _utc(value: Any) -> datetime | None:
    """Mongo returns naive datetimes in UTC unless the client is tz-aware; read both."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass(frozen=True)
class AttemptRecord:
    attempt_id: str
    user_id: str | None  # None after an account erasure
    mode: str
    township_code: str | None
    channel: str | None  # campaign code; None = self-initiated
    issued_at: datetime
    submitted_at: datetime
    items: tuple[ItemAnswer, ...]
    seconds: float | None = None  # paradata.seconds: server-measured, issue to submit
    durations_ms: tuple[float, ...] | None = None  # per item, client-reported; NaN = not sent
    device_hash: str | None = None
    ip_hash: str | None = None  # hash of the /24
    helper_id: str | None = None  # set for an assisted (helper) session

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AttemptRecord:
        """Reads a stored attempt; paradata and the profile snapshot may be missing."""
        profile = doc.get("profile") or {}
        paradata = doc.get("paradata") or {}
        submitted = _utc(doc.get("submitted_at"))
        if submitted is None:
            raise ValueError(f"attempt {doc.get('_id')!r} has no submitted_at")
        issued = _utc(doc.get("issued_at")) or submitted
        items = tuple(
            ItemAnswer(
                question_id=str(item["question_id"]),
                version=int(item.get("version", 0)),
                order=tuple(str(k) for k in item.get("order") or ()),
                chosen=tuple(sorted(str(k) for k in item.get("chosen") or ())),
                mark=float(item.get("mark", 0.0)),
            )
            for item in doc.get("items") or ()
        )
        seconds = paradata.get("seconds")
        if seconds is None:  # attempts stored before paradata: the review block's figure
            seconds = (doc.get("review") or {}).get("seconds")
        durations = paradata.get("durations_ms")
        user_id = doc.get("user_id")
        return cls(
            attempt_id=str(doc["_id"]),
            user_id=None if user_id is None else str(user_id),
            mode=str(doc.get("mode") or "unknown"),
            township_code=_text(profile.get("township_code") or doc.get("township_code")),
            channel=_text(doc.get("channel")),
            issued_at=issued,
            submitted_at=submitted,
            items=items,
            seconds=None if seconds is None else float(seconds),
            durations_ms=None
            if durations is None or len(durations) != len(items)
            else tuple(math.nan if d is None else float(d) for d in durations),
            device_hash=_text(paradata.get("device_hash")),
            ip_hash=_text(paradata.get("ip_hash")),
            helper_id=_text(paradata.get("helper_id")),
        )

    @property
    def timed(self) -> bool:
        """Answered on a screen, with a measured time (a paper form has none)."""
        return self.channel != "paper"

    @property
    def resident(self) -> str:
        """Who answered: the user, or the attempt itself once the account was erased."""
        return self.user_id if self.user_id is not None else f"erased:{self.attempt_id}"

    @property
    def week(self) -> str:
        """ISO week of the submission in China time, e.g. "2026-W49"."""
        year, week, _ = self.submitted_at.astimezone(CHINA).isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def elapsed(self) -> float:
        """Seconds from issue to submission: the server's paradata figure when present."""
        if self.seconds is not None:
            return self.seconds
        return (self.submitted_at - self.issued_at).total_seconds()

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def score(self) -> float:
        """Percent of the marks, 0-100."""
        return 100.0 * sum(i.mark for i in self.items) / len(self.items) if self.items else 0.0

    @property
    def all_right(self) -> bool:
        return bool(self.items) and all(i.right for i in self.items)


@dataclass(frozen=True)
class Reason:
    code: str  # one of REASON_CODES
    detail: dict[str, object]  # the evidence, in plain values
    strength: float  # 0-1; ≥ STRONG asks for exclusion review, below it says "look"


@dataclass(frozen=True)
class Flag:
    attempt_id: str
    reasons: tuple[Reason, ...]
    score: float  # 1 − Π(1 − strength) over the reasons

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def strong(self) -> bool:
        return self.score >= STRONG


def combined_score(strengths: Iterable[float]) -> float:
    """Noisy-OR of the reasons' strengths (the module docstring says why)."""
    return 1.0 - math.prod(1.0 - min(max(s, 0.0), 1.0) for s in strengths)


def flag_score(strengths: Mapping[str, float]) -> float:
    """A flag's score from its reasons' strengths by code: the noisy-OR, except that of the
    township-week and the helper copying tests only the stronger counts (they weigh much the
    same identical wrong answers; a reviewer still sees both)."""
    counted = dict(strengths)
    if all(code in counted for code in OVERLAPPING):
        weaker = min(OVERLAPPING, key=lambda code: counted[code])
        del counted[weaker]
    return round(combined_score(counted.values()), 4)


def make_flag(attempt_id: str, reasons: Sequence[Reason]) -> Flag:
    if unknown := {r.code for r in reasons} - REASON_CODES:
        raise ValueError(f"unknown reason codes {sorted(unknown)}")
    if len({r.code for r in reasons}) < len(reasons):
        raise ValueError("one reason per code")
    ordered = tuple(sorted(reasons, key=lambda r: -r.strength))
    return Flag(attempt_id, ordered, flag_score({r.code: r.strength for r in ordered}))


def merge_flags(flags: Iterable[Flag]) -> list[Flag]:
    """One flag per attempt with all its reasons (one reason per code: the strongest),
    highest score first."""
    by_attempt: dict[str, dict[str, Reason]] = {}
    for flag in flags:
        reasons = by_attempt.setdefault(flag.attempt_id, {})
        for reason in flag.reasons:
            held = reasons.get(reason.code)
            if held is None or reason.strength > held.strength:
                reasons[reason.code] = reason
    merged = [make_flag(a, list(r.values())) for a, r in by_attempt.items()]
    return sorted(merged, key=lambda f: (-f.score, f.attempt_id))


def strength_from_p(p_adjusted: float, alpha: float, floor: float = 0.6) -> float:
    """A strength for a test passed at family-wise level alpha: `floor` at the threshold and
    0.1 more for each further decade of evidence, at most 0.95."""
    if p_adjusted <= 0.0:
        return 0.95
    return float(min(0.95, max(floor, floor + 0.1 * math.log10(alpha / p_adjusted))))


def poisson_binomial(probabilities: npt.ArrayLike, upto: int | None = None) -> FloatArray:
    """Distribution of the number of successes of independent trials with the given
    probabilities, by the exact recursion (rows of a 2-D input are separate sums). Columns
    0..upto (default: all); the last column holds P(≥ upto) when truncated."""
    p = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    rows, trials = p.shape
    width = trials + 1 if upto is None else min(upto, trials) + 1
    dist = np.zeros((rows, width))
    dist[:, 0] = 1.0
    for j in range(trials):
        pj = p[:, j : j + 1]
        moved = dist * pj
        dist = dist * (1.0 - pj)
        dist[:, 1:] += moved[:, :-1]
        dist[:, -1] += moved[:, -1]  # the last column keeps P(≥ upto); zero when untruncated
    return dist


def upper_tails(dist: FloatArray) -> FloatArray:
    """P(X ≥ k) for every column k of a distribution from `poisson_binomial`."""
    return np.clip(np.cumsum(dist[:, ::-1], axis=1)[:, ::-1], 0.0, 1.0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
