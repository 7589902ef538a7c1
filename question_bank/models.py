"""Questions at the HTTP boundary: what editors send and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, HttpUrl, StringConstraints, field_validator, model_validator

from server.county.vocab import (
    OPTION_KEYS,
    TRUE_FALSE_OPTIONS,
    TYPE_LABELS,
    Audience,
    Dimension,
    QuestionType,
    Status,
    Topic,
)
from server.kernel.models import ApiModel, Page, PageQuery, SearchText

STEM_MAX = 500
OPTION_MAX = 200
EXPLANATION_MAX = 1000

OptionKey = Annotated[str, StringConstraints(pattern=r"^[A-F]$")]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]


class Option(ApiModel):
    key: OptionKey
    text: str = Field(min_length=1, max_length=OPTION_MAX)


class QuestionContent(ApiModel):
    """The editable part of a question, validated the same way however it arrives (API,
    spreadsheet, JSON import)."""

    type: QuestionType
    stem: str = Field(min_length=1, max_length=STEM_MAX)
    options: list[Option] = Field(min_length=2, max_length=6)
    answer: list[OptionKey] = Field(min_length=1, max_length=6)
    explanation: str = Field(default="", max_length=EXPLANATION_MAX)
    dimension: Dimension
    topic: Topic
    audiences: list[Audience] = Field(min_length=1, max_length=6)
    difficulty: int = Field(default=3, ge=1, le=5)
    source: str = Field(default="", max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    audio_url: HttpUrl | None = None

    @field_validator("audiences", "tags")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))

    @field_validator("answer")
    @classmethod
    def _sorted_answer(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("答案中有重复的选项")
        return sorted(values)

    @model_validator(mode="after")
    def _consistent(self) -> QuestionContent:
        keys = [option.key for option in self.options]
        if keys != list(OPTION_KEYS[: len(keys)]):
            raise ValueError("选项须从 A 开始依次编号（A、B、C…），不能跳号或重复")
        texts = [option.text.strip() for option in self.options]
        if len(set(texts)) != len(texts):
            raise ValueError("选项内容不能重复")
        if not self.stem.strip():
            raise ValueError("题干不能为空")
        unknown = [key for key in self.answer if key not in keys]
        if unknown:
            raise ValueError(f"答案 {''.join(unknown)} 不在选项中")
        self._check_type_rules()
        return self

    def _check_type_rules(self) -> None:
        label = TYPE_LABELS[self.type]
        if self.type == "true_false":
            if [(o.key, o.text) for o in self.options] != list(TRUE_FALSE_OPTIONS):
                raise ValueError("判断题的选项必须是 A「对」、B「错」")
        if self.type in ("single", "true_false") and len(self.answer) != 1:
            raise ValueError(f"{label}题只能有一个答案")
        if self.type == "multiple" and len(self.answer) < 2:
            raise ValueError("多选题至少要有两个正确答案；只有一个答案请改为单选题")

    def content_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class QuestionCreate(QuestionContent):
    pass


class QuestionUpdate(QuestionContent):
    version: int = Field(ge=1, description="the version being edited; a stale one is 409")


class IrtRead(ApiModel):
    """The published version's calibrated 2PL parameters (null until calibrated)."""

    model_config = ConfigDict(extra="allow")

    version: int
    a: float
    b: float
    se_a: float | None
    se_b: float | None
    n: int | None
    model: Literal["2pl", "rasch", "fixed"]
    fit: dict[str, Any] | None
    calibrated_at: datetime | None
    # The Mantel–Haenszel check: {"class": worst ETS class, "groups": per contrast}.
    dif: dict[str, Any] | None = None
    dif_review: dict[str, Any] | None = None


class QuestionRead(QuestionContent):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    id: str
    version: int
    status: Status
    published_version: int | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
    reviewed_by: str | None = None
    published_at: datetime | None = None
    near_duplicates: list[dict[str, Any]] = Field(default_factory=list)
    # Only in the single-question view: the IRT parameters of the published version.
    irt: IrtRead | None = None


class QuestionPage(Page[QuestionRead]):
    pass


class QuestionListQuery(PageQuery):
    status: Status | None = None
    q: SearchText | None = None
    dimension: Dimension | None = None
    topic: str | None = Field(default=None, max_length=20)
    audience: Audience | None = None


class VersionBody(ApiModel):
    """Body of a workflow action (submit/publish/retire); the version guards against acting
    on a question someone changed meanwhile. Optional: an empty body acts on the latest."""

    version: int | None = Field(default=None, ge=1)


class ImportQuery(ApiModel):
    dry_run: bool = False


class ImportError_(ApiModel):
    row: int
    field: str
    message: str


class ImportResult(ApiModel):
    imported: int
    duplicates: int
    errors: list[ImportError_]
    dry_run: bool
    near_duplicates: int = 0
    ids: list[str] = Field(default_factory=list)


class ExportQuery(ApiModel):
    format: str = Field(default="xlsx", pattern=r"^(xlsx|csv|json)$")
    status: Status | None = None


class DuplicatesQuery(PageQuery):
    threshold: float = Field(default=0.8, ge=0.5, le=1.0)


class DuplicatePair(ApiModel):
    a: str
    b: str
    similarity: float
    a_stem: str
    b_stem: str


class DuplicatePage(Page[DuplicatePair]):
    pass
