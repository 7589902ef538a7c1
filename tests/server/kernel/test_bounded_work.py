"""Bounded work: a request past its deadline is answered 503 with Retry-After; a client that
goes away mid-request (a rural connection dropping) is logged as a disconnect, not as a
server error, and a submit it sent is still stored and counted once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.kernel.http import endpoint
from server.kernel.keys import DB
from server.kernel.middlewares import error_middleware
from tests.factories import auth, correct_answers, resident


async def send_and_hang_up(client: Any, raw: bytes, *, wait: float = 0.2) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(raw)
    await writer.drain()
    await asyncio.sleep(wait)
    writer.close()
    await writer.wait_closed()
    del reader


def no_server_error(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    statuses = [getattr(r, "status", None) for r in caplog.records if r.name == "server.access"]
    assert 500 not in statuses


async def test_a_body_cut_off_midway_is_a_disconnect_not_a_server_error(
    resident_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = await resident(resident_client, "cut")
    caplog.set_level(logging.INFO)
    body = b'{"mode": "practice", "topic": "'
    await send_and_hang_up(
        resident_client,
        b"POST /api/v1/quizzes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: 400\r\n\r\n".encode()
        + body,
    )
    await asyncio.sleep(0.3)
    no_server_error(caplog)
    statuses = [getattr(r, "status", None) for r in caplog.records if r.name == "server.access"]
    assert 499 in statuses


async def test_requests_whose_clients_hang_up_at_once_log_no_server_error(
    resident_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole request arrives, then the connection drops before the handler has read the
    body (wrk does this at the end of every run; so does a phone going out of signal)."""
    token = await resident(resident_client, "gone")
    caplog.set_level(logging.INFO)
    body = b'{"mode": "practice"}'
    request = (
        b"POST /api/v1/quizzes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await asyncio.gather(*(send_and_hang_up(resident_client, request, wait=0) for _ in range(40)))
    await asyncio.sleep(0.5)
    no_server_error(caplog)
    assert (await resident_client.get("/healthz")).status == 200


async def test_a_submit_whose_client_hangs_up_is_stored_once(
    resident_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = await resident(resident_client, "hangup")
    started = await resident_client.post(
        "/api/v1/quizzes", json={"mode": "practice"}, headers=auth(token)
    )
    quiz = await started.json()
    import orjson

    body = orjson.dumps({"answers": correct_answers(resident_client, quiz)})
    caplog.set_level(logging.INFO)
    await send_and_hang_up(
        resident_client,
        f"POST /api/v1/quizzes/{quiz['quiz_id']}/submit HTTP/1.1\r\nHost: x\r\n".encode()
        + f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    db = resident_client.app[DB]
    for _ in range(50):
        if await db["attempts"].count_documents({}) == 1:
            break
        await asyncio.sleep(0.1)
    no_server_error(caplog)
    retry = await resident_client.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
        json={"answers": correct_answers(resident_client, quiz)},
        headers=auth(token),
    )
    assert retry.status == 200
    assert await db["attempts"].count_documents({}) == 1
    board = await resident_client.get(
        "/api/v1/leaderboards?scope=county&period=week", headers=auth(token)
    )
    assert (await board.json())["me"]["points"] == (await retry.json())["points"]


async def test_a_request_past_its_deadline_is_answered_503_with_retry_after() -> None:
    finished = []

    @endpoint(roles="public", deadline=0.2)
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        finished.append(True)
        return web.json_response({})

    @endpoint(roles="public")
    async def quick(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/slow", slow)
    app.router.add_get("/quick", quick)
    async with TestClient(TestServer(app)) as client:
        began = asyncio.get_running_loop().time()
        reply = await client.get("/slow")
        assert asyncio.get_running_loop().time() - began < 2
        assert reply.status == 503 and reply.headers["Retry-After"] == "2"
        assert (await reply.json())["error"]["code"] == "deadline_exceeded"
        assert (await client.get("/quick")).status == 200
    assert finished == [], "the handler was stopped, not left running"
