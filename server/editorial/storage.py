"""Queries shared by every versioned, reviewed entity (questions and articles): the
compare-and-set edit, the content snapshot of each version, and the audit log. `kind` names
the entity: its documents live in `<kind>s`, its snapshots in `<kind>_versions`."""

from __future__ import annotations

from typing import Any, Literal

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from server.kernel import store

Document = dict[str, Any]
Kind = Literal["question", "article"]


def version_id(entity_id: str, version: int) -> str:
    # A deterministic _id, so saving a snapshot again is an idempotent upsert by _id.
    return f"{entity_id}:{version}"


async def update_if_version(
    db: AsyncDatabase,
    kind: Kind,
    entity_id: str,
    *,
    version: int,
    statuses: tuple[str, ...] | None = None,
    set_fields: Document,
    unset_fields: tuple[str, ...] = (),
    bump: bool = False,
) -> Document | None:
    """Compare-and-set on the version (and status): the write happens only if nobody changed
    the entity since `version` was read. Returns the new document, or None."""
    oid = ObjectId(entity_id) if ObjectId.is_valid(entity_id) else None
    query: Document = {"_id": oid, "version": version, "deleted_at": None}
    if statuses is not None:
        query["status"] = {"$in": list(statuses)}
    update: Document = {"$set": set_fields}
    if bump:
        update["$inc"] = {"version": 1}
    if unset_fields:
        update["$unset"] = dict.fromkeys(unset_fields, "")
    return await db[f"{kind}s"].find_one_and_update(
        query, update, return_document=ReturnDocument.AFTER
    )


async def save_version(db: AsyncDatabase, kind: Kind, doc: Document) -> None:
    """Keep the content of the document's current version (idempotent)."""
    entity_id = str(doc["_id"])
    await db[f"{kind}_versions"].update_one(
        {"_id": version_id(entity_id, doc["version"])},
        {
            "$setOnInsert": {
                f"{kind}_id": entity_id,
                "version": doc["version"],
                "content": doc["content"],
                "at": doc["changed_at"],
                "by": doc["updated_by"],
            }
        },
        upsert=True,
    )


async def get_version(
    db: AsyncDatabase, kind: Kind, entity_id: str, version: int
) -> Document | None:
    return await db[f"{kind}_versions"].find_one({"_id": version_id(entity_id, version)})


async def audit_change(
    db: AsyncDatabase,
    kind: Kind,
    doc: Document,
    *,
    action: str,
    actor: str,
    before: Document | None,
    deleted: bool = False,
) -> None:
    """One audit record (who, what, when, before/after)."""
    await db["audit_log"].insert_one(
        {
            "entity": kind,
            "entity_id": str(doc["_id"]),
            "action": action,
            "by": actor,
            "at": doc["changed_at"],
            "version": doc["version"],
            "status": "deleted" if deleted else doc["status"],
            "before": before,
            "after": None if deleted else doc["content"],
        }
    )


async def audit_trail(db: AsyncDatabase, kind: Kind, entity_id: str) -> list[Document]:
    cursor = store.find(db["audit_log"], {"entity": kind, "entity_id": entity_id}, {"_id": 0})
    return await cursor.sort("at", 1).to_list()


async def record_created(
    db: AsyncDatabase, kind: Kind, docs: list[Document], *, action: str, actor: str
) -> None:
    """Version-1 snapshots and one audit record per document created in bulk (an import).
    Snapshots have deterministic ids, so a retried import adds none twice."""
    if not docs:
        return
    snapshots = [
        {
            "_id": version_id(str(d["_id"]), 1),
            f"{kind}_id": str(d["_id"]),
            "version": 1,
            "content": d["content"],
            "at": d["created_at"],
            "by": actor,
        }
        for d in docs
    ]
    try:
        await db[f"{kind}_versions"].insert_many(snapshots, ordered=False)
    except BulkWriteError as error:
        if not store.only_duplicates(error):
            raise
    await db["audit_log"].insert_many(
        [
            {
                "entity": kind,
                "entity_id": str(d["_id"]),
                "action": action,
                "by": actor,
                "at": d["created_at"],
                "version": 1,
                "status": d["status"],
                "before": None,
                "after": d["content"],
            }
            for d in docs
        ]
    )
