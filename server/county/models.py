"""The county's vocabularies and its census and target payloads at the HTTP boundary."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from server.kernel.models import ApiModel

Gender = Literal["male", "female"]


Group = Literal["farmer", "worker", "elderly", "youth", "official", "other"]


Education = Literal["primary_or_less", "junior", "senior", "college_plus"]


AgeBand = Literal["0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70+"]


class CensusRow(ApiModel):
    township_code: str = Field(min_length=1, max_length=20)
    age_band: AgeBand
    gender: Gender
    education: Education | None = None
    population: int = Field(ge=0, le=10_000_000)


class CensusPut(ApiModel):
    # Up to 50,000 rows of about 200 bytes each, pretty-printed (a county of townships by
    # age band, gender and education is a few thousand).
    max_body_bytes: ClassVar[int] = 10 * 1024 * 1024

    rows: list[CensusRow] = Field(min_length=1, max_length=50_000)


class TargetPut(ApiModel):
    year: int = Field(ge=2020, le=2100)
    literate_share: float = Field(gt=0, lt=1)
