"""Fixtures of the conformance suite: a client on the session's MongoDB server and a database
of the test's own (`conf_<uuid hex>`), dropped afterwards.

Nothing here skips: a server that cannot be reached makes the test error out, because a
suite that silently skipped would let the service run on a server it was never checked on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from scripts import services as harness
from tests.storage.support import Document, new_client


@pytest.fixture
async def mongo(services: harness.Services) -> AsyncIterator[AsyncMongoClient[Document]]:
    """A client on the session's server, checked with `ping` so that an unreachable server
    fails the test at once."""
    client = new_client(services.mongo.url)
    try:
        reply = await client.admin.command("ping")
        assert reply["ok"] == 1
        yield client
    finally:
        await client.close()


@pytest.fixture
async def db(mongo: AsyncMongoClient[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    """The test's own database (timezone-aware, from the client), dropped after the test;
    tests that open clients of their own reach it by `db.name`."""
    name = f"conf_{uuid.uuid4().hex}"
    try:
        yield mongo[name]
    finally:
        await mongo.drop_database(name)


@pytest.fixture
def mongo_url(services: harness.Services) -> str:
    """The session server's URI, for clients a test opens itself (other options or processes)."""
    return services.mongo.url
