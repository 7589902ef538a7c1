"""Structured JSON-line logging. Secrets never reach a log: callers pass explicit fields,
and the formatter drops any field whose name looks secret."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.exceptions
from aiohttp.http_exceptions import HttpProcessingError
from pymongo.errors import ConnectionFailure

_SECRET_FIELDS = {"password", "session_key", "secret", "token", "authorization", "code"}
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name.lower() not in _SECRET_FIELDS:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class ProtocolLog(logging.LoggerAdapter):
    """aiohttp's connection-level logger, with malformed requests told apart from failures.

    A request that is not valid HTTP (a bad header character, an over-long line, a broken
    chunk) is answered 400 by aiohttp before any middleware runs, and aiohttp logs it as an
    error with a traceback. It is the client's fault, so it is one warning line naming the
    kind of fault; the request's bytes are never logged (they may carry a token). Anything
    else is still logged as aiohttp logs it."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # keep the caller's `extra` (the base class replaces it)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        if isinstance(error, HttpProcessingError):
            self.warning("malformed request refused", extra={"fault": type(error).__name__})
            return
        super().exception(msg, *args, **kwargs)


def protocol_log() -> ProtocolLog:
    return ProtocolLog(logging.getLogger("aiohttp.server"))


# The storage servers being away (restarting, unreachable): expected, retried, and answered
# 503 on the request path; not a defect, so not logged with a traceback.
STORAGE_AWAY: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def log_background_failure(logger: logging.Logger, message: str) -> None:
    """From an `except Exception` in a background loop: one warning line when storage is
    away, the traceback otherwise."""
    error = sys.exc_info()[1]
    if isinstance(error, STORAGE_AWAY):
        logger.warning(message, extra={"error": repr(error)[:300]})
    else:
        logger.exception(message)
