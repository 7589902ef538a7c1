"""Staff sign-in: tokens, logout revocation, the same 401 for unknown users, and lockout."""

from __future__ import annotations

from typing import Any

from server.kernel.keys import DB
from tests import factories


async def test_login_returns_token_and_user(client: Any) -> None:
    name = await factories.create_staff_user(client, "editor")
    response = await client.post(
        "/api/v1/auth/staff", json={"username": name, "password": factories.PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    assert body["user"]["username"] == name and body["user"]["role"] == "editor"
    assert body["expires_at"].endswith("+00:00")
    stored = await client.app[DB]["users"].find_one({"username": name})
    assert factories.PASSWORD not in str(stored)
    assert stored["password_hash"].startswith("scrypt$")


async def test_wrong_password_and_unknown_user_look_the_same(client: Any) -> None:
    name = await factories.create_staff_user(client, "editor")
    wrong = await client.post(
        "/api/v1/auth/staff", json={"username": name, "password": "nope-nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/staff", json={"username": "ghost", "password": "nope-nope"}
    )
    assert wrong.status == unknown.status == 401
    assert (await wrong.json()) == (await unknown.json())


async def test_lockout_after_five_failures(client: Any) -> None:
    name = await factories.create_staff_user(client, "analyst")
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/staff", json={"username": name, "password": "wrong-pass"}
        )
        assert response.status == 401
    locked = await client.post(
        "/api/v1/auth/staff", json={"username": name, "password": factories.PASSWORD}
    )
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 800
    assert (await locked.json())["error"]["code"] == "account_locked"


async def test_logout_revokes_the_token(client: Any) -> None:
    token = await factories.staff_token(client, "admin")
    assert (await client.post("/api/v1/auth/logout", headers=factories.auth(token))).status == 200
    again = await client.post("/api/v1/auth/logout", headers=factories.auth(token))
    assert again.status == 401
