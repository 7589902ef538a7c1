"""Application factory: clients opened and closed by the app's lifecycle, routes mounted from
each domain, middleware in order."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from content import lifecycle as article_lifecycle
from question_bank import item_stats_fold
from question_bank import lifecycle as question_lifecycle
from question_bank.keys import BANK
from scoring.integrity.keys import SCREENING
from scoring.integrity.service import Screening
from scoring.irt.keys import CALIBRATIONS
from scoring.irt.service import Calibrations
from scoring.quizzes import service as quiz_service
from scoring.quizzes import storage as quiz_storage
from scoring.quizzes.keys import ATTEMPT_WRITER, LEADERBOARDS
from scoring.quizzes.leaderboards import Leaderboards
from scoring.quizzes.writer import AttemptWriter
from scoring.statistics.keys import ESTIMATES
from scoring.statistics.service import EstimatesCache
from server import routes
from server.accounts import middleware as accounts_middleware
from server.kernel import lifecycle
from server.kernel import middlewares as kernel_middlewares
from server.kernel.http import spec_of
from server.kernel.keys import DB, KV, SETTINGS
from server.kernel.lifecycle import in_background
from server.kernel.settings import Settings

log = logging.getLogger(__name__)


async def _writer_ctx(app: web.Application) -> AsyncIterator[None]:
    """The attempts' group-commit writer, the sweep for assessments never counted in the
    literacy cells, and the fold of the item-statistics outbox (which the writer fills)."""
    writer = AttemptWriter(app[DB])
    writer.start()
    app[ATTEMPT_WRITER] = writer
    boards = Leaderboards(app[DB], app[KV])
    app[LEADERBOARDS] = boards
    await boards.check_on_start()
    app[ESTIMATES] = EstimatesCache()
    # Calibrations read the stored attempts, which the quizzes domain owns.
    calibrations = Calibrations(
        app[DB], app[KV], app[BANK], responses=quiz_storage.calibration_input
    )
    app[CALIBRATIONS] = calibrations
    sweep = in_background(lambda stop: quiz_service.sweep_uncounted(app[DB], stop), "cells-sweep")
    fold = in_background(lambda stop: item_stats_fold.run(app[DB], stop), "item-stats-fold")
    schedule = in_background(calibrations.run_schedule, "irt-schedule")
    screening = Screening(app[DB])
    app[SCREENING] = screening
    screens = in_background(screening.run, "integrity-screening")
    async with fold, sweep, schedule, screens:
        try:
            yield
        finally:
            await calibrations.stop()
            await writer.stop()
            await boards.stop()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            kernel_middlewares.error_middleware,
            kernel_middlewares.rate_limit_middleware,
            accounts_middleware.auth_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.extend(
        [
            lifecycle.mongo,
            lifecycle.redis,
            question_lifecycle.bank,
            article_lifecycle.articles,
            _writer_ctx,
            lifecycle.http_session,
        ]
    )
    routes.setup(app)
    _check_every_route_declares_access(app)
    return app


def _check_every_route_declares_access(app: web.Application) -> None:
    undeclared = [
        f"{route.method} {route.resource.canonical if route.resource else '?'}"
        for route in app.router.routes()
        if route.method != "HEAD" and spec_of(route.handler) is None
    ]
    if undeclared:
        raise RuntimeError(f"routes without an access declaration: {undeclared}")
