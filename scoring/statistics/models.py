"""The association's statistics queries at the HTTP boundary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from server.county.models import Group
from server.kernel.models import ApiModel, PageQuery

Period = Annotated[str, StringConstraints(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")]


class LiteracyQuery(ApiModel):
    by: Literal["township", "group", "county", "channel"] = "township"
    period: Period | None = None
    group: Group | None = None


class ParticipationQuery(PageQuery):
    by: Literal["township", "channel"] = "township"
    period: Period | None = None


class TrendQuery(ApiModel):
    township: str | None = Field(default=None, max_length=20)
    year: int | None = Field(default=None, ge=2020, le=2100)


class ExportQuery(ApiModel):
    format: Literal["xlsx"] = "xlsx"
    period: Period | None = None
