"""The authentication middleware: who is calling, and whether their role may call the route."""

from __future__ import annotations

import logging

from aiohttp import web

from server.accounts import tokens as auth
from server.kernel.errors import Forbidden, Unauthorized
from server.kernel.http import MiddlewareHandler, bearer_token, spec_of
from server.kernel.keys import PRINCIPAL

log = logging.getLogger("server.errors")


@web.middleware
async def auth_middleware(request: web.Request, handler: MiddlewareHandler) -> web.StreamResponse:
    """Authenticate the bearer token and enforce the route's declared roles."""
    spec = spec_of(request.match_info.handler)
    token = bearer_token(request)
    principal = await auth.authenticate(request.app, token) if token else None
    request[PRINCIPAL] = principal  # type: ignore[misc]  # the key is typed Principal | None
    if spec is None or spec.roles is None:
        return await handler(request)  # public route, or the router's own 404/405
    if principal is None:
        if (
            token
            and _is_account_deletion(request)
            and await auth.account_erased(request.app, token)
        ):
            # A retry of a deletion that went through (its answer lost on the way): the
            # same answer again, so the client can tell it is done.
            return web.Response(status=204)
        raise Unauthorized("登录已失效，请重新登录" if token else "请先登录")
    if principal.role != "admin" and principal.role not in spec.roles:
        raise Forbidden()
    return await handler(request)


def _is_account_deletion(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return (
        request.method == "DELETE"
        and resource is not None
        and resource.canonical.endswith("/api/v1/me")
    )
