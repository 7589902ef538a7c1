"""The question bank's state on the app."""

from __future__ import annotations

from aiohttp import web

from question_bank.cache import BankCache
from question_bank.item_stats_buffer import ItemStatsBuffer

BANK = web.AppKey("bank", BankCache)
ITEM_STATS = web.AppKey("item_stats", ItemStatsBuffer)
