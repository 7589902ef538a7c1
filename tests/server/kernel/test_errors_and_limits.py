"""The JSON error format of API.md and the per-client rate limit, through the real app."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_settings


def assert_error(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in str(body)


async def test_unknown_route_is_json_404(client: Any) -> None:
    response = await client.get("/api/v1/no-such-thing")
    assert response.status == 404
    assert_error(await response.json(), "not_found")
    assert response.headers["X-Request-ID"]


async def test_wrong_method_is_json_405(client: Any) -> None:
    response = await client.delete("/api/v1/townships")
    assert response.status == 405
    assert_error(await response.json(), "method_not_allowed")


async def test_invalid_body_is_422_naming_each_field(client: Any) -> None:
    response = await client.post("/api/v1/auth/staff", json={"username": "x", "role": "admin"})
    assert response.status == 422
    body = await response.json()
    assert_error(body, "validation_error")
    fields = {item["field"]: item for item in body["error"]["details"]}
    assert fields["password"]["message"] == "缺少必填字段"
    assert fields["role"]["message"] == "不允许的字段"
    assert fields["password"]["location"] == "body"


async def test_malformed_json_is_422(client: Any) -> None:
    response = await client.post(
        "/api/v1/auth/staff", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 422
    assert_error(await response.json(), "validation_error")


async def test_missing_or_unknown_token_is_401(client: Any) -> None:
    missing = await client.post("/api/v1/auth/logout")
    assert missing.status == 401
    assert_error(await missing.json(), "unauthorized")
    bogus = await client.post("/api/v1/auth/logout", headers={"Authorization": "Bearer nope"})
    assert bogus.status == 401


async def test_request_id_is_echoed_when_sane(client: Any) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"})
    assert response.headers["X-Request-ID"] != "bad id\twith tab"


async def test_rate_limit_returns_429_with_retry_after(services: Any, client_for: Any) -> None:
    client = await client_for(
        make_settings(services, rate_limit_requests=3, rate_limit_window_seconds=60)
    )
    statuses = [(await client.get("/api/v1/townships")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = await client.get("/api/v1/townships")
    assert limited.status == 429
    assert_error(await limited.json(), "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another client (a different token) has its own budget.
    other = await client.get("/api/v1/townships", headers={"Authorization": "Bearer someone-else"})
    assert other.status == 200
    # Health probes are never limited.
    assert (await client.get("/healthz")).status == 200


async def test_sign_in_has_a_stricter_budget_per_address(services: Any, client_for: Any) -> None:
    client = await client_for(
        make_settings(services, login_rate_limit_requests=4, rate_limit_window_seconds=60)
    )
    credentials = {"username": "nobody", "password": "wrong-password"}
    statuses = [
        (await client.post("/api/v1/auth/staff", json=credentials)).status for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 401, 429]
    wechat = await client.post("/api/v1/auth/wechat", json={"code": "ok-x"})
    assert wechat.status == 429, "one budget for every sign-in route"
    assert_error(await wechat.json(), "rate_limited")
    assert (await client.get("/api/v1/townships")).status == 200, "other routes unaffected"


async def test_openapi_lists_every_route(client: Any) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    for route in client.app.router.routes():
        if route.method != "HEAD":
            assert (route.resource.canonical, route.method.lower()) in documented
