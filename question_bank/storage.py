"""The only place that queries MongoDB (and Redis) for the question bank.

A question document keeps the working copy in `content` and, once published, the copy
residents are served in `published` (with `published_version`), so an edit to a published
question never changes what residents see until it is reviewed and published again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions
from pymongo import DESCENDING, ReturnDocument, UpdateOne, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from server.kernel import store
from server.kernel.kv import Kv

Document = dict[str, Any]

CHANGES_KEY = "bank:feed"
FEED_LENGTH = 20_000
_CODEC: CodecOptions[Document] = CodecOptions(tz_aware=True)


def questions(db: AsyncDatabase) -> AsyncCollection[Document]:
    return db["questions"]


def object_id(value: str) -> ObjectId | None:
    return ObjectId(value) if ObjectId.is_valid(value) and len(value) == 24 else None


async def insert(db: AsyncDatabase, doc: Document) -> bool:
    """Insert a question; False if its exact content already exists (unique dedupe_key)."""
    try:
        await questions(db).insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def insert_many(db: AsyncDatabase, docs: list[Document]) -> tuple[list[ObjectId], int]:
    """Insert what is new; rows whose content already exists (e.g. a concurrent upload of
    the same file) are counted as duplicates, not errors."""
    if not docs:
        return [], 0
    try:
        await questions(db).insert_many(docs, ordered=False)
        return [doc["_id"] for doc in docs], 0
    except BulkWriteError as error:
        failed = {e["index"] for e in error.details["writeErrors"] if e.get("code") == 11000}
        others = [e for e in error.details["writeErrors"] if e.get("code") != 11000]
        if others:
            raise
        inserted = [doc["_id"] for i, doc in enumerate(docs) if i not in failed]
        return inserted, len(failed)


async def find_by_dedupe_keys(db: AsyncDatabase, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        cursor = store.find(questions(db), {"dedupe_key": {"$in": chunk}}, {"dedupe_key": 1})
        async for doc in cursor:
            found[doc["dedupe_key"]] = str(doc["_id"])
    return found


async def get(db: AsyncDatabase, question_id: str) -> Document | None:
    oid = object_id(question_id)
    if oid is None:
        return None
    doc = await questions(db).find_one({"_id": oid})
    return doc if doc is not None and not doc.get("deleted_at") else None


def _filters(
    *, status: str | None, dimension: str | None, topic: str | None, audience: str | None
) -> Document:
    query: Document = {"deleted_at": None}
    if status:
        query["status"] = status
    if dimension:
        query["content.dimension"] = dimension
    if topic:
        query["content.topic"] = topic
    if audience:
        query["content.audiences"] = audience
    return query


async def list_page(
    db: AsyncDatabase, *, skip: int, limit: int, **filters: str | None
) -> tuple[list[Document], int]:
    query = _filters(**filters)
    cursor = store.find(questions(db), query).sort(
        [("changed_at", DESCENDING), ("_id", DESCENDING)]
    )
    docs = await cursor.skip(skip).limit(limit).to_list()
    return docs, await questions(db).count_documents(query)


async def all_matching(db: AsyncDatabase, **filters: str | None) -> list[Document]:
    query = _filters(**filters)
    return await store.find(questions(db), query).sort("_id", 1).to_list()


async def load_all(db: AsyncDatabase) -> list[Document]:
    return await store.find(questions(db), {"deleted_at": None}).to_list()


async def changed_since(db: AsyncDatabase, since: datetime) -> list[Document]:
    """Every question touched at or after `since`, deleted ones included (so caches drop them)."""
    return await store.find(questions(db), {"changed_at": {"$gte": since}}).to_list()


async def announce_change(kv: Kv, doc: Document) -> None:
    """Append the changed question to the bank's change feed (a Redis stream), so other
    processes apply it without querying MongoDB."""
    await kv.redis.xadd(
        kv.key(CHANGES_KEY), {"doc": bson.encode(doc)}, maxlen=FEED_LENGTH, approximate=True
    )


async def announce_reload(kv: Kv) -> None:
    """Ask every process to reload the bank (after bulk writes such as an import)."""
    await kv.redis.xadd(kv.key(CHANGES_KEY), {"reload": b"1"}, maxlen=FEED_LENGTH, approximate=True)


async def feed_position(kv: Kv) -> tuple[bytes, bytes | None]:
    """The id of the newest event (b"0-0" for an empty feed) and of the oldest one kept."""
    newest: Any = await kv.redis.xrevrange(kv.key(CHANGES_KEY), count=1)
    oldest: Any = await kv.redis.xrange(kv.key(CHANGES_KEY), count=1)
    return (_raw(newest[0][0]) if newest else b"0-0"), (_raw(oldest[0][0]) if oldest else None)


async def read_feed(
    kv: Kv, after: bytes, *, count: int = 500
) -> list[tuple[bytes, Document | None]]:
    """Events after `after`: (id, question document), or (id, None) for a reload request."""
    answer: Any = await kv.redis.xread({kv.key(CHANGES_KEY): after}, count=count)
    events: list[tuple[bytes, Document | None]] = []
    for _stream, entries in answer or []:
        for event_id, fields in entries:
            raw = fields.get(b"doc")
            events.append((_raw(event_id), bson.decode(raw, codec_options=_CODEC) if raw else None))
    return events


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


# ----------------------------------------------------------------- item statistics


STATS = "item_stats"
PENDING = "item_stats_pending"  # entries not folded yet, and only those (the fold scans it)
FOLDED = "item_stats_folded"  # one marker per folded entry, kept a day, read by _id only
FOLD_STATE = "item_stats_fold"
# The outbox is written before the attempt and must be as durable as the attempt is.
_DURABLE = WriteConcern(w="majority", j=True)


def item_id(question_id: str, version: int) -> str:
    return f"{question_id}:{version}"


async def add_pending(db: AsyncDatabase, entries: list[Document]) -> None:
    """Write outbox entries (one per attempt, `_id` = the attempt's id).

    A retried submit writes its attempt's entry again: that only moves `at` forward (so an
    entry is not dropped as an orphan while its retry is on the way). If the entry was folded
    already, it is queued again, and the fold drops it on seeing its folded marker. Racing
    writers of one entry: one inserts, the other's duplicate-key error is the same outcome."""
    ops = [
        UpdateOne(
            {"_id": entry["_id"]},
            {
                "$setOnInsert": {"responses": entry["responses"]},
                "$max": {"at": entry["at"]},
            },
            upsert=True,
        )
        for entry in entries
    ]
    collection = db.get_collection(PENDING, write_concern=_DURABLE)
    if not ops:
        return
    try:
        await collection.bulk_write(ops, ordered=False)
    except BulkWriteError as error:
        if not store.only_duplicates(error):
            raise


