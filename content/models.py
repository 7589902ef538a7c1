"""Articles at the HTTP boundary."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, HttpUrl, field_validator

from server.county.vocab import TOPICS, Audience, Dimension
from server.kernel.models import ApiModel, PageQuery, SearchText


class ArticleContent(ApiModel):
    # The largest legitimate body: 20,620 characters of text fields at their maximum, each
    # as a JSON escaped surrogate pair (12 bytes: a client with ensure_ascii sending emoji),
    # two 2,083-character URLs and the lists and keys: about 252,000 bytes
    # (tests/server/kernel/test_resource_limits.py builds it and posts it).
    max_body_bytes: ClassVar[int] = 256 * 1024

    title: str = Field(min_length=1, max_length=60)
    summary: str = Field(default="", max_length=300)
    body: str = Field(min_length=1, max_length=20_000)
    cover_url: HttpUrl | None = None
    media_url: HttpUrl | None = None
    topics: list[str] = Field(min_length=1, max_length=4)
    audiences: list[Audience] = Field(min_length=1, max_length=6)
    dimensions: list[Dimension] = Field(default_factory=list, max_length=4)
    source: str = Field(default="", max_length=200)
    author: str = Field(default="", max_length=60)

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in TOPICS]
        if unknown:
            raise ValueError(f"未知主题「{'、'.join(unknown)}」，可选：{'、'.join(TOPICS)}")
        return list(dict.fromkeys(values))

    @field_validator("audiences", "dimensions")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))


class ArticleCreate(ArticleContent):
    pass


class ArticleUpdate(ArticleContent):
    version: int = Field(ge=1)


class AdminArticleQuery(PageQuery):
    status: Literal["draft", "in_review", "published", "retired"] | None = None


class ArticleQuery(PageQuery):
    q: SearchText | None = None
    audience: Audience | None = None
    topic: str | None = Field(default=None, max_length=20)
    sort: Literal["newest", "popular"] = "newest"


class SuggestQuery(ApiModel):
    prefix: str = Field(default="", max_length=20)
