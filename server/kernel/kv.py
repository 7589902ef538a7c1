"""Redis with this deployment's key prefix. Storage modules build every key through `key()`
so tests (and deployments sharing a server) never see each other's keys."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True)
class Kv:
    redis: Redis
    prefix: str

    def key(self, *parts: str | int) -> str:
        return self.prefix + ":".join(str(part) for part in parts)


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; its type hints allow str)."""
    return value.decode() if isinstance(value, bytes) else value
