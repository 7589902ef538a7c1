"""HTTP routes of the question bank (editors write; analysts read)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from question_bank import importing, item_params, service
from question_bank.keys import BANK
from question_bank.models import (
    DuplicatePage,
    DuplicatesQuery,
    ExportQuery,
    ImportQuery,
    ImportResult,
    QuestionCreate,
    QuestionListQuery,
    QuestionPage,
    QuestionRead,
    QuestionUpdate,
    VersionBody,
)
from server.kernel.audit import record_request
from server.kernel.http import (
    Handler,
    caller_id,
    endpoint,
    json_response,
    read_optional,
    read_upload,
)
from server.kernel.keys import DB, KV
from server.kernel.models import whole_page

WRITERS = ("editor",)
READERS = ("editor", "analyst")


def _qid(request: web.Request) -> str:
    return request.match_info["question_id"]


@endpoint(
    roles=WRITERS,
    body=QuestionCreate,
    response=QuestionRead,
    status=201,
    tag="questions",
    errors=(409,),
)
async def create_question(request: web.Request, *, body: QuestionCreate) -> web.Response:
    """Create a draft question."""
    app = request.app
    doc = await service.create(app[DB], app[KV], app[BANK], content=body, actor=caller_id(request))
    return json_response(service.to_read(doc), status=201)


@endpoint(roles=READERS, query=QuestionListQuery, response=QuestionPage, tag="questions")
async def list_questions(request: web.Request, *, query: QuestionListQuery) -> web.Response:
    """List questions, newest first, or ranked by relevance when `q` is given."""
    docs, total = await service.list_questions(
        request.app[DB],
        request.app[BANK],
        page=query.page,
        page_size=query.page_size,
        q=query.q,
        status=query.status,
        dimension=query.dimension,
        topic=query.topic,
        audience=query.audience,
    )
    items = [service.to_read(doc) for doc in docs]
    return json_response(
        {"items": items, "total": total, "page": query.page, "page_size": query.page_size}
    )


@endpoint(roles=READERS, response=QuestionRead, tag="questions")
async def get_question(request: web.Request) -> web.Response:
    """Get one question as editors see it, with the published version's IRT parameters."""
    db = request.app[DB]
    doc = await service.get_or_raise(db, question_id=_qid(request))
    irt = await item_params.admin_view(db, str(doc["_id"]), doc.get("published_version"))
    return json_response({**service.to_read(doc), "irt": irt})


@endpoint(roles=WRITERS, body=QuestionUpdate, response=QuestionRead, tag="questions", errors=(409,))
async def update_question(request: web.Request, *, body: QuestionUpdate) -> web.Response:
    """Replace a question's content; `version` must be the one you edited (stale: 409)."""
    app = request.app
    content = QuestionCreate.model_validate(body.model_dump(exclude={"version"}))
    doc = await service.update(
        app[DB],
        app[KV],
        app[BANK],
        question_id=_qid(request),
        version=body.version,
        content=content,
        actor=caller_id(request),
    )
    return json_response(service.to_read(doc))


@endpoint(roles=WRITERS, status=204, tag="questions", errors=(409,))
async def delete_question(request: web.Request) -> web.Response:
    """Delete a draft that was never published."""
    app = request.app
    await service.delete(
        app[DB], app[KV], app[BANK], question_id=_qid(request), actor=caller_id(request)
    )
    return web.Response(status=204)


