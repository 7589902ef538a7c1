"""Cross-cutting request handling: request ids, access logs, the JSON error format,
authentication with role checks, and the per-client rate limit."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import re
import time
from typing import Any

import redis.exceptions
from aiohttp import web
from pymongo.errors import OperationFailure

from server.kernel.errors import ApiError, RateLimited
from server.kernel.http import MiddlewareHandler, bearer_token, json_response
from server.kernel.keys import KV, PRINCIPAL, REQUEST_ID, SETTINGS
from server.kernel.logs import STORAGE_AWAY
from server.kernel.pseudonyms import address_hash

access_log = logging.getLogger("server.access")
log = logging.getLogger("server.errors")

STORAGE_RETRY_AFTER_SECONDS = 5
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids: a random prefix per process and a counter, unique across processes and
# restarts without a call to the OS's random source per request (uuid4 was 3 % of /healthz).
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)
_HTTP_CODES = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "找不到该地址"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("payload_too_large", "上传的内容过大"),
}


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


@web.middleware
async def error_middleware(request: web.Request, handler: MiddlewareHandler) -> web.StreamResponse:
    """Outermost: give every request an id, log it once, and turn failures into JSON errors."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = (
        incoming if _REQUEST_ID.match(incoming) else f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"
    )
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    try:
        response = await _handle(request, handler)
    except asyncio.CancelledError:
        _log_access(request, 499, started)  # the server is stopping, or the client left
        raise
    except ConnectionResetError:
        # The client went away while we read its body or wrote to it: not a server error.
        # Nobody is left to read an answer (aiohttp drops it quietly); work already stored
        # stays stored, and a retry finds it.
        _log_access(request, 499, started)
        return web.Response(status=499)
    response.headers["X-Request-ID"] = request_id
    _log_access(request, response.status, started)
    return response


async def _handle(request: web.Request, handler: MiddlewareHandler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConnectionResetError:
        if _client_gone(request):
            raise
        log.exception("unhandled error", extra={"request_id": request[REQUEST_ID]})
        return json_response(error_body("internal_error", "服务器内部错误，请稍后再试"), status=500)
    except ApiError as error:
        return json_response(
            error_body(error.code, error.message, error.details),
            status=error.status,
            headers=error.headers,
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code, message = _HTTP_CODES.get(error.status, ("http_error", error.reason))
        return json_response(error_body(code, message), status=error.status)
    except STORAGE_AWAY as error:
        log.warning(
            "storage unreachable",
            extra={"request_id": request[REQUEST_ID], "error": repr(error)[:300]},
        )
        return json_response(
            error_body("storage_unavailable", "存储服务暂时不可用，请稍后重试"),
            status=503,
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        )
    except OperationFailure:
        log.exception("database operation failed", extra={"request_id": request[REQUEST_ID]})
        return json_response(error_body("internal_error", "服务器内部错误，请稍后再试"), status=500)
    except Exception:
        log.exception("unhandled error", extra={"request_id": request[REQUEST_ID]})
        return json_response(error_body("internal_error", "服务器内部错误，请稍后再试"), status=500)


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _log_access(request: web.Request, status: int, started: float) -> None:
    principal = request.get(PRINCIPAL)
    access_log.info(
        "request",
        extra={
            "request_id": request[REQUEST_ID],
            "method": request.method,
            # The route, not the path: paths carry quiz tickets and ids (never the query
            # string either: it may carry search text).
            "path": _route_of(request),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "user_id": principal.user_id if principal else None,
            "client": address_hash(request),
        },
    )


LOGIN_PATHS = frozenset({"/api/v1/auth/wechat", "/api/v1/auth/staff", "/api/v1/auth/dev"})


@web.middleware
async def rate_limit_middleware(
    request: web.Request, handler: MiddlewareHandler
) -> web.StreamResponse:
    """Fixed-window budget per client: per token when one is presented (a whole village may
    share one NAT address), per address otherwise; sign-in routes have their own, stricter
    budget per address. If Redis is away, each process counts on its own (the budget then
    applies per process): refusing all traffic because the limiter's store blinked would be
    worse, and no limit at all would leave sign-in open to scripts."""
    settings = request.app[SETTINGS]
    if request.path in ("/healthz", "/readyz"):
        return await handler(request)
    window = settings.rate_limit_window_seconds
    bucket = int(time.time() // window)
    if request.path in LOGIN_PATHS:
        key, limit = _address_key(request, "rl_login", bucket), settings.login_rate_limit_requests
    else:
        key = request.app[KV].key("rl", _client_identity(request), bucket)
        limit = settings.rate_limit_requests
    try:
        count = await _count_request(request.app[KV].redis, key, window + 1)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        count = _LOCAL_COUNTS.count(key, bucket)
    if count > limit:
        raise RateLimited(retry_after=window - int(time.time()) % window)
    return await handler(request)


def _address_key(request: web.Request, name: str, bucket: int) -> str:
    return request.app[KV].key(name, "a" + address_hash(request), bucket)


class _LocalCounts:
    """This process's own fixed-window counts, used while Redis is away."""

    def __init__(self) -> None:
        self._bucket = -1
        self._counts: dict[str, int] = {}

    def count(self, key: str, bucket: int) -> int:
        if bucket != self._bucket:  # a new window: forget the old one
            self._bucket, self._counts = bucket, {}
        self._counts[key] = self._counts.get(key, 0) + 1
        return self._counts[key]


_LOCAL_COUNTS = _LocalCounts()


# One command per request (a MULTI/INCR/EXPIRE/EXEC transaction was four); one key, so it
# runs on a Redis Cluster too.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_COUNT_SHA = hashlib.sha1(_COUNT.encode(), usedforsecurity=False).hexdigest()


async def _count_request(client: Any, key: str, ttl: int) -> int:
    try:
        return int(await client.evalsha(_COUNT_SHA, 1, key, ttl))
    except redis.exceptions.NoScriptError:  # a restarted Redis forgot the script
        return int(await client.eval(_COUNT, 1, key, ttl))


def _client_identity(request: web.Request) -> str:
    token = bearer_token(request)
    if token:
        return "t" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "a" + address_hash(request)
