"""The editorial workflow shared by questions and articles: which status each action starts
from, the four-eyes rule, and what a transition writes. Pure rules; each domain's service
does the storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.editorial.errors import FourEyesRequired, InvalidTransition, StaleVersion

Document = dict[str, Any]

ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "submit": ("draft",),
    "publish": ("draft", "in_review"),
    "retire": ("draft", "in_review", "published"),
}


def check_transition(
    current: Document, *, action: str, actor: str, version: int | None, noun: str
) -> None:
    """Refuse an action on a stale version, from the wrong status, or (publish) by whoever
    last wrote the content."""
    if version is not None and version != current["version"]:
        raise StaleVersion(
            f"{noun}已被他人修改，请刷新后重试", details={"current_version": current["version"]}
        )
    allowed = ALLOWED_FROM[action]
    if current["status"] not in allowed:
        raise InvalidTransition(
            f"{noun}当前状态不允许此操作",
            details={"status": current["status"], "allowed_from": list(allowed)},
        )
    if action == "publish" and current["updated_by"] == actor:
        raise FourEyesRequired(f"不能发布自己最后修改的{noun}，请由另一位编辑审核发布")


def transition_fields(current: Document, *, action: str, actor: str, at: datetime) -> Document:
    """What the action writes. Publishing copies the working content to the served snapshot."""
    if action == "submit":
        return {"status": "in_review", "submitted_by": actor, "changed_at": at}
    if action == "publish":
        return {
            "status": "published",
            "published": current["content"],
            "published_version": current["version"],
            "reviewed_by": actor,
            "published_at": at,
            "changed_at": at,
        }
    return {"status": "retired", "retired_by": actor, "retired_at": at, "changed_at": at}


def check_deletable(current: Document, *, noun: str) -> None:
    """Only a draft that was never published can be deleted; a published one is retired, so
    what residents were served keeps its meaning."""
    if current["status"] != "draft" or current.get("published_version"):
        raise InvalidTransition(f"只能删除从未发布过的草稿；已发布的{noun}请下线")
