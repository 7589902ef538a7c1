"""Readiness follows the real servers: stop Redis or the MongoDB server and /readyz says 503; start
them again and it says 200. Uses private servers so other tests are not disturbed."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import make_settings


async def wait_for_status(client: Any, status: int, within: float = 20) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get("/readyz")
        if response.status == status or asyncio.get_running_loop().time() > deadline:
            assert response.status == status
            return dict(await response.json())
        await asyncio.sleep(0.2)


async def test_healthz_is_always_ok(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok"}


async def test_readiness_follows_redis_and_database(private_services: Any, client_for: Any) -> None:
    client = await client_for(make_settings(private_services))
    ready = await wait_for_status(client, 200)
    assert ready["checks"] == {"mongodb": "ok", "redis": "ok"}

    await asyncio.to_thread(private_services.redis.stop)
    down = await wait_for_status(client, 503)
    assert down["error"]["code"] == "degraded"
    assert down["error"]["details"] == {"mongodb": "ok", "redis": "unreachable"}
    await asyncio.to_thread(private_services.redis.restart)
    await wait_for_status(client, 200)

    await asyncio.to_thread(private_services.mongo.stop)
    down = await wait_for_status(client, 503)
    assert down["error"]["details"] == {"mongodb": "unreachable", "redis": "ok"}
    await asyncio.to_thread(private_services.mongo.restart)
    await wait_for_status(client, 200)


async def test_storage_outage_mid_request_is_503_not_500(
    private_services: Any, client_for: Any
) -> None:
    client = await client_for(make_settings(private_services))
    await asyncio.to_thread(private_services.mongo.stop)
    response = await client.get("/api/v1/townships")
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert (await response.json())["error"]["code"] == "storage_unavailable"
    await asyncio.to_thread(private_services.mongo.restart)
