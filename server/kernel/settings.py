"""Settings from environment variables (names fixed by API.md), falling back to `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]  # server/kernel/settings.py -> the repo

# Values that show a secret was never really configured.
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "placeholder", "xxx"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=REPO_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    app_env: Literal["production", "development"] = "production"
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = Field(default=8080, ge=1, le=65535)

    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_db: str = Field(default="science_literacy", pattern=r"^[A-Za-z0-9_-]{1,60}$")
    redis_url: str = "redis://127.0.0.1:6379/0"
    # REDIS_URL names one node of a Redis Cluster (the client discovers the others); the
    # URL's database must be 0 then.
    redis_cluster: bool = False
    # Every Redis key starts with this, so several deployments (or tests) can share a server.
    redis_prefix: str = Field(default="sl:", max_length=40)

    wechat_appid: str = ""
    wechat_secret: SecretStr = SecretStr("")
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_seconds: float = Field(default=5.0, gt=0, le=30)

    # Signs quiz tickets (the quiz id), so a quiz survives a Redis restart. All app processes
    # of a deployment must share it.
    quiz_signing_key: SecretStr = SecretStr("")
    # The key being rotated out: quizzes signed with it are still accepted (set it to the old
    # key when changing QUIZ_SIGNING_KEY; remove it once the longest quiz has expired).
    quiz_signing_key_previous: SecretStr = SecretStr("")
    # One contest attempt per resident per window: "week" (ISO week) or "month".
    contest_window: Literal["week", "month"] = "week"
    # Multiple choice: "none" = full marks for the exact set only; "subset_half" = half a mark
    # for a non-empty subset of the key with no wrong option.
    multiple_choice_partial_credit: Literal["none", "subset_half"] = "none"

    staff_token_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    resident_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # The privacy notice residents are asked to accept (PIPL); raise it when the notice changes
    # and the login response tells each resident whether they accepted this one.
    privacy_notice_version: str = Field(default="2026-12", min_length=1, max_length=20)

    # Per-client request budget (requests per window); residents behind one village NAT share
    # an address, so authenticated clients are limited per user instead.
    rate_limit_requests: int = Field(default=600, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    # Sign-in routes have a stricter budget per address (they are what a credential-stuffing
    # or code-replay script hammers); generous enough for a village sharing one NAT address
    # at a science day.
    login_rate_limit_requests: int = Field(default=60, ge=1)

    # Upper bound for any request body; imports have their own, larger bound.
    max_body_bytes: int = Field(default=11 * 1024 * 1024, ge=1024)
    # An idle keep-alive connection is closed after this, and so is a new one whose request
    # headers have not all arrived by then (aiohttp's timer does not restart on partial
    # headers): the slow-header (slowloris) bound. Above a proxy's idle timeout (nginx: 60 s).
    keepalive_timeout_seconds: float = Field(default=75.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.app_env == "production":
            if not self.wechat_appid:
                raise ValueError("WECHAT_APPID must be set in production")
            if self.wechat_secret.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
                raise ValueError("WECHAT_SECRET must be set to the real secret in production")
            if len(self.quiz_signing_key.get_secret_value()) < 32:
                raise ValueError(
                    "QUIZ_SIGNING_KEY must be set (32+ random characters) in production"
                )
            previous = self.quiz_signing_key_previous.get_secret_value()
            if previous and len(previous) < 32:
                raise ValueError("QUIZ_SIGNING_KEY_PREVIOUS, when set, must have 32+ characters")
        return self

    @property
    def is_development(self) -> bool:
        return self.app_env == "development"


def describe_validation_error(error: ValidationError) -> str:
    """Turn a settings error into one line per bad variable, naming the variable."""
    lines = []
    for item in error.errors():
        name = "_".join(str(part) for part in item["loc"]).upper() or "SETTINGS"
        lines.append(f"{name}: {item['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def previous_quiz_signing_keys(settings: Settings) -> tuple[bytes, ...]:
    previous = settings.quiz_signing_key_previous.get_secret_value()
    return (previous.encode(),) if previous else ()


def quiz_signing_key(settings: Settings) -> bytes:
    """The configured key; in development a fixed, clearly non-secret one is allowed."""
    key = settings.quiz_signing_key.get_secret_value()
    if not key and settings.is_development:
        key = "development-only-quiz-signing-key-not-secret"
    return key.encode()
