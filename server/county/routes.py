"""HTTP routes of the county: its townships (public), census margins and targets (admins
write, analysts read)."""

from __future__ import annotations

from aiohttp import web

from server.county import service as county
from server.county.models import CensusPut, TargetPut
from server.kernel.http import caller_id, endpoint, json_response
from server.kernel.keys import DB
from server.kernel.models import ApiModel, Page, PageQuery

ADMIN = ("admin",)
ANALYST = ("analyst", "admin")


class TownshipRead(ApiModel):
    code: str
    name: str


class TownshipPage(Page[TownshipRead]):
    pass


@endpoint(roles="public", query=PageQuery, response=TownshipPage, tag="county")
async def list_townships(request: web.Request, *, query: PageQuery) -> web.Response:
    """List the county's townships and subdistricts."""
    items, total = await county.list_townships(
        request.app[DB], skip=query.skip, limit=query.page_size
    )
    return json_response(
        {"items": items, "total": total, "page": query.page, "page_size": query.page_size}
    )


@endpoint(roles=ADMIN, body=CensusPut, tag="association")
async def put_census(request: web.Request, *, body: CensusPut) -> web.Response:
    """Replace the census margins (township × age band × gender, optionally × education)."""
    stored = await county.replace_census(request.app[DB], body.rows, actor=caller_id(request))
    return json_response(stored)


@endpoint(roles=ANALYST, tag="association")
async def get_census(request: web.Request) -> web.Response:
    """Summarise the census margins currently loaded."""
    return json_response(county.summary(await county.census(request.app[DB])))


@endpoint(roles=ADMIN, body=TargetPut, tag="association")
async def put_target(request: web.Request, *, body: TargetPut) -> web.Response:
    """Set the plan's literate-share target for a year."""
    result = await county.set_target(
        request.app[DB], year=body.year, share=body.literate_share, actor=caller_id(request)
    )
    return json_response(result)


@endpoint(roles=ANALYST, tag="association")
async def get_targets(request: web.Request) -> web.Response:
    """List the targets by year."""
    return json_response({"targets": await county.targets_list(request.app[DB])})


def setup(app: web.Application, api: str) -> None:
    app.router.add_get(f"{api}/townships", list_townships)
    app.router.add_put(f"{api}/admin/census", put_census)
    app.router.add_get(f"{api}/admin/census", get_census)
    app.router.add_put(f"{api}/admin/targets", put_target)
    app.router.add_get(f"{api}/admin/targets", get_targets)
