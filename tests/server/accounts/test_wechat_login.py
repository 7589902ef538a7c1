"""WeChat sign-in against the local fake jscode2session, profiles and account deletion."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from server.kernel.keys import DB
from tests.conftest import make_settings
from tests.factories import DEMO_PROFILE, auth


async def login(client: Any, code: str) -> Any:
    return await client.post("/api/v1/auth/wechat", json={"code": code})


async def test_first_and_returning_login(
    resident_client: Any, wechat: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = await login(resident_client, "ok-li")
    body = await first.json()
    assert first.status == 200 and body["is_new"] is True and body["user"]["role"] == "resident"
    again = await (await login(resident_client, "ok-li")).json()
    assert again["is_new"] is False and again["user"]["id"] == body["user"]["id"]
    stored = await resident_client.app[DB]["users"].find_one({"openid": "oid-li"})
    assert stored["unionid"] == "uid-li"
    assert "SESSIONKEY" not in str(stored) and "SESSIONKEY" not in await first.text()
    # Every log line of ours (the fake WeChat's own access log, aiohttp.access, is WeChat's side).
    ours = "\n".join(
        r.getMessage() + str(r.__dict__) for r in caplog.records if r.name != "aiohttp.access"
    )
    assert "SESSIONKEY" not in ours and "test-wechat-secret" not in ours
    assert wechat.seen_params[0]["appid"] == "wx-test-appid"
    assert wechat.seen_params[0]["grant_type"] == "authorization_code"


async def test_simultaneous_first_logins_of_one_resident_create_one_account(
    resident_client: Any,
) -> None:
    """A double tap, or a flaky network retrying: 20 first logins of the same WeChat user at
    once create one account (a unique index on the openid, and an upsert), and every reply
    names it; exactly one says the resident is new."""
    replies = await asyncio.gather(*(login(resident_client, "ok-twin") for _ in range(20)))
    bodies = [await reply.json() for reply in replies]
    assert [reply.status for reply in replies] == [200] * 20
    assert len({body["user"]["id"] for body in bodies}) == 1
    assert sum(body["is_new"] for body in bodies) == 1
    assert await resident_client.app[DB]["users"].count_documents({"openid": "oid-twin"}) == 1


@pytest.mark.parametrize(
    ("code", "status", "error_code", "calls"),
    [
        ("invalid", 401, "wechat_code_invalid", 1),
        ("used", 401, "wechat_code_invalid", 1),
        ("quota", 429, "wechat_quota", 1),
        ("risky", 403, "wechat_high_risk", 1),  # never retried
        ("busy", 503, "wechat_unavailable", 2),  # one retry, then give up
        ("slow", 503, "wechat_unavailable", 2),
    ],
)
async def test_wechat_errors_map_to_statuses(
    resident_client: Any, wechat: Any, code: str, status: int, error_code: str, calls: int
) -> None:
    response = await login(resident_client, code)
    assert response.status == status
    assert (await response.json())["error"]["code"] == error_code
    assert wechat.calls[code] == calls
    if status == 429:
        assert response.headers["Retry-After"]


async def test_busy_once_succeeds_after_one_retry(resident_client: Any, wechat: Any) -> None:
    response = await login(resident_client, "busy-once-wang")
    assert response.status == 200
    assert wechat.calls["busy-once-wang"] == 2


async def test_unreachable_wechat_is_503(services: Any, client_for: Any) -> None:
    client = await client_for(
        make_settings(services, wechat_api_base="http://127.0.0.1:9", wechat_timeout_seconds=1)
    )
    response = await login(client, "ok-x")
    assert response.status == 503


async def test_dev_login_only_in_development(services: Any, client_for: Any) -> None:
    production = await client_for(make_settings(services))
    refused = await production.post("/api/v1/auth/dev", json={"openid": "tester"})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "development_only"
    development = await client_for(make_settings(services, app_env="development"))
    allowed = await development.post("/api/v1/auth/dev", json={"openid": "tester"})
    assert allowed.status == 200


async def test_profile_requires_an_existing_township(resident_client: Any) -> None:
    token = (await (await login(resident_client, "ok-zhao")).json())["token"]
    bad = await resident_client.put(
        "/api/v1/me", json={**DEMO_PROFILE, "township_code": "999"}, headers=auth(token)
    )
    assert bad.status == 422
    assert (await bad.json())["error"]["details"][0]["field"] == "township_code"
    wrong_gender = await resident_client.put(
        "/api/v1/me", json={**DEMO_PROFILE, "gender": "x"}, headers=auth(token)
    )
    assert wrong_gender.status == 422
    extra = await resident_client.put(
        "/api/v1/me", json={**DEMO_PROFILE, "role": "admin"}, headers=auth(token)
    )
    assert extra.status == 422
    ok = await resident_client.put("/api/v1/me", json=DEMO_PROFILE, headers=auth(token))
    assert ok.status == 200
    me = await (await resident_client.get("/api/v1/me", headers=auth(token))).json()
    assert me["profile"] == DEMO_PROFILE and me["role"] == "resident"
