"""Opaque bearer tokens kept in Redis, password hashing, and the request's principal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from server.kernel.keys import KV
from server.kernel.kv import Kv, text
from server.kernel.principal import Principal

# scrypt parameters: ~16 MiB and tens of milliseconds per hash, run off the event loop.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    # Only the hash is stored, so a Redis dump can't be replayed as tokens.
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(kv: Kv, *, user_id: str, role: str, ttl_seconds: int) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    digest = _token_hash(token)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    # One transaction per key, each writing its key with the expiry, so neither outlives
    # its TTL. Not one transaction for both: a token is looked up by its digest alone, so it
    # can't share the resident's Redis Cluster slot. The index comes first: a process dying
    # in between leaves a digest with no token (harmless), never a live token that
    # revoke_all_tokens can't find.
    index = kv.key("user_tokens", user_id)
    async with kv.redis.pipeline(transaction=True) as pipe:
        pipe.sadd(index, digest)
        pipe.expire(index, ttl_seconds)
        await pipe.execute()
    async with kv.redis.pipeline(transaction=True) as pipe:
        pipe.hset(kv.key("token", digest), mapping={"user_id": user_id, "role": role})
        pipe.expire(kv.key("token", digest), ttl_seconds)
        await pipe.execute()
    return IssuedToken(token=token, expires_at=expires_at.replace(microsecond=0))


async def authenticate(app: web.Application, token: str) -> Principal | None:
    kv = app[KV]
    digest = _token_hash(token)
    fields = await kv.redis.hgetall(kv.key("token", digest))
    if not fields:
        return None
    return Principal(
        user_id=text(fields[b"user_id"]), role=text(fields[b"role"]), token_hash=digest
    )


async def revoke_token(kv: Kv, principal: Principal) -> None:
    await kv.redis.delete(kv.key("token", principal.token_hash))
    await kv.redis.srem(kv.key("user_tokens", principal.user_id), principal.token_hash)


async def revoke_all_tokens(kv: Kv, user_id: str) -> None:
    index = kv.key("user_tokens", user_id)
    digests = await kv.redis.smembers(index)
    # One DEL per token (they are spread over a cluster's slots), in one round trip per
    # node; the index only after they are gone, so a failure half-way can be retried.
    if digests:
        async with kv.redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.delete(kv.key("token", text(digest)))
            await pipe.execute()
    await kv.redis.delete(index)


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 1024 * 1024
    )


async def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_scrypt, password, salt)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


async def verify_password(password: str, stored: str | None) -> bool:
    """Check a password; with no stored hash, burn the same time so timing can't reveal
    whether the username exists."""
    if not stored:
        await asyncio.to_thread(_scrypt, password, b"\0" * 16)
        return False
    _, _n, _r, _p, salt, digest = stored.split("$")
    actual = await asyncio.to_thread(_scrypt, password, base64.b64decode(salt))
    return hmac.compare_digest(actual, base64.b64decode(digest))
