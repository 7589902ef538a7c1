"""The only place with queries of accounts: users in MongoDB (staff by username, residents
by WeChat openid, both unique indexes), sessions (the tokens' digests) in MongoDB, login
failures and cached resident profiles in Redis."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.kernel.kv import Kv

Document = dict[str, Any]
USERS = "users"
SESSIONS = "sessions"


def to_object_id(value: str) -> ObjectId | None:
    return ObjectId(value) if ObjectId.is_valid(value) else None


async def get(db: AsyncDatabase, user_id: str) -> Document | None:
    oid = to_object_id(user_id)
    return None if oid is None else await db[USERS].find_one({"_id": oid})


async def insert(db: AsyncDatabase, doc: Document) -> str | None:
    """Insert a user; None if the username is taken (unique index)."""
    try:
        result = await db[USERS].insert_one(doc)
    except DuplicateKeyError:
        return None
    return str(result.inserted_id)


async def by_resident_code(db: AsyncDatabase, code: str) -> Document | None:
    return await db[USERS].find_one({"resident_code": code, "deleted_at": None})


async def assisted_residents(
    db: AsyncDatabase, townships: list[str] | None, *, skip: int, limit: int
) -> tuple[list[Document], int]:
    """Residents registered by helpers, in these townships (None: all), newest first."""
    query: Document = {"resident_code": {"$exists": True}, "deleted_at": None}
    if townships is not None:
        query["profile.township_code"] = {"$in": townships}
    total = await db[USERS].count_documents(query)
    cursor = db[USERS].find(query).sort([("created_at", -1), ("_id", -1)]).skip(skip).limit(limit)
    return await cursor.to_list(), total


async def staff_with_role(db: AsyncDatabase, role: str) -> list[Document]:
    cursor = db[USERS].find({"role": role, "deleted_at": None}, {"password_hash": 0})
    return await cursor.sort("username_lower", 1).to_list()


async def set_helper_scope(db: AsyncDatabase, user_id: str, fields: Document) -> Document | None:
    return await db[USERS].find_one_and_update(
        {"_id": to_object_id(user_id), "role": "helper", "deleted_at": None},
        {"$set": fields},
        projection={"password_hash": 0},
        return_document=ReturnDocument.AFTER,
    )


async def staff_by_name(db: AsyncDatabase, username_lower: str) -> Document | None:
    return await db[USERS].find_one({"username_lower": username_lower, "deleted_at": None})


async def upsert_by_openid(
    db: AsyncDatabase, openid: str, *, on_insert: Document, on_every_login: Document
) -> tuple[Document, bool]:
    """The resident with this openid, created if new (True). Of simultaneous first logins
    exactly one creates the account: the openid's unique index refuses the others, which
    then read the account that won (MongoDB may also retry such an upsert itself)."""
    update = {"$setOnInsert": {"openid": openid, **on_insert}, "$set": on_every_login}
    try:
        before = await db[USERS].find_one_and_update({"openid": openid}, update, upsert=True)
    except DuplicateKeyError:
        before = await db[USERS].find_one_and_update({"openid": openid}, {"$set": on_every_login})
    user = await db[USERS].find_one({"openid": openid})
    if user is None:  # erased between the two reads
        raise LookupError(openid)
    return user, before is None


async def set_profile(
    db: AsyncDatabase, user_id: str, profile: Document, at: datetime, consent: str | None
) -> Document | None:
    update: Document = {"$set": {"profile": profile, "profile_updated_at": at}}
    if consent is not None:
        update["$push"] = {"consents": {"version": consent, "at": at}}
    return await db[USERS].find_one_and_update(
        {"_id": to_object_id(user_id), "deleted_at": None},
        update,
        return_document=ReturnDocument.AFTER,
    )


async def erase(db: AsyncDatabase, user_id: str, at: datetime) -> None:
    await db[USERS].update_one(
        {"_id": to_object_id(user_id)},
        {
            "$set": {"deleted_at": at, "profile": {}},
            # The printed code of a resident a helper registered goes too (it is on their card).
            "$unset": {
                "openid": "",
                "unionid": "",
                "last_login_at": "",
                "resident_code": "",
                "registered_by": "",
            },
        },
    )


# ------------------------------------------------------------------ Redis


async def lock_seconds_left(kv: Kv, name: str) -> int:
    return int(await kv.redis.ttl(kv.key("login_lock", name)) or 0)


async def count_failure(kv: Kv, name: str, *, window: int) -> int:
    key = kv.key("login_fail", name)
    failures = int(await kv.redis.incr(key))
    if failures == 1:
        await kv.redis.expire(key, window)
    return failures


async def lock(kv: Kv, name: str, *, seconds: int) -> None:
    await kv.redis.set(kv.key("login_lock", name), "1", ex=seconds)
    await kv.redis.delete(kv.key("login_fail", name))


async def clear_failures(kv: Kv, name: str) -> None:
    await kv.redis.delete(kv.key("login_fail", name))


async def cached_profile(kv: Kv, user_id: str) -> Document | None:
    cached = await kv.redis.get(kv.key("resident", user_id))
    return orjson.loads(cached) if cached else None


async def cache_profile(kv: Kv, user_id: str, profile: Document | None, *, ttl: int) -> None:
    if profile is None:
        await kv.redis.delete(kv.key("resident", user_id))
    else:
        await kv.redis.set(kv.key("resident", user_id), orjson.dumps(profile), ex=ttl)


# ------------------------------------------------------------------ sessions (MongoDB)
# The record of every token (by digest): Redis only caches it, so a token still works while
# Redis is away or after it lost its data. Expired sessions go by a TTL index on MongoDB and
# by the seam's sweep on the embedded server; a lookup ignores them either way.


async def save_session(
    db: AsyncDatabase, digest: str, *, user_id: str, role: str, expires_at: datetime
) -> None:
    await db[SESSIONS].insert_one(
        {"_id": digest, "user_id": user_id, "role": role, "expires_at": expires_at}
    )


async def find_session(db: AsyncDatabase, digest: str, now: datetime) -> Document | None:
    session = await db[SESSIONS].find_one({"_id": digest, "expires_at": {"$gt": now}})
    return None if session is None or session.get("erased") else session


async def was_erased(db: AsyncDatabase, digest: str, now: datetime) -> bool:
    """Whether this token's account was deleted (lately: the mark expires in a day)."""
    found = await db[SESSIONS].find_one({"_id": digest, "expires_at": {"$gt": now}, "erased": True})
    return found is not None


async def mark_sessions_erased(db: AsyncDatabase, user_id: str, keep_until: datetime) -> None:
    """The account's sessions stop authenticating and keep only the token digest and a mark,
    no user id, for at most `keep_until`: a retried deletion is then answered as the first."""
    await db[SESSIONS].update_many(
        {"user_id": user_id},
        {
            "$set": {"erased": True},
            "$unset": {"user_id": "", "role": ""},
            "$min": {"expires_at": keep_until},
        },
    )


async def delete_session(db: AsyncDatabase, digest: str) -> None:
    await db[SESSIONS].delete_one({"_id": digest})


async def delete_sessions_of(db: AsyncDatabase, user_id: str) -> None:
    await db[SESSIONS].delete_many({"user_id": user_id})
