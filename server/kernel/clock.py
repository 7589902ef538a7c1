"""Timestamps as MongoDB stores them (UTC, millisecond precision), so a value read back
compares equal to the one written."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
