"""HTTP routes of the scoring domain: townships, residents' quizzes, history, rankings."""

from __future__ import annotations

from aiohttp import web

from scoring import service, storage
from scoring.models import (
    LeaderboardQuery,
    QuizOut,
    QuizResult,
    QuizStart,
    QuizSubmit,
    TownshipRankingQuery,
)
from server import users
from server.http import endpoint, json_response
from server.keys import (
    ARTICLES,
    ATTEMPT_WRITER,
    BANK,
    CELL_WRITER,
    DB,
    ITEM_STATS,
    KV,
    PRINCIPAL,
    SETTINGS,
)
from server.models import ApiModel, Page, PageQuery
from server.settings import quiz_signing_key

RESIDENT = ("resident",)


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


def quiz_context(app: web.Application) -> service.QuizContext:
    settings = app[SETTINGS]
    return service.QuizContext(
        db=app[DB],
        kv=app[KV],
        bank=app[BANK],
        writer=app[ATTEMPT_WRITER],
        key=quiz_signing_key(settings),
        contest_window=settings.contest_window,
        partial_credit=settings.multiple_choice_partial_credit,
        item_stats=app[ITEM_STATS],
        articles=app[ARTICLES],
        cells=app[CELL_WRITER],
    )


async def _resident(request: web.Request) -> dict[str, object]:
    principal = request[PRINCIPAL]
    assert principal is not None
    return await users.resident_for_quiz(
        request.app[DB], request.app[KV], user_id=principal.user_id
    )


@endpoint(roles=RESIDENT, body=QuizStart, response=QuizOut, status=201, tag="quizzes")
async def start_quiz(request: web.Request, *, body: QuizStart) -> web.Response:
    """Start a quiz (daily, practice, contest); answers stay on the server."""
    quiz = await service.start_quiz(
        quiz_context(request.app),
        user=await _resident(request),
        mode=body.mode,
        topic=body.topic,
        channel=body.channel,
    )
    return json_response(quiz, status=201)


@endpoint(roles=RESIDENT, body=QuizSubmit, response=QuizResult, tag="quizzes")
async def submit_quiz(request: web.Request, *, body: QuizSubmit) -> web.Response:
    """Submit answers; a repeated submit returns the first result unchanged."""
    result = await service.submit_quiz(
        quiz_context(request.app),
        user=await _resident(request),
        quiz_id=request.match_info["quiz_id"],
        answers=body.answers,
    )
    return json_response(result)


@endpoint(roles=RESIDENT, query=PageQuery, tag="quizzes")
async def my_attempts(request: web.Request, *, query: PageQuery) -> web.Response:
    """The resident's own submitted quizzes, newest first."""
    user = await _resident(request)
    docs, total = await storage.user_attempts(
        request.app[DB], str(user["_id"]), skip=query.skip, limit=query.page_size
    )
    items = [
        {
            **doc["response"],
            "mode": doc["mode"],
            "topic": doc.get("topic"),
            "submitted_at": doc["submitted_at"].isoformat(),
        }
        for doc in docs
    ]
    return json_response(
        {"items": items, "total": total, "page": query.page, "page_size": query.page_size}
    )


@endpoint(roles=("resident", "analyst"), query=LeaderboardQuery, tag="quizzes")
async def leaderboard(request: web.Request, *, query: LeaderboardQuery) -> web.Response:
    """Points leaderboard for the county or a township, by week, month or all time."""
    principal = request[PRINCIPAL]
    assert principal is not None
    user: dict[str, object] = {"_id": principal.user_id, "profile": {}}
    if principal.role == "resident":
        user = await _resident(request)
    board = await service.leaderboard(
        quiz_context(request.app),
        user=user,
        scope=query.scope,
        period=query.period,
        township=query.township,
        skip=query.skip,
        limit=query.page_size,
    )
    return json_response({**board, "page": query.page, "page_size": query.page_size})


@endpoint(roles=("resident", "analyst"), query=TownshipRankingQuery, tag="quizzes")
async def township_ranking(request: web.Request, *, query: TownshipRankingQuery) -> web.Response:
    """Townships ranked by participants per 1,000 residents in the period."""
    rows = await service.township_ranking(
        quiz_context(request.app), period=query.period, populations={}
    )
    return json_response(
        {
            "items": rows,
            "total": len(rows),
            "page": 1,
            "page_size": len(rows),
            "period": query.period,
        }
    )


def setup(app: web.Application, api: str) -> None:
    app.router.add_get(f"{api}/townships", list_townships)
    app.router.add_post(f"{api}/quizzes", start_quiz)
    app.router.add_post(f"{api}/quizzes/{{quiz_id}}/submit", submit_quiz)
    app.router.add_get(f"{api}/me/attempts", my_attempts)
    app.router.add_get(f"{api}/leaderboards", leaderboard)
    app.router.add_get(f"{api}/leaderboards/townships", township_ranking)
