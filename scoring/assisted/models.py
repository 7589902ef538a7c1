"""Request and response models of the helpers' routes and the admins' helper management."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from server.county.models import Education, Gender, Group
from server.county.vocab import Topic
from server.kernel.models import ApiModel

TownshipCode = str


class HelperCreate(ApiModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=256)
    townships: list[TownshipCode] = Field(min_length=1, max_length=100)
    # Quizzes started and paper forms printed per day (county time), over all residents.
    daily_limit: int = Field(default=200, ge=1, le=5000)

    @field_validator("townships")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return _township_codes(value)


class HelperUpdate(ApiModel):
    townships: list[TownshipCode] | None = Field(default=None, min_length=1, max_length=100)
    daily_limit: int | None = Field(default=None, ge=1, le=5000)
    active: bool | None = None

    @field_validator("townships")
    @classmethod
    def _codes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _township_codes(value)


def _township_codes(value: list[str]) -> list[str]:
    if any(not 1 <= len(code) <= 20 for code in value):
        raise ValueError("乡镇代码应为 1—20 个字符")
    return sorted(set(value))


class ConsentNote(ApiModel):
    """What the helper attests: the resident agreed orally after the notice was read out;
    for a resident under 14, their guardian agreed."""

    oral: Literal[True]
    guardian: bool = False


class AssistedResidentCreate(ApiModel):
    township_code: str = Field(min_length=1, max_length=20)
    birth_year: int = Field(ge=1900, le=2100)
    gender: Gender
    group: Group
    education: Education  # required: the assessment needs it and the resident can't add it
    consent: ConsentNote


class AssistedQuizStart(ApiModel):
    """A resident's quiz body; the channel of a helper's session is always "assisted"."""

    mode: Literal["daily", "practice", "contest", "assessment"]
    topic: Topic | None = None
    channel: Literal["assisted"] | None = None


class FormsQuery(ApiModel):
    mode: Literal["assessment", "practice"] = "assessment"
    count: int = Field(default=20, ge=1, le=50)
    township: str | None = Field(default=None, min_length=1, max_length=20)
