"""Typed application keys: all shared state lives on the app, no module singletons."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from content.cache import ArticleCache
from question_bank.cache import BankCache
from question_bank.stats_buffer import ItemStatsBuffer
from scoring.cells import CellWriter
from scoring.estimates import EstimatesCache
from scoring.writer import AttemptWriter
from server.auth_types import Principal
from server.kv import Kv
from server.settings import Settings

Document = dict[str, Any]

SETTINGS = web.AppKey("settings", Settings)
MONGO_CLIENT = web.AppKey("mongo_client", AsyncMongoClient)
DB = web.AppKey("db", AsyncDatabase)
KV = web.AppKey("kv", Kv)
BANK = web.AppKey("bank", BankCache)
ARTICLES = web.AppKey("articles", ArticleCache)
ATTEMPT_WRITER = web.AppKey("attempt_writer", AttemptWriter)
ITEM_STATS = web.AppKey("item_stats", ItemStatsBuffer)
CELL_WRITER = web.AppKey("cell_writer", CellWriter)
ESTIMATES = web.AppKey("estimates", EstimatesCache)
HTTP = web.AppKey("http", aiohttp.ClientSession)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal | None)  # type: ignore[arg-type]
