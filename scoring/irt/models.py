"""Request and response models of the IRT routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from server.kernel.models import ApiModel, PageQuery


class JobStarted(ApiModel):
    job_id: str


class JobError(ApiModel):
    code: str
    message: str


class JobRead(ApiModel):
    model_config = ConfigDict(extra="allow")

    job_id: str
    status: Literal["queued", "running", "done", "failed"]
    requested_by: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    # Responses, persons, items, models used, iterations, linking, DIF class C count, scale,
    # seconds (once done).
    summary: dict[str, Any] | None
    error: JobError | None


class DifQuery(PageQuery):
    # C: large DIF (off assessment forms until reviewed); B: moderate, listed for information.
    dif_class: Literal["B", "C"] = "C"


class DifReview(ApiModel):
    """An editor's review of a DIF flag on the question's published version."""

    decision: Literal["keep", "exclude"]
    reason: str = Field(min_length=2, max_length=500)
