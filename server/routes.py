"""The URL table: system routes here, each domain's routes mounted from its own module."""

from __future__ import annotations

import asyncio

from aiohttp import web

from content import routes as content_routes
from question_bank import routes as question_routes
from scoring.assisted import routes as assisted_routes
from scoring.integrity import routes as integrity_routes
from scoring.irt import routes as irt_routes
from scoring.quizzes import routes as quiz_routes
from scoring.statistics import routes as statistics_routes
from server import dashboard
from server.accounts import routes as account_routes
from server.county import routes as county_routes
from server.kernel import openapi
from server.kernel.http import endpoint, json_response
from server.kernel.keys import DB, KV
from server.kernel.middlewares import error_body

API = "/api/v1"


@endpoint(roles="public", tag="system")
async def healthz(request: web.Request) -> web.Response:
    """Report that the process is alive."""
    return json_response({"status": "ok"})


@endpoint(roles="public", tag="system")
async def readyz(request: web.Request) -> web.Response:
    """Report whether MongoDB and Redis are reachable (503 if either is not: `not_ready`
    without MongoDB, `degraded` without Redis alone, when residents can still answer)."""
    mongo_ok, redis_ok = await asyncio.gather(_ping_mongo(request.app), _ping_redis(request.app))
    checks = {
        "mongodb": "ok" if mongo_ok else "unreachable",
        "redis": "ok" if redis_ok else "unreachable",
    }
    if mongo_ok and redis_ok:
        return json_response({"status": "ready", "checks": checks})
    if mongo_ok:  # quizzes still start and submit; boards and caches catch up after
        body = error_body(
            "degraded", "缓存服务暂不可用：答题和提交照常进行，排行榜稍后补齐", checks
        )
        return json_response(body, status=503)
    return json_response(error_body("not_ready", "服务依赖的存储暂不可用", checks), status=503)


async def _ping_mongo(app: web.Application) -> bool:
    try:
        await asyncio.wait_for(app[DB].command("ping"), timeout=2)
        return True
    except Exception:
        return False


async def _ping_redis(app: web.Application) -> bool:
    try:
        return bool(await asyncio.wait_for(app[KV].redis.ping(), timeout=2))
    except Exception:
        return False


@endpoint(roles="public", tag="system")
async def openapi_document(request: web.Request) -> web.Response:
    """Serve the OpenAPI 3.1 document of the whole API."""
    return json_response(openapi.build(request.app))


def setup(app: web.Application) -> None:
    """Mount the system routes and every domain's routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(f"{API}/openapi.json", openapi_document)
    dashboard.setup(app)
    for domain_routes in (
        account_routes,
        county_routes,
        quiz_routes,
        statistics_routes,
        question_routes,
        content_routes,
        irt_routes,
        integrity_routes,
        assisted_routes,
    ):
        domain_routes.setup(app, API)
