"""HTTP routes of the integrity review: the flags with their evidence, the reviewers'
decisions (analysts and admins; audited, reversible), the township-week jumps, and a
screening pass on demand."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from scoring.integrity import service
from scoring.integrity.keys import SCREENING
from scoring.integrity.models import (
    Decision,
    FlagOut,
    FlagPage,
    FlagQuery,
    JumpPage,
    JumpQuery,
    ScreenSummary,
)
from server.accounts.keys import on_erase
from server.kernel.audit import record_request
from server.kernel.http import caller_id, endpoint, json_response
from server.kernel.keys import DB
from server.kernel.models import whole_page

REVIEWERS = ("analyst", "admin")


@endpoint(roles=REVIEWERS, query=FlagQuery, response=FlagPage, tag="integrity")
async def list_flags(request: web.Request, *, query: FlagQuery) -> web.Response:
    """Flagged assessments with their reasons and evidence, strongest first."""
    items, total = await service.list_flags(
        request.app[DB],
        period=query.period,
        township=query.township,
        status=query.status,
        strong=query.strong,
        skip=query.skip,
        limit=query.page_size,
    )
    return json_response(query.page_of(items, total))


@endpoint(roles=REVIEWERS, response=FlagOut, tag="integrity", errors=(404,))
async def get_flag(request: web.Request) -> web.Response:
    """One flag with its evidence and every decision taken on it."""
    return json_response(await service.flag(request.app[DB], request.match_info["flag_id"]))


@endpoint(roles=REVIEWERS, body=Decision, response=FlagOut, tag="integrity", errors=(404,))
async def decide(request: web.Request, *, body: Decision) -> web.Response:
    """Exclude the flagged assessment from the literacy figures, or keep it in. A later
    decision replaces this one (an excluded assessment comes back when kept)."""
    flag_id = request.match_info["flag_id"]
    flag = await service.decide(
        request.app[DB],
        flag_id,
        decision=body.decision,
        reason=body.reason,
        actor=caller_id(request),
    )
    await record_request(
        request, action="integrity_decision", subject=f"flag:{flag_id}", detail=body.model_dump()
    )
    return json_response(flag)


@endpoint(roles=REVIEWERS, query=JumpQuery, response=JumpPage, tag="integrity")
async def township_jumps(request: web.Request, *, query: JumpQuery) -> web.Response:
    """Township-weeks whose participation or mean score jumped far above their history."""
    items = await service.jumps(request.app[DB], township=query.township)
    return json_response(whole_page(items))


@endpoint(roles=REVIEWERS, response=ScreenSummary, tag="integrity", errors=(409,))
async def screen_now(request: web.Request) -> web.Response:
    """Run the nightly screening now (the last 7 days, and the township-week jumps); 409
    while a screening pass runs in any process."""
    summary = await service.screen_now(
        request.app[DB], request.app[SCREENING].owner, datetime.now(UTC)
    )
    await record_request(
        request, action="integrity_screen", subject="flags", detail=summary.as_dict()
    )
    return json_response(summary.as_dict())


async def _forget_resident(app: web.Application, user_id: str) -> None:
    await service.forget_resident(app[DB], user_id)


def setup(app: web.Application, api: str) -> None:
    on_erase(app, _forget_resident)
    base = f"{api}/admin/integrity"
    app.router.add_get(f"{base}/flags", list_flags)
    app.router.add_get(f"{base}/flags/{{flag_id}}", get_flag)
    app.router.add_post(f"{base}/flags/{{flag_id}}/decision", decide)
    app.router.add_get(f"{base}/jumps", township_jumps)
    app.router.add_post(f"{base}/screen", screen_now)
