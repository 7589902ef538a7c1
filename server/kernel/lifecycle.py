"""What every app process opens at start and closes at exit: the MongoDB client (through the
store seam, with indexes and migrations applied), Redis, the outgoing HTTP session, and a
helper for the domains' background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from server.kernel import store
from server.kernel.keys import DB, HTTP, KV, MONGO_CLIENT, SETTINGS
from server.kernel.kv import Kv
from server.kernel.schema import bootstrap

log = logging.getLogger(__name__)


async def mongo(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = store.open_client(settings.mongodb_uri)
    app[MONGO_CLIENT] = client
    app[DB] = client[settings.mongodb_db]
    try:
        await bootstrap(app[DB])
        yield
    finally:
        await client.close()


async def redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # A blocking pool: under a burst, requests wait briefly for a connection instead of
    # failing with "too many connections".
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=256,
        timeout=5,
        socket_timeout=10,
        socket_connect_timeout=3,
        health_check_interval=15,
    )
    client = Redis(connection_pool=pool)
    app[KV] = Kv(client, settings.redis_prefix)
    try:
        yield
    finally:
        await client.aclose()
        await pool.aclose()  # a pool passed in explicitly is not closed by the client


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
