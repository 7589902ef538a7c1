"""Index bootstrap is idempotent and records the schema version."""

from __future__ import annotations

from typing import Any

from server.kernel.keys import DB
from server.kernel.schema import INDEXES, SCHEMA_VERSION, bootstrap


async def test_bootstrap_twice_keeps_every_declared_index(client: Any) -> None:
    db = client.app[DB]
    await bootstrap(db)  # the app already ran it once at start-up
    await bootstrap(db)
    for collection, indexes in INDEXES.items():
        names = {index["name"] async for index in await db[collection].list_indexes()}
        assert {index.document["name"] for index in indexes} <= names, collection
    meta = await db["meta"].find_one({"_id": "schema"})
    assert meta["version"] == SCHEMA_VERSION
