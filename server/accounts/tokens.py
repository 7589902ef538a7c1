"""Opaque bearer tokens (sessions recorded in MongoDB, cached in Redis), password hashing, and
the request's principal."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.exceptions
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from server.accounts import storage
from server.kernel.keys import DB, KV
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


# How long Redis caches a session. Short, because a token revoked while Redis is away is
# removed from MongoDB (the record) but not from the cache: it lives at most this long.
CACHE_SECONDS = 300
_REDIS_AWAY = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


async def issue_token(
    db: AsyncDatabase, kv: Kv, *, user_id: str, role: str, ttl_seconds: int
) -> IssuedToken:
    """A new token. Its session is recorded in MongoDB (so it works without Redis) and cached
    in Redis, with an index per user for revocation."""
    token = secrets.token_urlsafe(32)
    digest = _token_hash(token)
    expires_at = (datetime.now(UTC) + timedelta(seconds=ttl_seconds)).replace(microsecond=0)
    await storage.save_session(db, digest, user_id=user_id, role=role, expires_at=expires_at)
    with contextlib.suppress(*_REDIS_AWAY):
        await _cache(kv, digest, user_id=user_id, role=role, seconds=CACHE_SECONDS)
    return IssuedToken(token=token, expires_at=expires_at)


async def _cache(kv: Kv, digest: str, *, user_id: str, role: str, seconds: int) -> None:
    # One transaction per key, each writing its key with the expiry. Not one transaction
    # for both: a token is looked up by its digest alone, so it can't share the resident's
    # Redis Cluster slot. The index comes first, so revoke_all_tokens finds every cached one.
    index = kv.key("user_tokens", user_id)
    async with kv.redis.pipeline(transaction=True) as pipe:
        pipe.sadd(index, digest)
        pipe.expire(index, seconds)
        await pipe.execute()
    async with kv.redis.pipeline(transaction=True) as pipe:
        pipe.hset(kv.key("token", digest), mapping={"user_id": user_id, "role": role})
        pipe.expire(kv.key("token", digest), seconds)
        await pipe.execute()


async def authenticate(app: web.Application, token: str) -> Principal | None:
    """The caller, from the Redis cache, else from the session record in MongoDB (Redis away,
    restarted empty, or the cache expired), which is then cached again."""
    kv, digest = app[KV], _token_hash(token)
    redis_up = True
    try:
        fields = await kv.redis.hgetall(kv.key("token", digest))
        if fields:
            return Principal(
                user_id=text(fields[b"user_id"]), role=text(fields[b"role"]), token_hash=digest
            )
    except _REDIS_AWAY:
        redis_up = False
    session = await storage.find_session(app[DB], digest, datetime.now(UTC))
    if session is None:
        return None
    if redis_up:
        left = int((session["expires_at"] - datetime.now(UTC)).total_seconds())
        with contextlib.suppress(*_REDIS_AWAY):
            await _cache(
                kv,
                digest,
                user_id=session["user_id"],
                role=session["role"],
                seconds=max(1, min(CACHE_SECONDS, left)),
            )
    return Principal(user_id=session["user_id"], role=session["role"], token_hash=digest)


async def account_erased(app: web.Application, token: str) -> bool:
    """Whether the token belonged to an account deleted within the last day."""
    return await storage.was_erased(app[DB], _token_hash(token), datetime.now(UTC))


async def revoke_token(db: AsyncDatabase, kv: Kv, principal: Principal) -> None:
    """Sign out: the record goes first (it decides), then the cached copy."""
    await storage.delete_session(db, principal.token_hash)
    with contextlib.suppress(*_REDIS_AWAY):
        await kv.redis.delete(kv.key("token", principal.token_hash))
        await kv.redis.srem(kv.key("user_tokens", principal.user_id), principal.token_hash)


# How long a deleted account's tokens are remembered as such: a retry of the deletion within
# it is answered 204 again instead of 401.
ERASED_MARK_SECONDS = 24 * 3600


async def revoke_all_tokens(
    db: AsyncDatabase, kv: Kv, user_id: str, *, account_erased: bool = False
) -> None:
    if account_erased:
        keep_until = datetime.now(UTC) + timedelta(seconds=ERASED_MARK_SECONDS)
        await storage.mark_sessions_erased(db, user_id, keep_until)
    else:
        await storage.delete_sessions_of(db, user_id)
    index = kv.key("user_tokens", user_id)
    with contextlib.suppress(*_REDIS_AWAY):
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
