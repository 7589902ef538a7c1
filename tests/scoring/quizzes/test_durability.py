"""Durability: a quiz issued before Redis lost its data can still be submitted, and an accepted
submission survives restarts of Redis and of the app. Uses private servers."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from question_bank.keys import BANK
from scripts import services as harness
from server import seed
from server.kernel.keys import DB
from tests.conftest import make_settings
from tests.factories import auth, correct_answers, resident


def wipe_and_restart_redis(server: harness.Server) -> None:
    server.stop()
    assert server.data_dir is not None
    for path in server.data_dir.iterdir():
        if path.name != "server.log":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    server.restart()


async def test_quiz_survives_redis_data_loss_and_result_survives_restarts(
    private_services: Any, client_for: Any, wechat: Any
) -> None:
    settings = make_settings(private_services, wechat_api_base=wechat.url)
    app = await client_for(settings)
    await seed.seed_demo(app.app[DB])
    await app.app[BANK].load(app.app[DB])
    token = await resident(app, "durable")
    quiz = await (
        await app.post("/api/v1/quizzes", json={"mode": "practice"}, headers=auth(token))
    ).json()
    answers = {"answers": correct_answers(app, quiz)}

    # Redis loses everything (its cached sessions included) between start and submit: the
    # session is recorded in MongoDB, so the resident stays signed in.
    await asyncio.to_thread(wipe_and_restart_redis, private_services.redis)
    assert (await app.get("/api/v1/me", headers=auth(token))).status == 200
    submitted = await app.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit", json=answers, headers=auth(token)
    )
    assert submitted.status == 200
    first = await submitted.json()
    assert first["correct_count"] == 10

    # Redis restarts (keeping its AOF data) and the app is replaced by a new process.
    await asyncio.to_thread(private_services.redis.restart)
    await app.close()
    fresh = await client_for(settings)
    again = await fresh.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    assert again.status == 200 and await again.json() == first
    history = await (await fresh.get("/api/v1/me/attempts", headers=auth(token))).json()
    assert history["total"] == 1 and history["items"][0]["score"] == 100
    assert await fresh.app[DB]["attempts"].count_documents({}) == 1
