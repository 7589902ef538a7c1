"""The editorial workflow's writes, shared by questions and articles: every change is a
compare-and-set on the entity's version; the content of each version is kept (so a quiz or
a reader can always be shown the version it was served) and audited.

Concurrent edits of one version: the compare-and-set lets exactly one win, and only the
winner records the new version's snapshot. The snapshot of the version being replaced is
saved (idempotently) before every change, so a process that died between its write and its
snapshot leaves no gap in the history."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.editorial import storage, workflow
from server.editorial.storage import Kind
from server.kernel.clock import now

Document = dict[str, Any]


async def change(
    db: AsyncDatabase,
    kind: Kind,
    current: Document,
    *,
    set_fields: Document,
    statuses: tuple[str, ...] | None = None,
    unset_fields: tuple[str, ...] = (),
    new_version: bool = False,
) -> Document | None:
    """Apply a change to `current` if it is still the stored version; None if it is not."""
    await storage.save_version(db, kind, current)
    return await storage.update_if_version(
        db,
        kind,
        str(current["_id"]),
        version=current["version"],
        statuses=statuses,
        set_fields=set_fields,
        unset_fields=unset_fields,
        bump=new_version,
    )


async def transition(
    db: AsyncDatabase,
    kind: Kind,
    current: Document,
    *,
    action: str,
    actor: str,
    version: int | None,
    noun: str,
    extra_fields: Document | None = None,
) -> Document | None:
    """Submit, publish or retire (see `workflow`; four-eyes applies to publishing). None if
    someone changed the entity meanwhile."""
    workflow.check_transition(current, action=action, actor=actor, version=version, noun=noun)
    fields = workflow.transition_fields(current, action=action, actor=actor, at=now())
    return await change(
        db,
        kind,
        current,
        statuses=workflow.ALLOWED_FROM[action],
        set_fields={**fields, **(extra_fields or {})},
    )


async def delete_draft(
    db: AsyncDatabase,
    kind: Kind,
    current: Document,
    *,
    actor: str,
    noun: str,
    unset_fields: tuple[str, ...] = (),
) -> Document | None:
    """Delete a never-published draft (the document stays as a tombstone) and audit it. None
    if someone changed it meanwhile."""
    workflow.check_deletable(current, noun=noun)
    at = now()
    doc = await change(
        db,
        kind,
        current,
        statuses=("draft",),
        set_fields={"deleted_at": at, "deleted_by": actor, "changed_at": at},
        unset_fields=unset_fields,
    )
    if doc is not None:
        await record(
            db, kind, doc, action="delete", actor=actor, before=current["content"], deleted=True
        )
    return doc


async def record(
    db: AsyncDatabase,
    kind: Kind,
    doc: Document,
    *,
    action: str,
    actor: str,
    before: Document | None,
    deleted: bool = False,
) -> None:
    """Keep the written version's content and audit the change."""
    if not deleted:
        await storage.save_version(db, kind, doc)
    await storage.audit_change(
        db, kind, doc, action=action, actor=actor, before=before, deleted=deleted
    )


async def record_created(
    db: AsyncDatabase, kind: Kind, docs: list[Document], *, action: str, actor: str
) -> None:
    """Keep the first version of many new documents and audit each (an import)."""
    await storage.record_created(db, kind, docs, action=action, actor=actor)


async def version(db: AsyncDatabase, kind: Kind, entity_id: str, number: int) -> Document | None:
    """The stored snapshot of one version."""
    return await storage.get_version(db, kind, entity_id, number)


async def history(db: AsyncDatabase, kind: Kind, entity_id: str) -> list[Document]:
    """The audit trail of one entity, oldest first."""
    return await storage.audit_trail(db, kind, entity_id)
