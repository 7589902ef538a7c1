"""Every collection's indexes, declared in one place and applied idempotently at start-up,
plus the schema version document that later migrations advance.

Plain, compound, unique and sparse indexes only, which MongoDB 7 and the embedded server both
accept. The embedded server uses only `_id` and unique indexes to answer queries, so hot
lookups are designed to go by `_id` or a unique key; the other indexes are still declared
because MongoDB needs them (tests/storage/test_indexes.py checks the plans on MongoDB)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("username_lower", ASCENDING)], name="username", unique=True, sparse=True),
        IndexModel([("openid", ASCENDING)], name="openid", unique=True, sparse=True),
        # Residents a helper registered (no WeChat): the code printed on their card.
        IndexModel([("resident_code", ASCENDING)], name="resident_code", unique=True, sparse=True),
        # A helper's townships; residents by township for a helper's list.
        IndexModel([("profile.township_code", ASCENDING)], name="township"),
    ],
    # _id is the token's digest; expired sessions are removed by MongoDB (TTL) or, on the
    # embedded server, by store.delete_expired.
    "sessions": [
        IndexModel([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0),
        IndexModel([("user_id", ASCENDING)], name="user"),
    ],
    # Who read or downloaded personal data or figures: kept 400 days (at least six months).
    "access_log": [
        IndexModel([("at", ASCENDING)], name="expiry", expireAfterSeconds=400 * 86400),
    ],
    "townships": [IndexModel([("code", ASCENDING)], name="code", unique=True)],
    "questions": [
        IndexModel([("status", ASCENDING), ("changed_at", DESCENDING)], name="status_changed"),
        # Exact-duplicate guard; removed from deleted questions, hence sparse.
        IndexModel([("dedupe_key", ASCENDING)], name="dedupe_key", unique=True, sparse=True),
        IndexModel(
            [("content.dimension", ASCENDING), ("content.topic", ASCENDING)], name="dimension_topic"
        ),
        IndexModel([("changed_at", ASCENDING)], name="changed_at"),
    ],
    "question_versions": [
        IndexModel(
            [("question_id", ASCENDING), ("version", ASCENDING)],
            name="question_version",
            unique=True,
        ),
    ],
    "audit_log": [
        IndexModel(
            [("entity", ASCENDING), ("entity_id", ASCENDING), ("at", ASCENDING)], name="entity_at"
        ),
    ],
    "articles": [
        IndexModel([("status", ASCENDING), ("changed_at", DESCENDING)], name="status_changed")
    ],
    # _id is "<article_id>:<version>".
    "article_versions": [IndexModel([("article_id", ASCENDING)], name="article")],
    "attempts": [
        # One daily quiz per day, one contest per window, one assessment per month.
        IndexModel([("once_key", ASCENDING)], name="once_key", unique=True, sparse=True),
        IndexModel([("user_id", ASCENDING), ("submitted_at", DESCENDING)], name="user_submitted"),
        # The integrity screening reads a window of assessments by submission time.
        IndexModel([("mode", ASCENDING), ("submitted_at", ASCENDING)], name="mode_submitted"),
        # Only assessments not yet counted in the literacy cells carry the field (a compound
        # sparse index would hold every attempt: all have submitted_at).
        IndexModel(
            [("cells_pending", ASCENDING)],
            name="cells_pending",
            sparse=True,
        ),
    ],
    # _id is "<period>|<township>|<group>|<age band>|<gender>|<education>".
    "literacy_cells": [IndexModel([("period", ASCENDING)], name="period")],
    "item_stats": [
        IndexModel(
            [("question_id", ASCENDING), ("version", ASCENDING)],
            name="question_version",
            unique=True,
        ),
    ],
    # _id is "<question_id>:<version>"; the admin view reads a question's versions.
    "item_params": [
        IndexModel(
            [("question_id", ASCENDING), ("version", ASCENDING)],
            name="question_version",
            unique=True,
        ),
    ],
    # A calibration job per document, read by _id; the newest finished one by time.
    "irt_jobs": [IndexModel([("created_at", DESCENDING)], name="created")],
    # The first answer to each step of an adaptive practice (_id "<nonce>:<step>"), with the
    # response it got: kept a day, longer than any practice lasts.
    "adaptive_steps": [
        IndexModel([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0),
        IndexModel([("user_id", ASCENDING)], name="user"),
    ],
    # The item-statistics outbox (pending entries only, _id = the attempt's id), read oldest
    # first; folded markers are read by _id and pruned by age.
    # One flag per screened assessment (_id a digest of the attempt id), listed by period,
    # township and status; the reports read a period's flags.
    "integrity_flags": [
        IndexModel([("counts_in", ASCENDING), ("status", ASCENDING)], name="counts_in_status"),
        IndexModel([("week", ASCENDING), ("status", ASCENDING)], name="week_status"),
    ],
    # _id "<township>|<week>|<measure>".
    "integrity_jumps": [IndexModel([("week", ASCENDING)], name="week")],
    # _id is the printed form code; read by code when a filled sheet is uploaded.
    "paper_forms": [IndexModel([("helper_id", ASCENDING)], name="helper")],
    # _id is "<helper_id>|<day>": actions counted against a helper's daily limit.
    "helper_days": [IndexModel([("day", ASCENDING)], name="day")],
    "item_stats_pending": [IndexModel([("at", ASCENDING)], name="at")],
    "item_stats_folded": [IndexModel([("at", ASCENDING)], name="at")],
}


async def delete_expired(db: AsyncDatabase, now: datetime) -> int:
    """Delete what the TTL indexes above say has expired. MongoDB does this by itself (about
    once a minute); the embedded server accepts TTL indexes but never applies them, so every
    app process runs this now and then (deleting the same documents twice is harmless)."""
    deleted = 0
    for collection, indexes in INDEXES.items():
        for index in indexes:
            seconds = index.document.get("expireAfterSeconds")
            if seconds is None:
                continue
            [(field, _)] = index.document["key"].items()
            cutoff = now - timedelta(seconds=seconds)
            deleted += (await db[collection].delete_many({field: {"$lt": cutoff}})).deleted_count
    return deleted


Migration = Callable[[AsyncDatabase], Awaitable[None]]

# version reached -> step that reaches it from the one before. Steps must be idempotent:
# several processes may start at once.
MIGRATIONS: dict[int, Migration] = {}


async def apply_indexes(db: AsyncDatabase) -> None:
    """Create the declared indexes that don't exist yet (several processes may start at once;
    creating an existing index again is a no-op)."""
    for collection, indexes in INDEXES.items():
        existing = {index["name"] async for index in await db[collection].list_indexes()}
        missing = [index for index in indexes if index.document["name"] not in existing]
        if missing:
            await db[collection].create_indexes(missing)


async def migrate(db: AsyncDatabase) -> int:
    meta = db["meta"]
    current_doc = await meta.find_one({"_id": "schema"})
    current = current_doc["version"] if current_doc else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {current} is newer than this code ({SCHEMA_VERSION}); "
            "deploy the newer code"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        step = MIGRATIONS.get(version)
        if step is not None:
            log.info("migrating schema", extra={"to_version": version})
            await step(db)
    await meta.update_one(
        {"_id": "schema"},
        {"$set": {"version": SCHEMA_VERSION, "applied_at": datetime.now(UTC)}},
        upsert=True,
    )
    return SCHEMA_VERSION


async def bootstrap(db: AsyncDatabase) -> None:
    await apply_indexes(db)
    await migrate(db)
