"""Builders for test data, going through the real app and its storage."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from server.accounts import service as users
from server.kernel.keys import DB

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


def question_payload(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid single-choice question; `n` makes the stem (and so the content) unique."""
    payload: dict[str, Any] = {
        "type": "single",
        "stem": f"成年人每天食盐摄入量不宜超过多少克？（第{n}题）",
        "options": [
            {"key": "A", "text": "5克"},
            {"key": "B", "text": "10克"},
            {"key": "C", "text": "15克"},
            {"key": "D", "text": f"{20 + n}克"},
        ],
        "answer": ["A"],
        "explanation": "《中国居民膳食指南（2022）》建议成年人每天食盐不超过5克。",
        "dimension": "knowledge",
        "topic": "健康",
        "audiences": ["elderly", "general"],
        "difficulty": 2,
        "source": "县科协编写",
    }
    payload.update(overrides)
    return payload


async def create_question(
    client: TestClient[Any, Any], token: str, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/admin/questions", json=question_payload(**overrides), headers=auth(token)
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def publish_question(
    client: TestClient[Any, Any], author: str, reviewer: str, **overrides: Any
) -> dict[str, Any]:
    created = await create_question(client, author, **overrides)
    response = await client.post(
        f"/api/v1/admin/questions/{created['id']}/publish", headers=auth(reviewer)
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


DEMO_PROFILE = {
    "township_code": "450223102",
    "birth_year": 1980,
    "gender": "female",
    "group": "farmer",
    "education": "junior",
}


async def resident(
    client: TestClient[Any, Any], name: str, profile: dict[str, Any] | None = None
) -> str:
    """Sign a resident in through (fake) WeChat and set their profile; returns the token."""
    response = await client.post("/api/v1/auth/wechat", json={"code": f"ok-{name}"})
    assert response.status == 200, await response.text()
    token = str((await response.json())["token"])
    updated = await client.put(
        "/api/v1/me", json={**DEMO_PROFILE, **(profile or {})}, headers=auth(token)
    )
    assert updated.status == 200, await updated.text()
    return token


def correct_answers(client: TestClient[Any, Any], quiz: dict[str, Any]) -> list[dict[str, Any]]:
    """The right choices in the quiz's shown keys, worked out from the bank (as a test may)."""
    from question_bank.keys import BANK

    answers = []
    for question in quiz["questions"]:
        truth = client.app[BANK].published[question["id"]]
        texts = {text: key for key, text in truth.options}
        shown = [o["key"] for o in question["options"] if texts[o["text"]] in truth.answer]
        answers.append({"question_id": question["id"], "choice": shown})
    return answers


async def fold_item_stats(db: Any) -> None:
    """Fold the item-statistics outbox until every entry whose attempt is stored is counted
    (the app's own fold loop may be folding at the same moment)."""
    from question_bank import item_stats_fold

    for _ in range(200):
        await item_stats_fold.fold_once(db)
        state = await db["item_stats_fold"].find_one({"_id": "state"}) or {}
        pending = await db["item_stats_pending"].find({}, {"_id": 1}).to_list()
        stored = await db["attempts"].count_documents({"_id": {"$in": [p["_id"] for p in pending]}})
        if state.get("batch") is None and stored == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the item-statistics fold did not finish")
