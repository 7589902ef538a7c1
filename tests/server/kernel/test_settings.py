"""Settings validation fails fast with a message that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from server.kernel.settings import REPO_ROOT, Settings, describe_validation_error


def test_bad_port_is_rejected_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, app_env="development", port="eighty")  # type: ignore[call-arg, arg-type]
    assert "PORT" in describe_validation_error(caught.value)


def test_production_refuses_placeholder_wechat_secret() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, app_env="production", wechat_appid="wx1", wechat_secret="changeme")  # type: ignore[call-arg, arg-type]
    assert "WECHAT_SECRET" in str(caught.value)


def test_development_accepts_missing_wechat_credentials() -> None:
    settings = Settings(_env_file=None, app_env="development")  # type: ignore[call-arg]
    assert settings.is_development


def test_production_requires_a_quiz_signing_key() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(
            _env_file=None,
            app_env="production",
            wechat_appid="wx1",
            wechat_secret="real-secret-123",
        )  # type: ignore[call-arg, arg-type]
    assert "QUIZ_SIGNING_KEY" in str(caught.value)


def test_secrets_are_not_printed_in_repr() -> None:
    settings = Settings(
        _env_file=None,
        app_env="production",
        wechat_appid="wx1",
        wechat_secret="real-secret-123",
        quiz_signing_key="quiz-key-" + "k" * 32,
    )  # type: ignore[call-arg, arg-type]
    assert "real-secret-123" not in repr(settings)
    assert "quiz-key-" not in repr(settings)


def test_cli_exits_with_clear_message_on_bad_settings() -> None:
    env = {**os.environ, "APP_ENV": "development", "PORT": "not-a-port"}
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_fall_back_to_the_env_file_that_make_run_writes() -> None:
    """`make run` records its servers in `.env` at the repo root, and a command run beside it
    (create-user) must find them there, wherever the settings module lives."""
    assert (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "Makefile").is_file()
    assert Settings.model_config["env_file"] == REPO_ROOT / ".env"
