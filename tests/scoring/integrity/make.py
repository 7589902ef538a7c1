"""Small hand-made attempts for the detectors' unit tests (built through from_doc)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from scoring.integrity.records import AttemptRecord

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in China: week 2026-W49
KEYS = ("A", "B", "C", "D")


def item(
    number: int, chosen: Sequence[str] = ("A",), *, right: bool = True, order: Sequence[str] = KEYS
) -> dict[str, Any]:
    return {
        "question_id": f"q{number:04d}",
        "version": 1,
        "order": list(order),
        "chosen": list(chosen),
        "mark": 1.0 if right else 0.0,
    }


def attempt(
    name: str,
    *,
    user: str | None = "",
    township: str = "450223101",
    mode: str = "assessment",
    submitted: datetime = T0,
    seconds: float | None = 360.0,
    items: Sequence[dict[str, Any]] | None = None,
    n_items: int = 30,
    durations_ms: Sequence[float] | None = None,
    device: str | None = None,
    ip: str | None = None,
    helper: str | None = None,
    channel: str | None = None,
) -> AttemptRecord:
    """An attempt `name` by user `name` (unless given) whose items default to all right."""
    user_id = name if user == "" else user
    answers = list(items) if items is not None else [item(i) for i in range(n_items)]
    paradata: dict[str, Any] = {
        "seconds": seconds,
        "durations_ms": None if durations_ms is None else list(durations_ms),
        "device_hash": device,
        "ip_hash": ip,
        "helper_id": helper,
    }
    return AttemptRecord.from_doc(
        {
            "_id": f"{user_id or 'erased'}:{name}",
            "user_id": user_id,
            "mode": mode,
            "channel": channel,
            "issued_at": submitted - timedelta(seconds=seconds or 0.0),
            "submitted_at": submitted,
            "profile": {"township_code": township},
            "items": answers,
            "paradata": paradata,
        }
    )
