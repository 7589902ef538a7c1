"""The question bank's state on the app."""

from __future__ import annotations

from aiohttp import web

from question_bank.cache import BankCache

BANK = web.AppKey("bank", BankCache)
