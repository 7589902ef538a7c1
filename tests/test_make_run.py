"""`make run` with settings production refuses prints the reason only: no Python traceback,
a non-zero exit, and the developer's `.env` untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts import services as harness

ROOT = Path(__file__).resolve().parents[1]


def test_make_run_with_incomplete_production_settings_prints_only_the_reason(
    services: harness.Services,
) -> None:
    env_file = ROOT / ".env"
    before = env_file.read_bytes() if env_file.exists() else None
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WECHAT_", "QUIZ_", "APP_"))
    }
    env.update(
        APP_ENV="production",
        MONGODB_URI=services.mongo.url,  # the harness uses these instead of starting servers
        REDIS_URL=services.redis.url,
        MONGODB_DB="make_run_refused",
    )
    finished = subprocess.run(
        [sys.executable, "scripts/services.py", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "WECHAT_APPID must be set in production" in finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout
    after = env_file.read_bytes() if env_file.exists() else None
    assert after == before, ".env is written only once the demo is up"
