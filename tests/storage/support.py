"""Helpers shared by the conformance tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]
T = TypeVar("T")

# Enough pooled connections that hundreds of concurrent coroutines really overlap on the server.
POOL_SIZE = 100


def external_server() -> bool:
    """True when the suite runs against a server named by MONGODB_URI (the harness adopted it
    and started nothing), False for the embedded server the harness launched."""
    return bool(os.environ.get("MONGODB_URI"))


def new_client(url: str, **options: Any) -> AsyncMongoClient[Document]:
    """A client as the service builds one: timezone-aware datetimes, a pool wide enough for
    the concurrency tests."""
    settings: dict[str, Any] = {
        "tz_aware": True,
        "maxPoolSize": POOL_SIZE,
        "serverSelectionTimeoutMS": 15_000,
    }
    settings.update(options)
    return AsyncMongoClient(url, **settings)


async def retry_duplicate_once(operation: Callable[[], Awaitable[T]]) -> T:
    """Run an upsert, and once more if it raised DuplicateKeyError: two concurrent upserts
    may both miss the document and both try to insert it; MongoDB documents that the loser
    should retry, and the retry then matches the winner's document."""
    try:
        return await operation()
    except DuplicateKeyError:
        return await operation()


async def gather_all(operations: list[Awaitable[T]]) -> list[T | BaseException]:
    """Run operations concurrently; each one's result or the exception it raised."""
    return await asyncio.gather(*operations, return_exceptions=True)


def raised(outcomes: list[Any], kind: type[BaseException]) -> int:
    """How many outcomes are exceptions of `kind`."""
    return sum(isinstance(outcome, kind) for outcome in outcomes)


def unexpected(outcomes: list[Any], *expected: type[BaseException]) -> list[BaseException]:
    """Exceptions among the outcomes that are none of the `expected` kinds."""
    return [
        outcome
        for outcome in outcomes
        if isinstance(outcome, BaseException) and not isinstance(outcome, expected)
    ]
