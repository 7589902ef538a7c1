"""Who read or downloaded personal data or published figures, and when (PIPL; MLPS 2.0 asks
for such records to be kept at least six months). One record per access, never updated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from server.kernel.keys import DB, PRINCIPAL

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


async def record_request(
    request: web.Request, *, action: str, subject: str, detail: Any = None
) -> None:
    """Record an access by the request's signed-in caller (downloads, exports, erasure)."""
    principal = request[PRINCIPAL]
    assert principal is not None
    await record_access(
        request.app[DB],
        actor=principal.user_id,
        role=principal.role,
        action=action,
        subject=subject,
        detail=detail,
    )
