"""HTTP routes for the association's statistics: literacy estimates, participation, trend
and the xlsx report (analysts and admins)."""

from __future__ import annotations

from aiohttp import web

from scoring.statistics import export
from scoring.statistics import service as estimates
from scoring.statistics.keys import ESTIMATES
from scoring.statistics.models import ExportQuery, LiteracyQuery, ParticipationQuery, TrendQuery
from server.kernel.audit import record_request
from server.kernel.http import endpoint, json_response
from server.kernel.keys import DB
from server.kernel.models import PageQuery

ANALYST = ("analyst", "admin")


@endpoint(roles=ANALYST, query=LiteracyQuery, tag="association")
async def literacy(request: web.Request, *, query: LiteracyQuery) -> web.Response:
    """Literate share (ages 18–69) by township, group or county, with 95% intervals."""
    app = request.app
    body = await estimates.literacy(
        app[DB], app[ESTIMATES], by=query.by, period=query.period, group=query.group
    )
    return json_response(body)


@endpoint(roles=ANALYST, query=ParticipationQuery, tag="association")
async def participation(request: web.Request, *, query: ParticipationQuery) -> web.Response:
    """Respondents per 1,000 residents by township, or by channel (self, campaign codes,
    assisted, paper)."""
    app = request.app
    body = await estimates.participation(app[DB], app[ESTIMATES], period=query.period, by=query.by)
    return json_response({**body, **query.page_of(body.pop("items"))})


@endpoint(roles=ANALYST, query=TrendQuery, tag="association", errors=(404,))
async def trend(request: web.Request, *, query: TrendQuery) -> web.Response:
    """Month-by-month literate share of the county or one township."""
    app = request.app
    body = await estimates.trend(app[DB], app[ESTIMATES], township=query.township, year=query.year)
    return json_response(body)


@endpoint(roles=ANALYST, query=PageQuery, tag="association")
async def periods(request: web.Request, *, query: PageQuery) -> web.Response:
    """Periods (years and months) that have assessments, newest first."""
    return json_response(query.page_of(await estimates.periods(request.app[DB])))


@endpoint(roles=ANALYST, query=ExportQuery, tag="association")
async def export_report(request: web.Request, *, query: ExportQuery) -> web.Response:
    """Download the report for the county government (xlsx, Chinese headers)."""
    app = request.app
    content, period = await export.report(app[DB], app[ESTIMATES], period=query.period)
    await record_request(request, action="download", subject="literacy_report", detail=period)
    return web.Response(
        body=content,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="literacy-report-{period}.xlsx"'},
    )


def setup(app: web.Application, api: str) -> None:
    app.router.add_get(f"{api}/stats/literacy", literacy)
    app.router.add_get(f"{api}/stats/participation", participation)
    app.router.add_get(f"{api}/stats/trend", trend)
    app.router.add_get(f"{api}/stats/periods", periods)
    app.router.add_get(f"{api}/stats/export", export_report)
