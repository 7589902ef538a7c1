"""Who read or downloaded personal data or published figures, and when (PIPL; MLPS 2.0 asks
for such records to be kept at least six months). One record per access, never updated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

ACCESS_LOG = "access_log"


async def record_access(
    db: AsyncDatabase, *, actor: str, role: str, action: str, subject: str, detail: Any = None
) -> None:
    await db[ACCESS_LOG].insert_one(
        {
            "at": datetime.now(UTC),
            "actor": actor,
            "role": role,
            "action": action,
            "subject": subject,
            "detail": detail,
        }
    )
