"""HTTP routes of the scoring domain: townships, residents' quizzes, history, rankings."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from content import service as content_service
from content.keys import ARTICLES
from question_bank.keys import BANK
from scoring.quizzes import adaptive_mode, flow, offline_mode, service
from scoring.quizzes.keys import ATTEMPT_WRITER, LEADERBOARDS
from scoring.quizzes.models import (
    BatchResult,
    BatchSubmit,
    LeaderboardQuery,
    OfflinePack,
    OfflinePackRequest,
    QuizOut,
    QuizResult,
    QuizStart,
    QuizSubmit,
    StepAnswer,
    StepResult,
    TownshipRankingQuery,
)
from server.accounts import service as users
from server.accounts.keys import on_erase, on_export
from server.kernel.http import caller_id, endpoint, json_response
from server.kernel.keys import DB, KV, PRINCIPAL, SETTINGS
from server.kernel.models import PageQuery, whole_page
from server.kernel.pseudonyms import client_paradata
from server.kernel.settings import previous_quiz_signing_keys, quiz_signing_key

RESIDENT = ("resident",)


def quiz_context(app: web.Application) -> flow.QuizContext:
    settings = app[SETTINGS]
    return flow.QuizContext(
        db=app[DB],
        kv=app[KV],
        bank=app[BANK],
        writer=app[ATTEMPT_WRITER],
        signing_key=quiz_signing_key(settings),
        contest_window=settings.contest_window,
        partial_credit=settings.multiple_choice_partial_credit,
        articles=app[ARTICLES],
        boards=app[LEADERBOARDS],
        previous_keys=previous_quiz_signing_keys(settings),
    )


async def _resident(request: web.Request) -> dict[str, object]:
    principal = request[PRINCIPAL]
    assert principal is not None
    return await users.resident_for_quiz(
        request.app[DB], request.app[KV], user_id=principal.user_id
    )


@endpoint(
    roles=RESIDENT, body=QuizStart, response=QuizOut, status=201, tag="quizzes", errors=(404, 409)
)
async def start_quiz(request: web.Request, *, body: QuizStart) -> web.Response:
    """Start a quiz (daily, practice, contest, assessment, or adaptive practice, which gives
    one question at a time); answers stay on the server."""
    quiz = await service.start_quiz(
        quiz_context(request.app),
        user=await _resident(request),
        mode=body.mode,
        topic=body.topic,
        channel=body.channel,
    )
    return json_response(quiz, status=201)


@endpoint(roles=RESIDENT, body=QuizSubmit, response=QuizResult, tag="quizzes", errors=(409,))
async def submit_quiz(request: web.Request, *, body: QuizSubmit) -> web.Response:
    """Submit answers; a repeated submit returns the first result unchanged."""
    result = await service.submit_quiz(
        quiz_context(request.app),
        user=await _resident(request),
        quiz_id=request.match_info["quiz_id"],
        answers=body.answers,
        client=client_paradata(request),
    )
    return json_response(result)


@endpoint(
    roles=RESIDENT,
    body=OfflinePackRequest,
    response=OfflinePack,
    status=201,
    tag="quizzes",
    errors=(404, 409),
)
async def offline_pack(request: web.Request, *, body: OfflinePackRequest) -> web.Response:
    """Practice quizzes to answer without a connection, valid for seven days (never an
    assessment); submit them later with batch-submit."""
    pack = await offline_mode.pack(
        quiz_context(request.app),
        user=await _resident(request),
        count=body.count,
        topic=body.topic,
        now=datetime.now(UTC),
    )
    return json_response(pack, status=201)


@endpoint(roles=RESIDENT, body=BatchSubmit, response=BatchResult, tag="quizzes", errors=(404,))
async def batch_submit(request: web.Request, *, body: BatchSubmit) -> web.Response:
    """Submit quizzes answered offline, each once: a result per submission, in order
    (accepted, duplicate with the stored result, or rejected with the reason)."""
    results = await offline_mode.batch_submit(
        quiz_context(request.app),
        user=await _resident(request),
        submissions=body.submissions,
        client=client_paradata(request),
    )
    return json_response({"results": results})


@endpoint(roles=RESIDENT, body=StepAnswer, response=StepResult, tag="quizzes", errors=(409,))
async def answer_step(request: web.Request, *, body: StepAnswer) -> web.Response:
    """Answer the current question of an adaptive practice; a repeat of a step gets the
    first answer's result."""
    result = await adaptive_mode.answer(
        quiz_context(request.app),
        user=await _resident(request),
        quiz_id=request.match_info["quiz_id"],
        question_id=body.question_id,
        choice=body.choice,
    )
    return json_response(result)


@endpoint(roles=RESIDENT, query=PageQuery, tag="quizzes", errors=(404,))
async def my_attempts(request: web.Request, *, query: PageQuery) -> web.Response:
    """The resident's own submitted quizzes, newest first."""
    user = await _resident(request)
    items, total = await service.attempts_of(
        quiz_context(request.app), user_id=str(user["_id"]), skip=query.skip, limit=query.page_size
    )
    return json_response(
        {"items": items, "total": total, "page": query.page, "page_size": query.page_size}
    )


@endpoint(roles=("resident", "analyst"), query=LeaderboardQuery, tag="quizzes", errors=(404,))
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
    return json_response({**whole_page(rows), "period": query.period})


# Quiz history meets articles here (scoring already depends on content, not the reverse).
@endpoint(roles=RESIDENT, tag="articles", errors=(404,))
async def for_you(request: web.Request) -> web.Response:
    """Articles for the resident's recent mistakes and group, each with the reason."""
    app = request.app
    resident = await users.resident_for_quiz(app[DB], app[KV], user_id=caller_id(request))
    weak = await service.weak_topics(app[KV], user_id=caller_id(request))
    read = await content_service.read_by(app[KV], caller_id(request))
    items = content_service.recommend(
        app[ARTICLES],
        wrong=dict.fromkeys(weak, 1),
        group=resident["profile"].get("group"),
        read=read,
        limit=6,
    )
    for item in items:
        if item["reason"].startswith("你在"):
            item["reason"] = f"你最近在「{item['topics'][0]}」方面有答错的题"
    return json_response(whole_page(items))


async def _forget_resident(app: web.Application, user_id: str) -> None:
    await service.forget_resident(quiz_context(app), user_id=user_id)


async def _export_resident(app: web.Application, user_id: str) -> tuple[str, object]:
    return "attempts", await service.export_attempts(quiz_context(app), user_id=user_id)


def setup(app: web.Application, api: str) -> None:
    on_erase(app, _forget_resident)
    on_export(app, _export_resident)
    app.router.add_post(f"{api}/quizzes", start_quiz)
    app.router.add_get(f"{api}/articles/for-you", for_you)
    app.router.add_post(f"{api}/quizzes/offline-pack", offline_pack)
    app.router.add_post(f"{api}/quizzes/batch-submit", batch_submit)
    app.router.add_post(f"{api}/quizzes/{{quiz_id}}/submit", submit_quiz)
    app.router.add_post(f"{api}/quizzes/{{quiz_id}}/answer", answer_step)
    app.router.add_get(f"{api}/me/attempts", my_attempts)
    app.router.add_get(f"{api}/leaderboards", leaderboard)
    app.router.add_get(f"{api}/leaderboards/townships", township_ranking)
