"""Redis away: residents still sign in, start and submit quizzes (sessions are recorded in
MongoDB, quizzes are signed tickets, attempts are stored in MongoDB); the rate limit is kept
per process; /readyz says degraded; when Redis is back the boards catch up from MongoDB."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from content.keys import ARTICLES
from question_bank.keys import BANK
from server import seed
from server.kernel.keys import DB
from tests.conftest import make_settings
from tests.factories import auth, correct_answers, resident


async def submit_practice(client: Any, token: str) -> Any:
    started = await client.post("/api/v1/quizzes", json={"mode": "practice"}, headers=auth(token))
    assert started.status == 201, await started.text()
    quiz = await started.json()
    return await client.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
        json={"answers": correct_answers(client, quiz)},
        headers=auth(token),
    )


async def test_residents_keep_answering_while_redis_is_away(
    private_services: Any, client_for: Any, wechat: Any
) -> None:
    client = await client_for(
        make_settings(private_services, wechat_api_base=wechat.url, rate_limit_requests=40)
    )
    await seed.seed_demo(client.app[DB])
    await client.app[BANK].load(client.app[DB])
    await client.app[ARTICLES].load(client.app[DB])
    before = await resident(client, "before-outage")
    assert (await submit_practice(client, before)).status == 200

    await asyncio.to_thread(private_services.redis.stop)
    try:
        assert (await client.get("/api/v1/me", headers=auth(before))).status == 200
        during = await resident(client, "during-outage")  # a new sign-in, without Redis
        submitted = await submit_practice(client, during)
        assert submitted.status == 200, await submitted.text()
        assert (await submit_practice(client, before)).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 503 and (await ready.json())["error"]["code"] == "degraded"
        statuses = [
            (await client.get("/api/v1/me", headers=auth(during))).status for _ in range(45)
        ]
        assert 429 in statuses, "the budget is kept per process while Redis is away"
    finally:
        await asyncio.to_thread(private_services.redis.restart)

    db = client.app[DB]
    expected: dict[str, int] = defaultdict(int)
    async for attempt in db["attempts"].find({}, {"user_id": 1, "points": 1}):
        expected[attempt["user_id"]] += attempt["points"]
    assert len(expected) == 2
    for _ in range(100):
        board = await client.get(
            "/api/v1/leaderboards?scope=county&period=all&page_size=100", headers=auth(before)
        )
        if board.status == 200:
            rows = (await board.json())["items"]
            if len(rows) == 2 and sorted(r["points"] for r in rows) == sorted(expected.values()):
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"boards did not catch up: {await board.text()} vs {dict(expected)}")
