"""Walk every route × every role: a route that requires a role refuses anonymous callers
(401) and callers of other roles (403). A new route can't slip through untested."""

from __future__ import annotations

import re
from typing import Any

from server.kernel.http import ROLES, spec_of
from tests import factories


def concrete_path(canonical: str) -> str:
    return re.sub(r"\{[^}]+\}", "0123456789abcdef01234567", canonical)


def protected_routes(app: Any) -> list[tuple[str, str, frozenset[str]]]:
    routes = []
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if route.method == "HEAD" or spec is None or spec.roles is None:
            continue
        routes.append((route.method, concrete_path(route.resource.canonical), spec.roles))
    return routes


async def test_every_protected_route_refuses_wrong_callers(client: Any) -> None:
    from server.accounts import tokens as auth
    from server.kernel.keys import DB, KV

    async def fresh_token(role: str) -> str:
        # A new token per request: logout and account deletion revoke the token they get.
        issued = await auth.issue_token(
            client.app[DB], client.app[KV], user_id="0" * 24, role=role, ttl_seconds=600
        )
        return issued.token

    routes = protected_routes(client.app)
    assert routes, "expected protected routes"
    for method, path, allowed in routes:
        anonymous = await client.request(method, path)
        assert anonymous.status == 401, (method, path)
        for role in ROLES:
            token = await fresh_token(role)
            response = await client.request(method, path, headers=factories.auth(token))
            if role == "admin" or role in allowed:
                assert response.status not in (401, 403), (method, path, role)
            else:
                assert response.status == 403, (method, path, role, response.status)
