"""What every app process opens at start and closes at exit: the MongoDB client (through the
store seam, with indexes and migrations applied), Redis, the outgoing HTTP session, and a
helper for the domains' background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from server.kernel import store
from server.kernel.keys import DB, HTTP, KV, MONGO_CLIENT, SETTINGS
from server.kernel.kv import Kv, RedisClient
from server.kernel.schema import bootstrap, delete_expired
from server.kernel.settings import Settings

log = logging.getLogger(__name__)


async def mongo(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = store.open_client(settings.mongodb_uri)
    app[MONGO_CLIENT] = client
    app[DB] = client[settings.mongodb_db]
    try:
        await bootstrap(app[DB])
        async with in_background(lambda stop: _expire(app[DB], stop), "ttl-sweep"):
            yield
    finally:
        await client.close()


EXPIRY_SWEEP_SECONDS = 600


async def _expire(db: AsyncDatabase, stop: asyncio.Event) -> None:
    """Apply the TTL indexes where the server does not (see schema.delete_expired)."""
    while not stop.is_set():
        try:
            await delete_expired(db, datetime.now(UTC))
        except PyMongoError:
            log.warning("expiry sweep failed; next try in ten minutes")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=EXPIRY_SWEEP_SECONDS)


async def redis(app: web.Application) -> AsyncIterator[None]:
    async with open_kv(app[SETTINGS]) as kv:
        app[KV] = kv
        yield


@contextlib.asynccontextmanager
async def open_kv(settings: Settings) -> AsyncIterator[Kv]:
    """Redis as the settings say (one server or a cluster), with the key prefix."""
    opened = _cluster if settings.redis_cluster else _single_server
    async with opened(settings.redis_url) as client:
        yield Kv(client, settings.redis_prefix)


# Connections per process (on a cluster, per process and node); the rate limit and the
# request concurrency keep far below it.
REDIS_CONNECTIONS = 256


@contextlib.asynccontextmanager
async def _single_server(url: str) -> AsyncIterator[RedisClient]:
    # A blocking pool: under a burst, requests wait briefly for a connection instead of
    # failing with "too many connections".
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=5,
        socket_timeout=10,
        socket_connect_timeout=3,
        health_check_interval=15,
    )
    client = Redis(connection_pool=pool)
    try:
        yield client
    finally:
        await client.aclose()
        await pool.aclose()  # a pool passed in explicitly is not closed by the client


@contextlib.asynccontextmanager
async def _cluster(url: str) -> AsyncIterator[RedisClient]:
    """A Redis Cluster client: it learns the slot map from the node in the URL (and keeps
    it current) and sends each command to the node owning its key's slot. Its pool per node
    does not wait when every connection is busy: it raises MaxConnectionsError, a
    ConnectionError, so such a request gets 503 like any Redis outage."""
    client = RedisCluster.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        socket_timeout=10,
        socket_connect_timeout=3,
        health_check_interval=15,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def http_session(app: web.Application) -> AsyncIterator[None]:
    """One outgoing HTTP session (WeChat), reused across requests."""
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        yield


@contextlib.asynccontextmanager
async def in_background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], name: str
) -> AsyncIterator[None]:
    """Run a polling loop while the app serves. It is stopped by an event, not by
    cancellation alone: a cancellation landing inside a driver call is not reliably
    propagated. Cancelled only if it does not finish within 10 s."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            task.cancel()
            log.warning("background task did not stop in time; cancelled", extra={"task": name})
