"""Walk every route × every role: a route that requires a role refuses anonymous callers
(401) and callers of other roles (403). A new route can't slip through untested."""

from __future__ import annotations

import re
from typing import Any

from server.http import ROLES, spec_of
from tests import factories


def concrete_path(canonical: str) -> str:
    return re.sub(r"\{[^}]+\}", "0123456789abcdef01234567", canonical)


def protected_routes(app: Any) -> list[tuple[str, str, frozenset[str]]]:
    routes = []
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if route.method == "HEAD" or spec is None or spec.roles is None:
            continue
        if route.resource.canonical.endswith("/auth/logout"):
            continue  # would revoke the walking tokens; covered in test_staff_auth
        routes.append((route.method, concrete_path(route.resource.canonical), spec.roles))
    return routes


async def test_every_protected_route_refuses_wrong_callers(client: Any) -> None:
    resident_id = "0" * 24
    from server import auth
    from server.keys import KV

    resident = await auth.issue_token(
        client.app[KV], user_id=resident_id, role="resident", ttl_seconds=600
    )
    tokens = {
        role: await factories.staff_token(client, role) for role in ROLES if role != "resident"
    }
    tokens["resident"] = resident.token
    routes = protected_routes(client.app)
    assert routes, "expected protected routes"
    for method, path, allowed in routes:
        anonymous = await client.request(method, path)
        assert anonymous.status == 401, (method, path)
        for role in ROLES:
            response = await client.request(method, path, headers=factories.auth(tokens[role]))
            if role == "admin" or role in allowed:
                assert response.status not in (401, 403), (method, path, role)
            else:
                assert response.status == 403, (method, path, role, response.status)
