"""The articles in every app process: published ones in memory, kept fresh; view counts
folded into MongoDB at exit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from content.cache import ArticleCache, fold_views
from content.keys import ARTICLES
from server.kernel.keys import DB, KV
from server.kernel.lifecycle import in_background

log = logging.getLogger(__name__)


async def articles(app: web.Application) -> AsyncIterator[None]:
    """Published articles in memory, kept fresh; pending view counts folded at exit."""
    cache = ArticleCache()
    await cache.load(app[DB])
    app[ARTICLES] = cache
    async with in_background(lambda stop: cache.run(app[DB], app[KV], stop), "article-refresh"):
        yield
    try:
        await fold_views(app[DB], app[KV])
    except Exception:
        log.warning("could not fold view counts at shutdown; they stay in Redis for the next fold")
