"""The one seam between the domains and MongoDB: the client (timeouts, write concern,
codecs), index and schema creation at start-up, and the few cursor operations the storage
modules share. Every domain's storage module reaches MongoDB through a database from here.

Nothing here depends on a particular server: the same code runs on MongoDB 7 (a replica set
in production) and on the embedded mongo-java-server of the tests and `make run`, and the
conformance suite in tests/storage/ checks every behaviour relied on against both. The one
quirk of the embedded server handled here is that it sends a whole `find` result in the
first batch unless told a batch size (PyMongo then fails past 48 MB); every cursor opened
through `find` has one, which changes nothing on MongoDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import BulkWriteError

Document = dict[str, Any]

BATCH_SIZE = 1000
DUPLICATE_KEY = 11000

# A request should fail fast (503) rather than hang when the database is away: no request
# waits more than about 10 s for it.
CLIENT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 3000,
    "connectTimeoutMS": 3000,
    "socketTimeoutMS": 10_000,
    "tz_aware": True,  # datetimes come back as aware UTC, as they were written
    "w": "majority",  # acknowledged only once durable on a majority of a replica set
    "journal": True,
    "retryWrites": True,
}


def open_client(uri: str, **overrides: Any) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(uri, **{**CLIENT_OPTIONS, **overrides})


def find(
    collection: AsyncCollection[Document],
    query: Mapping[str, Any] | None = None,
    projection: Mapping[str, Any] | Sequence[str] | None = None,
    **options: Any,
) -> AsyncCursor[Document]:
    """A cursor that fetches in batches on every server."""
    options.setdefault("batch_size", BATCH_SIZE)
    return collection.find(query or {}, projection, **options)


async def aggregate(
    collection: AsyncCollection[Document], pipeline: list[Document]
) -> list[Document]:
    """Run a pipeline whose result is small (grouped rows). The embedded server ignores
    `batchSize` on aggregations and returns the whole result at once, so a pipeline must not
    return raw documents in bulk (tests/storage/test_cursors.py names the quirk)."""
    cursor = await collection.aggregate(pipeline, batchSize=BATCH_SIZE)
    return await cursor.to_list()


def only_duplicates(error: BulkWriteError) -> bool:
    """Whether an unordered bulk insert failed only on ids (or unique keys) already there,
    as a retried or repeated write does."""
    return all(e.get("code") == DUPLICATE_KEY for e in error.details["writeErrors"])
