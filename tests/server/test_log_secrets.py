"""No token, WeChat id, session key, password or client address in any log line of a run
through sign-in, quizzes, staff work and sign-out (PIPL; the guide's security habits)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from server.kernel.logs import JsonFormatter
from tests.factories import auth, correct_answers, resident, staff_tokens


async def test_logs_of_a_full_run_hold_no_secret_and_no_address(
    resident_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the level `serve` logs at (configure_logging)
    token = await resident(resident_client, "secretive")
    started = await resident_client.post(
        "/api/v1/quizzes", json={"mode": "practice"}, headers=auth(token)
    )
    quiz = await started.json()
    await resident_client.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
        json={"answers": correct_answers(resident_client, quiz)},
        headers=auth(token),
    )
    await resident_client.get("/api/v1/me/export", headers=auth(token))
    await resident_client.post("/api/v1/auth/wechat", json={"code": "invalid"})
    staff = await staff_tokens(resident_client)
    await resident_client.get("/api/v1/admin/questions", headers=auth(staff.editor))
    await resident_client.post(
        "/api/v1/auth/staff", json={"username": "editor_a", "password": "wrong-password-123"}
    )
    await resident_client.post("/api/v1/auth/logout", headers=auth(token))

    formatter = JsonFormatter()
    # aiohttp's own access log is the test server's; `serve` turns it off (access_log=None).
    ours = [record for record in caplog.records if record.name != "aiohttp.access"]
    lines = "\n".join(formatter.format(record) for record in ours)
    assert '"path":"/api/v1/auth/wechat"' in lines, "the run was logged"
    forbidden = [token, staff.editor, "oid-secretive", "uid-secretive", "SESSIONKEY"]
    forbidden += ["wrong-password-123", "127.0.0.1", quiz["quiz_id"]]
    leaked = {
        secret[:20]: [line[:300] for line in lines.splitlines() if secret in line][:2]
        for secret in forbidden
        if secret in lines
    }
    assert leaked == {}, leaked
