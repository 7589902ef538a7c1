"""The only place that queries MongoDB for calibration jobs.

A job is one document in `irt_jobs` (status queued → running → done | failed). One
calibration runs at a time across all app processes: the runner holds the lease document
`irt_lease` (taken by a conditional upsert: a second taker meets the unique `_id` and loses)
and renews it while it works; a lease not renewed within LEASE means its holder died, and the
job it was running is reported as interrupted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.kernel import store

Document = dict[str, Any]
JOBS = "irt_jobs"
LEASE_COLLECTION = "irt_lease"
LEASE_ID = "calibration"


async def insert_job(db: AsyncDatabase, job: Document) -> None:
    await db[JOBS].insert_one(job)


async def get_job(db: AsyncDatabase, job_id: str) -> Document | None:
    return await db[JOBS].find_one({"_id": job_id})


async def update_job(db: AsyncDatabase, job_id: str, fields: Document) -> None:
    await db[JOBS].update_one({"_id": job_id}, {"$set": fields})


async def delete_job(db: AsyncDatabase, job_id: str) -> None:
    await db[JOBS].delete_one({"_id": job_id, "status": "queued"})


async def latest_job(db: AsyncDatabase) -> Document | None:
    """The newest job, in whatever state."""
    cursor = store.find(db[JOBS], {}).sort("created_at", DESCENDING).limit(1)
    found = await cursor.to_list()
    return found[0] if found else None


async def take_lease(db: AsyncDatabase, job_id: str, now: datetime, lease: timedelta) -> bool:
    """Hold the calibration lease for this job if it is free or its holder stopped renewing."""
    try:
        await db[LEASE_COLLECTION].find_one_and_update(
            {"_id": LEASE_ID, "expires_at": {"$lt": now}},
            {"$set": {"job_id": job_id, "expires_at": now + lease}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return False  # held by a live runner: the upsert met the existing document
    return True


async def renew_lease(db: AsyncDatabase, job_id: str, now: datetime, lease: timedelta) -> bool:
    result = await db[LEASE_COLLECTION].update_one(
        {"_id": LEASE_ID, "job_id": job_id}, {"$set": {"expires_at": now + lease}}
    )
    return result.matched_count == 1


async def release_lease(db: AsyncDatabase, job_id: str) -> None:
    await db[LEASE_COLLECTION].delete_one({"_id": LEASE_ID, "job_id": job_id})


async def lease_holder(db: AsyncDatabase, now: datetime) -> str | None:
    """The job id of the live runner, if any."""
    doc = await db[LEASE_COLLECTION].find_one({"_id": LEASE_ID, "expires_at": {"$gte": now}})
    return str(doc["job_id"]) if doc else None
