"""The articles' state on the app."""

from __future__ import annotations

from aiohttp import web

from content.cache import ArticleCache

ARTICLES = web.AppKey("articles", ArticleCache)
