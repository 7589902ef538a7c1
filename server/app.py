"""Application factory: clients opened and closed by the app's lifecycle, routes mounted from
each domain, middleware in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from content.cache import ArticleCache, fold_views
from content.keys import ARTICLES
from question_bank.cache import BankCache
from question_bank.item_stats_buffer import ItemStatsBuffer
from question_bank.keys import BANK, ITEM_STATS
from scoring.quizzes import service as quiz_service
from scoring.quizzes.keys import ATTEMPT_WRITER
from scoring.quizzes.writer import AttemptWriter
from scoring.statistics.keys import ESTIMATES
from scoring.statistics.service import EstimatesCache
from server import routes
from server.accounts import middleware as accounts_middleware
from server.kernel import middlewares as kernel_middlewares
from server.kernel import store
from server.kernel.http import spec_of
from server.kernel.keys import DB, HTTP, KV, MONGO_CLIENT, SETTINGS
from server.kernel.kv import Kv
from server.kernel.schema import bootstrap
from server.kernel.settings import Settings
from server.search import index as search

log = logging.getLogger(__name__)


async def _mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = store.open_client(settings.mongodb_uri)
    app[MONGO_CLIENT] = client
    app[DB] = client[settings.mongodb_db]
    try:
        await bootstrap(app[DB])
        yield
    finally:
        await client.close()


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
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


@contextlib.asynccontextmanager
async def _in_background(
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


async def _bank_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load jieba's dictionary and the question bank before serving, then keep the bank
    fresh in the background."""
    await asyncio.to_thread(search.tokenizer)
    bank = BankCache()
    await bank.start(app[DB], app[KV])
    app[BANK] = bank
    async with _in_background(lambda stop: bank.run(app[DB], app[KV], stop), "bank-refresh"):
        yield


async def _articles_ctx(app: web.Application) -> AsyncIterator[None]:
    """Published articles in memory, kept fresh; pending view counts folded at exit."""
    cache = ArticleCache()
    await cache.load(app[DB])
    app[ARTICLES] = cache
    async with _in_background(lambda stop: cache.run(app[DB], app[KV], stop), "article-refresh"):
        yield
    try:
        await fold_views(app[DB], app[KV])
    except Exception:
        log.warning("could not fold view counts at shutdown; they stay in Redis for the next fold")


async def _writer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The attempts' group-commit writer, the sweep for assessments never counted in the
    literacy cells, and the item-statistics buffer (flushed at exit)."""
    writer = AttemptWriter(app[DB])
    writer.start()
    app[ATTEMPT_WRITER] = writer
    app[ESTIMATES] = EstimatesCache()
    sweep = _in_background(lambda stop: quiz_service.sweep_uncounted(app[DB], stop), "cells-sweep")
    app[ITEM_STATS] = buffer = ItemStatsBuffer(app[DB])
    # The writer stops first, so the statistics of its last attempts are in the final flush.
    async with _in_background(buffer.run, "item-stats-flush"), sweep:
        try:
            yield
        finally:
            await writer.stop()


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One outgoing HTTP session (WeChat), reused across requests."""
    async with aiohttp.ClientSession() as session:
        app[HTTP] = session
        yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            kernel_middlewares.error_middleware,
            kernel_middlewares.rate_limit_middleware,
            accounts_middleware.auth_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_mongo_ctx)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_bank_ctx)
    app.cleanup_ctx.append(_articles_ctx)
    app.cleanup_ctx.append(_writer_ctx)
    app.cleanup_ctx.append(_http_ctx)
    routes.setup(app)
    _check_every_route_declares_access(app)
    return app


def _check_every_route_declares_access(app: web.Application) -> None:
    undeclared = [
        f"{route.method} {route.resource.canonical if route.resource else '?'}"
        for route in app.router.routes()
        if route.method != "HEAD" and spec_of(route.handler) is None
    ]
    if undeclared:
        raise RuntimeError(f"routes without an access declaration: {undeclared}")
