"""The question bank in every app process: jieba and the bank loaded before serving, then
kept fresh in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from question_bank.cache import BankCache
from question_bank.keys import BANK
from server.kernel.keys import DB, KV
from server.kernel.lifecycle import in_background
from server.search import index as search


async def bank(app: web.Application) -> AsyncIterator[None]:
    """Load jieba's dictionary and the question bank before serving, then keep the bank
    fresh in the background."""
    await asyncio.to_thread(search.tokenizer)
    bank = BankCache()
    await bank.start(app[DB], app[KV])
    app[BANK] = bank
    async with in_background(lambda stop: bank.run(app[DB], app[KV], stop), "bank-refresh"):
        yield
