"""Accounts: staff (username + password) and residents (WeChat openid). Storage and rules
for users live here because authentication, which `server/` owns, needs them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import redis.exceptions
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.accounts import tokens as auth
from server.kernel.errors import Conflict, NotFound, RateLimited, Unauthorized
from server.kernel.kv import Kv

Document = dict[str, Any]

LOGIN_FAILURE_LIMIT = 5
LOGIN_WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60


def _users(db: AsyncDatabase) -> Any:
    return db["users"]


def to_object_id(value: str) -> ObjectId | None:
    return ObjectId(value) if ObjectId.is_valid(value) else None


async def get(db: AsyncDatabase, *, user_id: str) -> Document | None:
    oid = to_object_id(user_id)
    if oid is None:
        return None
    user = await _users(db).find_one({"_id": oid})
    return user if user is not None and not user.get("deleted_at") else None


async def get_or_raise(db: AsyncDatabase, *, user_id: str) -> Document:
    user = await get(db, user_id=user_id)
    if user is None:
        raise NotFound("用户不存在")
    return user


async def create_staff(db: AsyncDatabase, *, username: str, password: str, role: str) -> str:
    doc = {
        "username": username,
        "username_lower": username.lower(),
        "password_hash": await auth.hash_password(password),
        "role": role,
        "created_at": datetime.now(UTC),
        "deleted_at": None,
    }
    try:
        result = await _users(db).insert_one(doc)
    except DuplicateKeyError:
        raise Conflict(f"用户名 {username} 已存在", code="username_taken") from None
    return str(result.inserted_id)


async def login_staff(
    db: AsyncDatabase, kv: Kv, *, username: str, password: str, ttl_seconds: int
) -> tuple[Document, auth.IssuedToken]:
    """Check credentials with a lockout after repeated failures; the same 401 whether or not
    the user exists."""
    name = username.lower()
    lock_ttl = await kv.redis.ttl(kv.key("login_lock", name))
    if lock_ttl and lock_ttl > 0:
        raise RateLimited(
            lock_ttl, "登录失败次数过多，账号已临时锁定，请 15 分钟后再试", code="account_locked"
        )
    user = await _users(db).find_one({"username_lower": name, "deleted_at": None})
    stored = user.get("password_hash") if user else None
    if user is None or not await auth.verify_password(password, stored):
        await _record_failure(kv, name)
        raise Unauthorized("用户名或密码错误", code="invalid_credentials")
    await kv.redis.delete(kv.key("login_fail", name))
    token = await auth.issue_token(
        kv, user_id=str(user["_id"]), role=user["role"], ttl_seconds=ttl_seconds
    )
    return user, token


async def _record_failure(kv: Kv, name: str) -> None:
    key = kv.key("login_fail", name)
    failures = await kv.redis.incr(key)
    if failures == 1:
        await kv.redis.expire(key, LOGIN_WINDOW_SECONDS)
    if failures >= LOGIN_FAILURE_LIMIT:
        await kv.redis.set(kv.key("login_lock", name), "1", ex=LOCK_SECONDS)
        await kv.redis.delete(key)


def public_view(user: Document) -> Document:
    view: Document = {"id": str(user["_id"]), "role": user["role"]}
    if "username" in user:
        view["username"] = user["username"]
    return view


# ------------------------------------------------------------------ residents


async def upsert_resident(
    db: AsyncDatabase, *, openid: str, unionid: str | None
) -> tuple[Document, bool]:
    """Find the resident by openid or create them; True when new. Nothing but the ids WeChat
    gives is kept (no session_key, no nickname)."""
    at = datetime.now(UTC)
    update: Document = {
        "$setOnInsert": {
            "openid": openid,
            "role": "resident",
            "created_at": at,
            "deleted_at": None,
            "profile": {},
        },
        "$set": {"last_login_at": at},
    }
    if unionid:
        update["$set"]["unionid"] = unionid
    try:
        before = await _users(db).find_one_and_update({"openid": openid}, update, upsert=True)
    except DuplicateKeyError:  # two first logins at once: the other one created it
        before = await _users(db).find_one({"openid": openid})
    user = await _users(db).find_one({"openid": openid})
    assert user is not None
    return user, before is None


async def update_profile(db: AsyncDatabase, *, user_id: str, profile: Document) -> Document:
    user = await _users(db).find_one_and_update(
        {"_id": to_object_id(user_id), "deleted_at": None},
        {"$set": {"profile": profile, "profile_updated_at": datetime.now(UTC)}},
        return_document=True,
    )
    if user is None:
        raise NotFound("用户不存在")
    return user


async def erase_resident(db: AsyncDatabase, kv: Kv, *, user_id: str) -> None:
    """Erase personal data: the account keeps no openid, unionid or profile, and every
    token is revoked. (The resident's attempts are anonymised by the scoring service.)"""
    oid = to_object_id(user_id)
    await _users(db).update_one(
        {"_id": oid},
        {
            "$set": {"deleted_at": datetime.now(UTC), "profile": {}},
            "$unset": {"openid": "", "unionid": "", "last_login_at": ""},
        },
    )
    await auth.revoke_all_tokens(kv, user_id)
    await cache_profile(kv, user_id=user_id, profile=None)


# ------------------------------------------------------------------ resident cache (Redis)

PROFILE_CACHE_SECONDS = 24 * 3600


async def resident_for_quiz(db: AsyncDatabase, kv: Kv, *, user_id: str) -> Document:
    """The resident's id and profile for quiz traffic, from Redis (filled from MongoDB on a
    miss), so starting a quiz needs no database round-trip."""
    key = kv.key("resident", user_id)
    try:
        cached = await kv.redis.get(key)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        cached = None
    if cached:
        return {"_id": user_id, "profile": orjson.loads(cached)}
    user = await get_or_raise(db, user_id=user_id)
    await cache_profile(kv, user_id=user_id, profile=user.get("profile") or {})
    return {"_id": user_id, "profile": user.get("profile") or {}}


async def cache_profile(kv: Kv, *, user_id: str, profile: Document | None) -> None:
    try:
        if profile is None:
            await kv.redis.delete(kv.key("resident", user_id))
        else:
            await kv.redis.set(
                kv.key("resident", user_id), orjson.dumps(profile), ex=PROFILE_CACHE_SECONDS
            )
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        pass  # the cache fills itself again from MongoDB
