"""Shared pydantic base and constrained types for every request and response model."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Role = Annotated[str, StringConstraints(pattern=r"^(resident|editor|analyst|admin)$")]
ObjectIdStr = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{24}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Search text (`q`): a few words; longer text only costs tokenizing and scoring time.
SEARCH_MAX = 64
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=SEARCH_MAX)]
PAGE_SIZE_MAX = 100

ItemT = TypeVar("ItemT")


class ApiModel(BaseModel):
    """Base of every model at the HTTP boundary: unknown fields are refused (no mass
    assignment, no `$` operators smuggled into a query)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # The largest JSON body a route taking this model reads (`server.kernel.http.endpoint`);
    # a model whose legitimate bodies are larger declares its own, derived from its limits.
    max_body_bytes: ClassVar[int] = 64 * 1024


def whole_page(items: list[Any]) -> dict[str, Any]:
    """The list response of API.md for a short list served whole: one page holding all."""
    return {"items": items, "total": len(items), "page": 1, "page_size": len(items)}


class PageQuery(ApiModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=PAGE_SIZE_MAX)

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.page_size

    def page_of(self, items: list[Any], total: int | None = None) -> dict[str, Any]:
        """The list response of API.md: this page of `items` (or `items` already cut to this
        page, when the `total` is given)."""
        window = items if total is not None else items[self.skip : self.skip + self.page_size]
        return {
            "items": window,
            "total": len(items) if total is None else total,
            "page": self.page,
            "page_size": self.page_size,
        }


class Page(ApiModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    page: int
    page_size: int
