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

from server.editorial import storage
from server.editorial.storage import Kind

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
