"""Cursors over results far larger than one reply."""

from __future__ import annotations

import time

from pymongo import monitoring
from pymongo.asynchronous.database import AsyncDatabase

from tests.storage.support import Document, external_server, new_client

DOCS = 2_000
PAYLOAD = 30_000  # bytes per document: 60 MB in all, past PyMongo's 48 MB reply limit
CHUNK = 200  # documents per insert_many (6 MB)
BATCH = 500  # documents per reply (15 MB, under MongoDB's 16 MiB per batch)


class BatchSizes(monitoring.CommandListener):
    """Records how many documents each reply of a cursor carried (first batch, then one
    per getMore)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Required by the listener interface; only replies carry batch sizes."""

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name in ("find", "aggregate", "getMore"):
            cursor = event.reply["cursor"]
            self.sizes.append(len(cursor.get("firstBatch", cursor.get("nextBatch", []))))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Required by the listener interface; a failed command fails the test by itself."""


async def fill(db: AsyncDatabase[Document]) -> None:
    """2,000 documents of 30 KB (60 MB), written in chunks to keep memory modest."""
    payload = "x" * PAYLOAD
    for start in range(0, DOCS, CHUNK):
        await db["attempts"].insert_many(
            [{"_id": i, "payload": payload} for i in range(start, start + CHUNK)], ordered=False
        )
    assert await db["attempts"].count_documents({}) == DOCS


def assert_streamed(docs: list[tuple[int, int]], batches: BatchSizes) -> None:
    """Every document once, whole, in batches of BATCH."""
    assert len(docs) == DOCS
    assert {doc_id for doc_id, _ in docs} == set(range(DOCS))
    assert {size for _, size in docs} == {PAYLOAD}
    # MongoDB may end with an empty batch (it learns that the cursor is exhausted late).
    assert [size for size in batches.sizes if size] == [BATCH] * (DOCS // BATCH)


async def test_find_with_batch_size_streams_60_mb(
    db: AsyncDatabase[Document], mongo_url: str
) -> None:
    """Exports and the rebuild of literacy cells iterate every attempt: a `find()` over 60 MB
    with `batch_size=500` must stream the result in batches of 500 (a first batch, then
    getMores) and return every document exactly once. (mongo-java-server otherwise returns a
    whole result in the first batch, and PyMongo refuses a reply past 48 MB.)"""
    started = time.monotonic()
    await fill(db)

    batches = BatchSizes()
    reader = new_client(mongo_url, event_listeners=[batches])
    try:
        cursor = reader[db.name]["attempts"].find({}, batch_size=BATCH)
        docs = [(doc["_id"], len(doc["payload"])) async for doc in cursor]
    finally:
        await reader.close()

    assert_streamed(docs, batches)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"writing and reading 60 MB took {elapsed:.1f} s"


async def test_aggregate_batches_on_mongodb_and_whole_on_the_embedded_server(
    db: AsyncDatabase[Document], mongo_url: str
) -> None:
    """A named quirk of the embedded server, kept in the seam (`server/kernel/store.py`):
    mongo-java-server 1.47 ignores `batchSize` on `aggregate` and sends the whole result in
    the first batch, so an aggregation result past 48 MB could not be read from it. The
    service's pipelines only return grouped rows (points per resident, respondents per
    township or period), far below that. On MongoDB the same call streams in batches; this
    test fails on the embedded server the day it starts batching too (and the quirk's note
    can go)."""
    small = 2_000  # 2,000 small documents: enough for four batches of 500
    await db["attempts"].insert_many([{"_id": i, "n": i} for i in range(small)])
    batches = BatchSizes()
    reader = new_client(mongo_url, event_listeners=[batches])
    try:
        cursor = await reader[db.name]["attempts"].aggregate(
            [{"$match": {"_id": {"$gte": 0}}}], batchSize=BATCH
        )
        ids = [doc["_id"] async for doc in cursor]
    finally:
        await reader.close()
    assert sorted(ids) == list(range(small))
    sizes = [size for size in batches.sizes if size]
    if external_server():
        assert sizes == [BATCH] * (small // BATCH)
    else:
        assert sizes == [small], "the embedded server now batches aggregations"
