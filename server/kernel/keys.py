"""Typed keys of what every domain shares: settings, the stores and the caller. All shared
state lives on the app, no module singletons; each domain declares its own keys beside its
code (`question_bank/keys.py`, ...)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from server.kernel.kv import Kv
from server.kernel.principal import Principal
from server.kernel.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
MONGO_CLIENT = web.AppKey("mongo_client", AsyncMongoClient)
DB = web.AppKey("db", AsyncDatabase)
KV = web.AppKey("kv", Kv)
HTTP = web.AppKey("http", aiohttp.ClientSession)

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal | None)  # type: ignore[arg-type]
