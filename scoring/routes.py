"""HTTP routes of the scoring domain: the county's township list."""

from __future__ import annotations

from aiohttp import web

from scoring import storage
from server.http import endpoint, json_response
from server.keys import DB
from server.models import ApiModel, Page, PageQuery


class TownshipRead(ApiModel):
    code: str
    name: str


class TownshipPage(Page[TownshipRead]):
    pass


@endpoint(roles="public", query=PageQuery, response=TownshipPage, tag="county")
async def list_townships(request: web.Request, *, query: PageQuery) -> web.Response:
    """List the county's townships and subdistricts."""
    items, total = await storage.list_townships(
        request.app[DB], skip=query.skip, limit=query.page_size
    )
    return json_response(
        {"items": items, "total": total, "page": query.page, "page_size": query.page_size}
    )


def setup(app: web.Application, api: str) -> None:
    app.router.add_get(f"{api}/townships", list_townships)
