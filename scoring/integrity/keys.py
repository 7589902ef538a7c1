"""The integrity screening's state on the app."""

from __future__ import annotations

from aiohttp import web

from scoring.integrity.service import Screening

SCREENING = web.AppKey("integrity_screening", Screening)
