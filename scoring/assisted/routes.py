"""HTTP routes of assisted answering: helpers register residents without WeChat, take quizzes
with them, print paper forms and upload the filled sheets (helpers, scoped to their
townships; admins everywhere); admins create helpers and follow their activity."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from scoring.assisted import service
from scoring.assisted.models import (
    AssistedQuizStart,
    AssistedResidentCreate,
    FormsQuery,
    HelperCreate,
    HelperUpdate,
)
from scoring.quizzes.models import QuizOut, QuizResult, QuizSubmit
from scoring.quizzes.routes import quiz_context
from server.accounts import service as users
from server.accounts.keys import ERASE_HOOKS
from server.kernel.audit import record_request
from server.kernel.http import endpoint, json_response, read_upload
from server.kernel.keys import DB, KV, PRINCIPAL
from server.kernel.models import PageQuery, whole_page
from server.kernel.pseudonyms import client_paradata

HELPERS = ("helper",)  # admins may call every route too
ADMINS = ("admin",)
UPLOAD_LIMIT = 5 * 1024 * 1024


async def _scope(request: web.Request) -> service.Scope:
    principal = request[PRINCIPAL]
    assert principal is not None
    return await service.scope_of(request.app[DB], principal)


def _code(request: web.Request) -> str:
    return request.match_info["code"]


@endpoint(roles=HELPERS, body=AssistedResidentCreate, status=201, tag="helper", errors=(404, 429))
async def register_resident(request: web.Request, *, body: AssistedResidentCreate) -> web.Response:
    """Register a resident without WeChat (oral consent noted by the helper): returns the
    code to print on their card. No name or phone number is stored."""
    resident = await service.register(request.app[DB], await _scope(request), body)
    return json_response(resident, status=201)


@endpoint(roles=HELPERS, query=PageQuery, tag="helper", errors=(404,))
async def list_residents(request: web.Request, *, query: PageQuery) -> web.Response:
    """Residents registered in the helper's townships (profiles only, no results)."""
    items, total = await service.residents(
        request.app[DB], await _scope(request), skip=query.skip, limit=query.page_size
    )
    return json_response(query.page_of(items, total))


@endpoint(roles=HELPERS, tag="helper", errors=(404,))
async def get_resident(request: web.Request) -> web.Response:
    """One resident of the helper's townships by the code on their card."""
    user = await service.resident_in_scope(request.app[DB], await _scope(request), _code(request))
    return json_response(service.resident_view(user))


@endpoint(roles=HELPERS, status=204, tag="helper", errors=(404,))
async def erase_resident(request: web.Request) -> web.Response:
    """Erase a resident's personal data at their request (PIPL), as `DELETE /me` does for
    residents who sign in themselves: answers are kept only anonymously."""
    user = await service.resident_in_scope(request.app[DB], await _scope(request), _code(request))
    user_id = str(user["_id"])
    for forget in request.app.get(ERASE_HOOKS, []):
        await forget(request.app, user_id)
    await users.erase_resident(request.app[DB], request.app[KV], user_id=user_id)
    await record_request(request, action="erase", subject=user_id)
    return web.Response(status=204)


@endpoint(
    roles=HELPERS,
    body=AssistedQuizStart,
    response=QuizOut,
    status=201,
    tag="helper",
    errors=(404, 409, 429),
)
async def start_quiz(request: web.Request, *, body: AssistedQuizStart) -> web.Response:
    """Start a quiz for a resident of the helper's townships (channel "assisted")."""
    quiz = await service.start_quiz(
        quiz_context(request.app),
        await _scope(request),
        _code(request),
        mode=body.mode,
        topic=body.topic,
    )
    return json_response(quiz, status=201)


@endpoint(roles=HELPERS, body=QuizSubmit, response=QuizResult, tag="helper", errors=(404, 409))
async def submit_quiz(request: web.Request, *, body: QuizSubmit) -> web.Response:
    """Submit a resident's answers to a quiz started with them; the attempt records the
    helper. A repeated submit returns the first result unchanged."""
    result = await service.submit_quiz(
        quiz_context(request.app),
        await _scope(request),
        _code(request),
        quiz_id=request.match_info["quiz_id"],
        answers=body.answers,
        client=client_paradata(request),
    )
    return json_response(result)


@endpoint(roles=HELPERS, query=FormsQuery, tag="helper", errors=(404, 409, 429))
async def print_forms(request: web.Request, *, query: FormsQuery) -> web.Response:
    """A PDF of numbered large-type paper forms (each with its code and a QR code of it)."""
    pdf, filename = await service.print_forms(
        quiz_context(request.app),
        await _scope(request),
        mode=query.mode,
        count=query.count,
        township=query.township,
    )
    await record_request(
        request, action="download", subject="paper_forms", detail=query.model_dump()
    )
    return web.Response(
        body=pdf,
        headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


@endpoint(roles=HELPERS, tag="helper", errors=(404,), reads_body=True)
async def upload_forms(request: web.Request) -> web.Response:
    """Upload an .xlsx or .csv of filled forms (表单编号, 居民编号, 1, 2, …): each row is
    stored once (by form and resident code); problems are reported by row."""
    filename, data = await read_upload(request, limit=UPLOAD_LIMIT)
    result = await service.upload_forms(
        quiz_context(request.app),
        await _scope(request),
        filename=filename,
        data=data,
        client=client_paradata(request),
    )
    return json_response(result)


@endpoint(roles=ADMINS, body=HelperCreate, status=201, tag="helper", errors=(409,))
async def create_helper(request: web.Request, *, body: HelperCreate) -> web.Response:
    """Create a helper account scoped to townships, with a daily limit."""
    helper = await service.create_helper(request.app[DB], body)
    await record_request(request, action="create_helper", subject=helper["id"], detail=helper)
    return json_response(helper, status=201)


@endpoint(roles=ADMINS, body=HelperUpdate, tag="helper", errors=(404,))
async def update_helper(request: web.Request, *, body: HelperUpdate) -> web.Response:
    """Change a helper's townships or daily limit, or deactivate them."""
    helper = await service.update_helper(request.app[DB], request.match_info["helper_id"], body)
    await record_request(
        request, action="update_helper", subject=helper["id"], detail=body.model_dump()
    )
    return json_response(helper)


@endpoint(roles=ADMINS, tag="helper")
async def helper_activity(request: web.Request) -> web.Response:
    """Every helper with their townships and activity (today, and attempts in all)."""
    items = await service.helper_activity(request.app[DB])
    return json_response(whole_page(items))


def setup(app: web.Application, api: str) -> None:
    base = f"{api}/helper"
    app.router.add_post(f"{base}/residents", register_resident)
    app.router.add_get(f"{base}/residents", list_residents)
    app.router.add_get(f"{base}/residents/{{code}}", get_resident)
    app.router.add_delete(f"{base}/residents/{{code}}", erase_resident)
    app.router.add_post(f"{base}/residents/{{code}}/quizzes", start_quiz)
    app.router.add_post(f"{base}/residents/{{code}}/quizzes/{{quiz_id}}/submit", submit_quiz)
    app.router.add_get(f"{base}/forms", print_forms)
    app.router.add_post(f"{base}/forms/upload", upload_forms)
    app.router.add_post(f"{api}/admin/helpers", create_helper)
    app.router.add_get(f"{api}/admin/helpers", helper_activity)
    app.router.add_patch(f"{api}/admin/helpers/{{helper_id}}", update_helper)