def _workflow(action: str, doc: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        app = request.app
        body = await read_optional(request, VersionBody)
        result = await service.transition(
            app[DB],
            app[KV],
            app[BANK],
            question_id=_qid(request),
            version=body.version if body else None,
            action=action,
            actor=caller_id(request),
        )
        return json_response(service.to_read(result))

    handler.__doc__ = doc
    handler.__name__ = f"{action}_question"
    return endpoint(
        roles=WRITERS, response=QuestionRead, tag="questions", errors=(409,), reads_body=True
    )(handler)


submit_question = _workflow("submit", "Ask for review (draft → in_review).")
publish_question = _workflow("publish", "Review and publish (another editor than the last author).")
retire_question = _workflow("retire", "Retire a question so it is no longer served.")


@endpoint(roles=READERS, tag="questions")
async def question_history(request: web.Request) -> web.Response:
    """The audit trail of a question: who did what, when, before and after."""
    trail = await service.history(request.app[DB], question_id=_qid(request))
    for entry in trail:
        if isinstance(entry.get("at"), datetime):
            entry["at"] = entry["at"].isoformat()
    return json_response(whole_page(trail))


@endpoint(roles=READERS, tag="questions")
async def question_stats(request: web.Request) -> web.Response:
    """Item statistics per version: attempts, facility, discrimination, options, flags."""
    return json_response(await service.item_statistics(request.app[DB], question_id=_qid(request)))


@endpoint(roles=WRITERS, query=ImportQuery, response=ImportResult, tag="questions", reads_body=True)
async def import_questions(request: web.Request, *, query: ImportQuery) -> web.Response:
    """Import questions from .xlsx, .csv or .json with the template columns; dry_run validates only."""
    filename, data = await read_upload(request, limit=importing.MAX_BYTES)
    # Parsing a 10 MB workbook takes seconds of CPU: off the event loop, so the residents
    # served by this process are not held up meanwhile.
    parsed = await asyncio.to_thread(importing.parse_upload, filename, data)
    app = request.app
    result = await service.import_questions(
        app[DB], app[KV], app[BANK], parsed=parsed, dry_run=query.dry_run, actor=caller_id(request)
    )
    return json_response(result)


_EXPORTERS = {
    "xlsx": (
        importing.export_xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "csv": (importing.export_csv, "text/csv; charset=utf-8"),
    "json": (importing.export_json, "application/json; charset=utf-8"),
}


@endpoint(roles=READERS, query=ExportQuery, tag="questions")
async def export_questions(request: web.Request, *, query: ExportQuery) -> web.Response:
    """Export questions in the import template's columns (an export imports back unchanged)."""
    contents = await service.export_contents(request.app[DB], status=query.status)
    writer, content_type = _EXPORTERS[query.format]
    detail = {"format": query.format, "status": query.status, "questions": len(contents)}
    await record_request(request, action="download", subject="questions", detail=detail)
    return web.Response(
        body=writer(contents),
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="questions.{query.format}"',
        },
    )


@endpoint(roles=READERS, tag="questions")
async def import_template(request: web.Request) -> web.Response:
    """Download the empty import template (.xlsx)."""
    return web.Response(
        body=importing.template_xlsx(),
        headers={
            "Content-Type": _EXPORTERS["xlsx"][1],
            "Content-Disposition": 'attachment; filename="question-template.xlsx"',
        },
    )


@endpoint(roles=READERS, query=DuplicatesQuery, response=DuplicatePage, tag="questions")
async def list_duplicates(request: web.Request, *, query: DuplicatesQuery) -> web.Response:
    """Near-duplicate pairs of live questions with their Jaccard similarity."""
    pairs = service.duplicate_pairs(request.app[BANK], threshold=query.threshold)
    return json_response(query.page_of(pairs))


def setup(app: web.Application, api: str) -> None:
    base = f"{api}/admin/questions"
    # Fixed paths before `{question_id}` so they are not taken for ids.
    app.router.add_post(f"{base}/import", import_questions)
    app.router.add_get(f"{base}/export", export_questions)
    app.router.add_get(f"{base}/template.xlsx", import_template)
    app.router.add_get(f"{base}/duplicates", list_duplicates)
    app.router.add_post(base, create_question)
    app.router.add_get(base, list_questions)
    app.router.add_get(f"{base}/{{question_id}}", get_question)
    app.router.add_put(f"{base}/{{question_id}}", update_question)
    app.router.add_delete(f"{base}/{{question_id}}", delete_question)
    app.router.add_post(f"{base}/{{question_id}}/submit", submit_question)
    app.router.add_post(f"{base}/{{question_id}}/publish", publish_question)
    app.router.add_post(f"{base}/{{question_id}}/retire", retire_question)
    app.router.add_get(f"{base}/{{question_id}}/history", question_history)
    app.router.add_get(f"{base}/{{question_id}}/stats", question_stats)
