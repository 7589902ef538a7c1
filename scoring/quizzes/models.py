"""Residents' quizzes at the HTTP boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, field_validator

from server.county.vocab import Topic
from server.kernel.models import ApiModel, PageQuery

ChoiceKey = Annotated[str, StringConstraints(pattern=r"^[A-F]$")]


# Channels the server sets itself, which a resident can't claim as a campaign code: the
# statistics count attempts by channel, and the integrity checks read helpers' and offline
# attempts differently.
RESERVED_CHANNELS = {
    "self": "自主参与",
    "assisted": "协助员当面协助",
    "paper": "纸质答卷",
    "offline": "离线练习",
}


class QuizStart(ApiModel):
    mode: Literal["daily", "practice", "contest", "assessment", "adaptive"]
    topic: Topic | None = None
    channel: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")

    @field_validator("channel")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in RESERVED_CHANNELS:
            raise ValueError(
                f"渠道代码不能为 {value.lower()}（该名称表示{RESERVED_CHANNELS[value.lower()]}）"
            )
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
    # Adaptive practice only: `questions` holds the one question being asked, step of at most
    # max_items; θ is null until the first answer.
    step: int | None = None
    max_items: int | None = None
    theta: float | None = None
    theta_se: float | None = None


# Milliseconds the resident spent on one question, as the client measured it: one figure, or
# one per visit when they came back to it (summed). Optional; an hour is the most one counts.
DurationMs = Annotated[int, Field(ge=0, le=3_600_000)]


class Answer(ApiModel):
    question_id: str = Field(min_length=24, max_length=24)
    choice: list[ChoiceKey] = Field(max_length=6)
    durations_ms: DurationMs | list[DurationMs] | None = Field(default=None)

    @field_validator("durations_ms")
    @classmethod
    def _visits(cls, value: int | list[int] | None) -> int | list[int] | None:
        if isinstance(value, list) and not 1 <= len(value) <= 20:
            raise ValueError("durations_ms 应为毫秒数，或每次查看该题的毫秒数列表（1—20 项）")
        return value

    def total_ms(self) -> int | None:
        """Time on this question in all, or None when the client did not say."""
        if isinstance(self.durations_ms, list):
            return min(sum(self.durations_ms), 3_600_000)
        return self.durations_ms


class QuizSubmit(ApiModel):
    answers: list[Answer] = Field(max_length=50)


class StepAnswer(ApiModel):
    question_id: str = Field(min_length=24, max_length=24)
    choice: list[ChoiceKey] = Field(max_length=6)


class StepResult(ApiModel):
    """The answered step: right or wrong, the key and explanation, θ so far, and the next
    question with the quiz id to answer it under (both null when the practice is over)."""

    question_id: str
    correct: bool
    answer: list[str]
    explanation: str
    theta: float
    theta_se: float
    step: int
    next: QuestionOut | None
    quiz_id: str | None


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
    # "irt": total is the expected score on the scale's reference form at θ (equated, the
    # same on every form); "raw": percent correct (the bank is not calibrated yet).
    scale: Literal["raw", "irt"] | None = None
    theta: float | None = None
    theta_se: float | None = None
    raw_total: float | None = None


# ------------------------------------------------------------------ offline answering

OFFLINE_PACK_MAX = 5
BATCH_MAX = 20
ANSWERED_AT_FORMAT = "作答时间应为带时区的 ISO 8601 时间，例如 2025-03-01T08:30:00+08:00"
# A quiz id is a signed ticket of a few hundred characters (an assessment's is the longest).
QUIZ_ID_MAX = 2048


class OfflinePackRequest(ApiModel):
    count: int = Field(default=3, ge=1, le=OFFLINE_PACK_MAX)
    topic: Topic | None = None


class OfflinePack(ApiModel):
    """Practice quizzes to answer without a connection (no answer keys), valid until
    `valid_until`, then submitted with POST /quizzes/batch-submit."""

    quizzes: list[QuizOut]
    valid_until: str


class OfflineSubmission(ApiModel):
    quiz_id: str = Field(min_length=1, max_length=QUIZ_ID_MAX)
    answers: list[Answer] = Field(max_length=50)
    # When the resident finished answering, by the phone's clock (with its offset).
    answered_at: datetime

    @field_validator("answered_at", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # Only ISO 8601 text, as the contract says (pydantic would also take a Unix number).
        if not isinstance(value, str):
            raise ValueError(ANSWERED_AT_FORMAT)
        return value

    @field_validator("answered_at")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(ANSWERED_AT_FORMAT)
        return value


class BatchSubmit(ApiModel):
    submissions: list[OfflineSubmission] = Field(min_length=1, max_length=BATCH_MAX)

    # Up to 20 quizzes of up to 50 answers each (a few hundred bytes apiece) and their ids.
    max_body_bytes: ClassVar[int] = 512 * 1024


class SubmissionError(ApiModel):
    code: str
    message: str


class SubmissionOutcome(ApiModel):
    """One submission of a batch: accepted (stored now), duplicate (stored before: the stored
    result, unchanged) or rejected (with the reason; nothing stored)."""

    quiz_id: str
    status: Literal["accepted", "duplicate", "rejected"]
    result: QuizResult | None
    error: SubmissionError | None


class BatchResult(ApiModel):
    results: list[SubmissionOutcome]


class LeaderboardQuery(PageQuery):
    scope: Literal["township", "county"] = "county"
    period: Literal["week", "month", "all"] = "week"
    township: str | None = Field(default=None, max_length=20)


class TownshipRankingQuery(ApiModel):
    period: Literal["week", "month", "all"] = "week"


# ------------------------------------------------------------------ census, targets, statistics
