"""The IRT calibration's state on the app."""

from __future__ import annotations

from aiohttp import web

from scoring.irt.service import Calibrations

CALIBRATIONS = web.AppKey("irt_calibrations", Calibrations)
