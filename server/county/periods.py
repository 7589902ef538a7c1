"""Calendar periods in the county's time zone (China Standard Time)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

COUNTY_TZ = ZoneInfo("Asia/Shanghai")


def period_keys(moment: datetime) -> dict[str, str]:
    local = moment.astimezone(COUNTY_TZ)
    year, week, _ = local.isocalendar()
    return {
        "day": local.strftime("%Y-%m-%d"),
        "week": f"{year}-W{week:02d}",
        "month": local.strftime("%Y-%m"),
        "all": "all",
    }


def seconds_until_next_day(moment: datetime) -> int:
    local = moment.astimezone(COUNTY_TZ)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(86400 - (local - midnight).total_seconds()) + 1
