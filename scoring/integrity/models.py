"""Request and response models of the integrity review routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from server.kernel.models import ApiModel, Page, PageQuery

# A year, a month or an ISO week of the county's calendar.
FlagPeriod = Annotated[
    str, StringConstraints(pattern=r"^\d{4}(-(0[1-9]|1[0-2])|-W(0[1-9]|[1-4]\d|5[0-3]))?$")
]


class FlagQuery(PageQuery):
    period: FlagPeriod | None = None
    township: str | None = Field(default=None, max_length=20)
    status: Literal["open", "excluded", "kept"] | None = None
    # Strong flags (score ≥ 0.5) ask for a decision; the others only say "look".
    strong: bool | None = None


class Decision(ApiModel):
    decision: Literal["exclude", "keep"]
    reason: str = Field(min_length=2, max_length=500)


class ReasonOut(ApiModel):
    code: str
    label: str
    strength: float
    evidence: dict[str, Any]


class DecisionOut(ApiModel):
    model_config = ConfigDict(extra="allow")

    decision: Literal["exclude", "keep"]
    status: Literal["excluded", "kept"]
    reason: str
    by: str
    at: str | None


class FlagOut(ApiModel):
    id: str
    quiz_id: str | None
    township_code: str | None
    channel: str | None
    submitted_at: str | None
    week: str | None
    reasons: list[ReasonOut]
    score: float
    strong: bool
    status: Literal["open", "excluded", "kept"]
    decisions: list[DecisionOut]


class FlagPage(Page[FlagOut]):
    pass


class JumpQuery(ApiModel):
    township: str | None = Field(default=None, max_length=20)


class JumpOut(ApiModel):
    township_code: str
    week: str
    measure: Literal["participation", "mean_score"]
    observed: float
    expected: float
    statistic: float
    p_value: float
    p_adjusted: float
    test: str
    history_weeks: int
    detail: dict[str, Any]
    found_at: str | None


class JumpPage(Page[JumpOut]):
    pass


class ScreenSummary(ApiModel):
    screened: int
    flagged: int
    strong: int
    jumps: int | None = None
    seconds: float
