"""The statistics' state on the app."""

from __future__ import annotations

from aiohttp import web

from scoring.statistics.service import EstimatesCache

ESTIMATES = web.AppKey("estimates", EstimatesCache)
