"""Builders for test data, going through the real app and its storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from server import users
from server.keys import DB

PASSWORD = "correct horse battery"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_staff_user(
    client: TestClient[Any, Any], role: str, username: str | None = None
) -> str:
    name = username or f"{role}_{uuid.uuid4().hex[:6]}"
    await users.create_staff(client.app[DB], username=name, password=PASSWORD, role=role)
    return name


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/api/v1/auth/staff", json={"username": username, "password": password}
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["token"])


async def staff_token(client: TestClient[Any, Any], role: str) -> str:
    return await login(client, await create_staff_user(client, role))


@dataclass
class StaffTokens:
    editor: str
    editor2: str
    analyst: str
    admin: str

    def for_role(self, role: str) -> str:
        return str(getattr(self, role))


async def staff_tokens(client: TestClient[Any, Any]) -> StaffTokens:
    return StaffTokens(
        editor=await staff_token(client, "editor"),
        editor2=await staff_token(client, "editor"),
        analyst=await staff_token(client, "analyst"),
        admin=await staff_token(client, "admin"),
    )
