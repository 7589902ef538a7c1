"""Residents' quizzes at the HTTP boundary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from question_bank.vocab import TOPICS
from server.models import ApiModel, PageQuery

Gender = Literal["male", "female"]
Group = Literal["farmer", "worker", "elderly", "youth", "official", "other"]
Education = Literal["primary_or_less", "junior", "senior", "college_plus"]
ChoiceKey = Annotated[str, StringConstraints(pattern=r"^[A-F]$")]


class QuizStart(ApiModel):
    mode: Literal["daily", "practice", "contest", "assessment"]
    topic: str | None = None
    channel: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")

    @field_validator("topic")
    @classmethod
    def _known_topic(cls, value: str | None) -> str | None:
        if value is not None and value not in TOPICS:
            raise ValueError(f"未知主题「{value}」，可选：{'、'.join(TOPICS)}")
        return value

    @field_validator("channel")
    @classmethod
    def _not_self(cls, value: str | None) -> str | None:
        # "self" names residents who came without a campaign code in the statistics.
        if value is not None and value.lower() == "self":
            raise ValueError("渠道代码不能为 self（该名称表示自主参与）")
        return value


class OptionOut(ApiModel):
    key: str
    text: str


class QuestionOut(ApiModel):
    id: str
    type: str
    stem: str
    options: list[OptionOut]


class QuizOut(ApiModel):
    quiz_id: str
    mode: str
    deadline: str
    questions: list[QuestionOut]


class Answer(ApiModel):
    question_id: str = Field(min_length=24, max_length=24)
    choice: list[ChoiceKey] = Field(max_length=6)


class QuizSubmit(ApiModel):
    answers: list[Answer] = Field(max_length=50)


class QuestionResult(ApiModel):
    question_id: str
    correct: bool
    answer: list[str]
    explanation: str


class QuizResult(ApiModel):
    quiz_id: str
    score: int
    max_score: int
    correct_count: int
    points: int
    results: list[QuestionResult]
    recommended_articles: list[dict[str, object]]
    # Assessments only (0–100 in four dimensions, and the tier).
    dimension_scores: dict[str, float] | None = None
    total: float | None = None
    tier: Literal["advanced", "literate", "basic", "low"] | None = None


class LeaderboardQuery(PageQuery):
    scope: Literal["township", "county"] = "county"
    period: Literal["week", "month", "all"] = "week"
    township: str | None = Field(default=None, max_length=20)


class TownshipRankingQuery(ApiModel):
    period: Literal["week", "month", "all"] = "week"


# ------------------------------------------------------------------ census, targets, statistics

AgeBand = Literal["0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70+"]
Period = Annotated[str, StringConstraints(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")]


class CensusRow(ApiModel):
    township_code: str = Field(min_length=1, max_length=20)
    age_band: AgeBand
    gender: Gender
    education: Education | None = None
    population: int = Field(ge=0, le=10_000_000)


class CensusPut(ApiModel):
    rows: list[CensusRow] = Field(min_length=1, max_length=50_000)


class TargetPut(ApiModel):
    year: int = Field(ge=2020, le=2100)
    literate_share: float = Field(gt=0, lt=1)


class LiteracyQuery(ApiModel):
    by: Literal["township", "group", "county"] = "township"
    period: Period | None = None
    group: Group | None = None


class ParticipationQuery(PageQuery):
    by: Literal["township"] = "township"
    period: Period | None = None


class TrendQuery(ApiModel):
    township: str | None = Field(default=None, max_length=20)
    year: int | None = Field(default=None, ge=2020, le=2100)


class ExportQuery(ApiModel):
    format: Literal["xlsx"] = "xlsx"
    period: Period | None = None
