"""Rules of accounts: staff (username + password, with a lockout) and residents (WeChat
openid), profiles, erasure, and the resident's profile as quiz traffic reads it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase

from server.accounts import storage
from server.accounts import tokens as auth
from server.county.periods import COUNTY_TZ
from server.kernel.errors import Conflict, NotFound, RateLimited, ServiceUnavailable, Unauthorized
from server.kernel.kv import Kv

Document = dict[str, Any]

LOGIN_FAILURE_LIMIT = 5
LOGIN_WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
PROFILE_CACHE_SECONDS = 24 * 3600
_REDIS_AWAY = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


async def get(db: AsyncDatabase, *, user_id: str) -> Document | None:
    user = await storage.get(db, user_id)
    return user if user is not None and not user.get("deleted_at") else None


async def get_or_raise(db: AsyncDatabase, *, user_id: str) -> Document:
    user = await get(db, user_id=user_id)
    if user is None:
        raise NotFound("用户不存在")
    return user


async def create_staff(
    db: AsyncDatabase, *, username: str, password: str, role: str, extra: Document | None = None
) -> str:
    """A staff account; `extra` holds a role's own fields (a helper's townships and limit)."""
    doc = {
        "username": username,
        "username_lower": username.lower(),
        "password_hash": await auth.hash_password(password),
        "role": role,
        "created_at": datetime.now(UTC),
        "deleted_at": None,
        **(extra or {}),
    }
    user_id = await storage.insert(db, doc)
    if user_id is None:
        raise Conflict(f"用户名 {username} 已存在", code="username_taken")
    return user_id


async def login_staff(
    db: AsyncDatabase, kv: Kv, *, username: str, password: str, ttl_seconds: int
) -> tuple[Document, auth.IssuedToken]:
    """Check credentials with a lockout after repeated failures; the same 401 whether or not
    the user exists."""
    name = username.lower()
    lock_ttl = await storage.lock_seconds_left(kv, name)
    if lock_ttl > 0:
        raise RateLimited(
            lock_ttl, "登录失败次数过多，账号已临时锁定，请 15 分钟后再试", code="account_locked"
        )
    user = await storage.staff_by_name(db, name)
    stored = user.get("password_hash") if user else None
    if user is None or not await auth.verify_password(password, stored):
        failures = await storage.count_failure(kv, name, window=LOGIN_WINDOW_SECONDS)
        if failures >= LOGIN_FAILURE_LIMIT:
            await storage.lock(kv, name, seconds=LOCK_SECONDS)
        raise Unauthorized("用户名或密码错误", code="invalid_credentials")
    await storage.clear_failures(kv, name)
    token = await auth.issue_token(
        db, kv, user_id=str(user["_id"]), role=user["role"], ttl_seconds=ttl_seconds
    )
    return user, token


def public_view(user: Document) -> Document:
    view: Document = {"id": str(user["_id"]), "role": user["role"]}
    if "username" in user:
        view["username"] = user["username"]
    return view


def export_view(user: Document) -> Document:
    """The account as its owner may see it: no token, session key or password hash; the WeChat
    ids are named only as linked (they are WeChat's identifiers of the person, not ours)."""
    return {
        "id": str(user["_id"]),
        "role": user["role"],
        "created_at": _iso(user.get("created_at")),
        "last_login_at": _iso(user.get("last_login_at")),
        "profile": user.get("profile") or {},
        "profile_updated_at": _iso(user.get("profile_updated_at")),
        "wechat_linked": bool(user.get("openid")),
        "consents": [
            {"version": c["version"], "at": _iso(c["at"])} for c in user.get("consents") or []
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# ------------------------------------------------------------------ residents


async def upsert_resident(
    db: AsyncDatabase, *, openid: str, unionid: str | None
) -> tuple[Document, bool]:
    """Find the resident by openid or create them; True when new. Nothing but the ids WeChat
    gives is kept (no session_key, no nickname)."""
    at = datetime.now(UTC)
    on_insert = {"role": "resident", "created_at": at, "deleted_at": None, "profile": {}}
    every_login: Document = {"last_login_at": at, **({"unionid": unionid} if unionid else {})}
    try:
        return await storage.upsert_by_openid(
            db, openid, on_insert=on_insert, on_every_login=every_login
        )
    except LookupError:  # the account was erased in the very same instant
        raise ServiceUnavailable("请稍后重试") from None


# Printed on a resident's card and typed into spreadsheets: no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
CODE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 8


def new_resident_code() -> str:
    """ "XXXX-XXXX" from CODE_ALPHABET (25^8 ≈ 1.5e11 codes: collisions are retried)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_resident_code(text: str) -> str:
    """A code as typed (lower case, spaces, no dash) in its printed form."""
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == CODE_LENGTH else text.strip().upper()


async def register_assisted_resident(
    db: AsyncDatabase, *, profile: Document, helper_id: str, consent: Document
) -> Document:
    """A resident without WeChat, registered by a helper: a pseudonymous code and the
    profile, no name or phone; the oral consent the helper noted is kept with who noted it."""
    at = datetime.now(UTC)
    for _ in range(5):
        doc = {
            "role": "resident",
            "resident_code": new_resident_code(),
            "registered_by": helper_id,
            "created_at": at,
            "deleted_at": None,
            "profile": profile,
            "profile_updated_at": at,
            "consents": [{**consent, "at": at, "noted_by": helper_id}],
        }
        if await storage.insert(db, doc) is not None:
            return doc
    raise ServiceUnavailable("生成居民编号失败，请重试")


async def assisted_resident(db: AsyncDatabase, code: str) -> Document | None:
    return await storage.by_resident_code(db, normalise_resident_code(code))


async def assisted_residents(
    db: AsyncDatabase, townships: list[str] | None, *, skip: int, limit: int
) -> tuple[list[Document], int]:
    return await storage.assisted_residents(db, townships, skip=skip, limit=limit)


async def helpers(db: AsyncDatabase) -> list[Document]:
    return await storage.staff_with_role(db, "helper")


async def set_helper_scope(db: AsyncDatabase, user_id: str, fields: Document) -> Document:
    helper = await storage.set_helper_scope(db, user_id, fields)
    if helper is None:
        raise NotFound("没有这个协助员")
    return helper


MINOR_BELOW_AGE = 14  # PIPL: personal information of a child under 14 is sensitive


def is_minor(birth_year: int) -> bool:
    """Possibly under 14, from the birth year alone: someone who turns 14 this year may not
    have had their birthday yet, so they count as a minor until the year is out."""
    return datetime.now(COUNTY_TZ).year - birth_year <= MINOR_BELOW_AGE


def privacy_view(user: Document, current_version: str) -> Document:
    consents = user.get("consents") or []
    accepted = consents[-1]["version"] if consents else None
    return {
        "current_version": current_version,
        "accepted_version": accepted,
        "accepted": accepted == current_version,
    }


async def update_profile(
    db: AsyncDatabase, *, user_id: str, profile: Document, consent_version: str | None = None
) -> Document:
    """Set the profile; with `consent_version`, also record that the resident accepted that
    privacy notice (every acceptance is kept, with its time)."""
    user = await storage.set_profile(db, user_id, profile, datetime.now(UTC), consent_version)
    if user is None:
        raise NotFound("用户不存在")
    return user


async def erase_resident(db: AsyncDatabase, kv: Kv, *, user_id: str) -> None:
    """Erase personal data: the account keeps no openid, unionid or profile, and every
    token is revoked. (Other domains forget the resident through their erase hooks.)"""
    await storage.erase(db, user_id, datetime.now(UTC))
    await auth.revoke_all_tokens(db, kv, user_id, account_erased=True)
    await cache_profile(kv, user_id=user_id, profile=None)


# ------------------------------------------------------------------ resident cache (Redis)


async def resident_for_quiz(db: AsyncDatabase, kv: Kv, *, user_id: str) -> Document:
    """The resident's id and profile for quiz traffic, from Redis (filled from MongoDB on a
    miss), so starting a quiz needs no database round-trip."""
    try:
        cached = await storage.cached_profile(kv, user_id)
    except _REDIS_AWAY:
        cached = None
    if cached is not None:
        return {"_id": user_id, "profile": cached}
    user = await get_or_raise(db, user_id=user_id)
    await cache_profile(kv, user_id=user_id, profile=user.get("profile") or {})
    return {"_id": user_id, "profile": user.get("profile") or {}}


async def cache_profile(kv: Kv, *, user_id: str, profile: Document | None) -> None:
    try:
        await storage.cache_profile(kv, user_id, profile, ttl=PROFILE_CACHE_SECONDS)
    except _REDIS_AWAY:
        pass  # the cache fills itself again from MongoDB