async def pending_entries(db: AsyncDatabase, *, limit: int) -> list[Document]:
    """The oldest outbox entries not folded yet."""
    cursor = store.find(db[PENDING], {}).sort("at", 1).limit(limit)
    return await cursor.to_list()


async def stored_attempts(db: AsyncDatabase, attempt_ids: list[str]) -> set[str]:
    """Which of these attempts are stored. The outbox is checked against the attempts its
    entries belong to (the scoring domain's collection, read by primary key only): an entry
    counts only once its attempt is stored, since it is written before the attempt."""
    cursor = store.find(db["attempts"], {"_id": {"$in": attempt_ids}}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


async def claim_fold(
    db: AsyncDatabase, *, owner: str, until: datetime, at: datetime
) -> Document | None:
    """Take (or renew) the fold's lease: one process folds at a time, and one whose lease ran
    out (it died, or stalled) is taken over. The state it returns says which batch, if any,
    a previous holder left unfinished."""
    await db[FOLD_STATE].update_one(
        {"_id": "state"},
        {"$setOnInsert": {"seq": 0, "batch": None, "owner": None, "lease_until": at}},
        upsert=True,
    )
    return await db[FOLD_STATE].find_one_and_update(
        {"_id": "state", "$or": [{"owner": owner}, {"lease_until": {"$lt": at}}]},
        {"$set": {"owner": owner, "lease_until": until}},
        return_document=ReturnDocument.AFTER,
    )


async def start_batch(db: AsyncDatabase, *, owner: str, seq: int, entry_ids: list[str]) -> bool:
    """Record the next batch (its number and entries) before applying it, so that whoever
    holds the lease next can finish it under the same number."""
    result = await db[FOLD_STATE].update_one(
        {"_id": "state", "owner": owner, "seq": seq - 1, "batch": None},
        {"$set": {"seq": seq, "batch": {"seq": seq, "entries": entry_ids}}},
    )
    return result.modified_count == 1


async def finish_batch(db: AsyncDatabase, *, owner: str, seq: int) -> None:
    await db[FOLD_STATE].update_one(
        {"_id": "state", "owner": owner, "batch.seq": seq}, {"$set": {"batch": None}}
    )


async def release_fold(db: AsyncDatabase, *, owner: str, at: datetime) -> None:
    """Give the lease back after a finished pass, so any process can fold next."""
    await db[FOLD_STATE].update_one(
        {"_id": "state", "owner": owner, "batch": None}, {"$set": {"lease_until": at}}
    )


async def entries(db: AsyncDatabase, entry_ids: list[str]) -> list[Document]:
    """These outbox entries, with their responses if not yet folded."""
    return await store.find(db[PENDING], {"_id": {"$in": entry_ids}}).to_list()


async def apply_batch(
    db: AsyncDatabase, seq: int, increments: dict[tuple[str, int], Document]
) -> None:
    """Add one batch's merged increments to each item's sums, at most once: an item takes a
    batch only if it has not taken this batch or a later one (`folded_seq`), recorded in the
    same single-document update. Batches are numbered in the order they are started, and a
    batch is finished before the next begins, so no item can miss one."""
    await _bulk_ignoring_duplicates(
        db,
        [
            UpdateOne(
                {"_id": item_id(qid, version)},
                {"$setOnInsert": {"question_id": qid, "version": version, "folded_seq": 0}},
                upsert=True,
            )
            for qid, version in sorted(increments)
        ],
    )
    await _bulk_ignoring_duplicates(
        db,
        [
            UpdateOne(
                {"_id": item_id(qid, version), "folded_seq": {"$lt": seq}},
                {"$inc": inc, "$set": {"folded_seq": seq}},
            )
            for (qid, version), inc in sorted(increments.items())
        ],
    )


async def _bulk_ignoring_duplicates(db: AsyncDatabase, ops: list[UpdateOne]) -> None:
    if not ops:
        return
    try:
        await db[STATS].bulk_write(ops, ordered=False)
    except BulkWriteError as error:  # a racing upsert created the same item document
        if not store.only_duplicates(error):
            raise


async def mark_folded(db: AsyncDatabase, entry_ids: list[str], at: datetime) -> None:
    """Leave a marker for each folded entry (kept a day), then take the entries out of the
    outbox. Marker first: an entry queued again by a late retry is recognised as folded."""
    if not entry_ids:
        return
    try:
        await db[FOLDED].insert_many([{"_id": i, "at": at} for i in entry_ids], ordered=False)
    except BulkWriteError as error:
        if not store.only_duplicates(error):
            raise
    await db[PENDING].delete_many({"_id": {"$in": entry_ids}})


async def folded_already(db: AsyncDatabase, entry_ids: list[str]) -> set[str]:
    """Which of these entries were folded before (a retry queued them again)."""
    cursor = store.find(db[FOLDED], {"_id": {"$in": entry_ids}}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


async def discard_pending(db: AsyncDatabase, entry_ids: list[str]) -> None:
    if entry_ids:
        await db[PENDING].delete_many({"_id": {"$in": entry_ids}})


async def drop_pending(db: AsyncDatabase, entry_ids: list[str], *, written_before: datetime) -> int:
    """Delete pending entries not written again since `written_before` (a retry writing its
    entry again in the meantime keeps it)."""
    if not entry_ids:
        return 0
    result = await db[PENDING].delete_many(
        {"_id": {"$in": entry_ids}, "at": {"$lt": written_before}}
    )
    return result.deleted_count


async def prune_folded(db: AsyncDatabase, *, written_before: datetime) -> int:
    result = await db[FOLDED].delete_many({"at": {"$lt": written_before}})
    return result.deleted_count


async def facilities(db: AsyncDatabase, *, min_attempts: int) -> dict[str, float]:
    """Share correct per "id:version" for items with at least `min_attempts` answers."""
    cursor = store.find(db[STATS], {}, {"n": 1, "sx": 1})
    return {
        str(doc["_id"]): doc["sx"] / doc["n"]
        async for doc in cursor
        if doc.get("n", 0) >= min_attempts
    }


async def item_stats(db: AsyncDatabase, question_id: str) -> list[Document]:
    # `folded_seq` is the fold's bookkeeping, not a statistic.
    cursor = store.find(db[STATS], {"question_id": question_id}, {"_id": 0, "folded_seq": 0})
    return await cursor.sort("version", 1).to_list()


# ------------------------------------------------------------------ IRT item parameters

ITEM_PARAMS = "item_params"  # _id "<question_id>:<version>": the calibrated 2PL parameters
IRT_SCALE = "irt_scale"  # one document ("current"): the scale's reference form and cut


async def save_item_params(db: AsyncDatabase, params: list[Document]) -> None:
    """Replace the parameters of these question versions (a calibration's output, or an
    editor's review of a DIF flag); versions not named keep theirs."""
    ops = [
        UpdateOne({"_id": f"{p['question_id']}:{p['version']}"}, {"$set": p}, upsert=True)
        for p in params
    ]
    for start in range(0, len(ops), 500):
        await db[ITEM_PARAMS].bulk_write(ops[start : start + 500], ordered=False)


async def all_item_params(db: AsyncDatabase) -> list[Document]:
    return await store.find(db[ITEM_PARAMS], {}).to_list()


async def item_params_of(db: AsyncDatabase, question_id: str, version: int) -> Document | None:
    return await db[ITEM_PARAMS].find_one({"_id": f"{question_id}:{version}"})


async def item_params_with_dif(db: AsyncDatabase, classes: list[str]) -> list[Document]:
    return await store.find(db[ITEM_PARAMS], {"dif.class": {"$in": classes}}).to_list()


async def set_item_review(
    db: AsyncDatabase, question_id: str, version: int, review: Document
) -> bool:
    """Record an editor's review of the version's DIF flag; False if it was never calibrated."""
    result = await db[ITEM_PARAMS].update_one(
        {"_id": f"{question_id}:{version}"}, {"$set": {"dif_review": review}}
    )
    return result.matched_count == 1


async def irt_scale(db: AsyncDatabase) -> Document | None:
    return await db[IRT_SCALE].find_one({"_id": "current"})


async def create_irt_scale(db: AsyncDatabase, scale: Document) -> bool:
    """Store the first scale; False if one exists (it is fixed once made)."""
    try:
        await db[IRT_SCALE].insert_one({**scale, "_id": "current"})
    except DuplicateKeyError:
        return False
    return True


async def save_irt_scale(db: AsyncDatabase, scale: Document) -> None:
    await db[IRT_SCALE].replace_one({"_id": "current"}, {**scale, "_id": "current"}, upsert=True)
