"""HTTP routes for articles: editors' workflow under /admin/articles, residents' reading."""

from __future__ import annotations

from aiohttp import web

from content import service
from content.keys import ARTICLES
from content.models import (
    AdminArticleQuery,
    ArticleCreate,
    ArticleQuery,
    ArticleUpdate,
    SuggestQuery,
)
from question_bank.models import VersionBody
from server.accounts.keys import on_erase, on_export
from server.kernel.http import Handler, caller_id, endpoint, json_response, read_optional
from server.kernel.keys import DB, KV, PRINCIPAL
from server.kernel.models import whole_page

WRITERS = ("editor",)
READERS = ("editor", "analyst")


@endpoint(roles=WRITERS, body=ArticleCreate, status=201, tag="articles")
async def create_article(request: web.Request, *, body: ArticleCreate) -> web.Response:
    """Create a draft article (the body is sanitised)."""
    app = request.app
    doc = await service.create(
        app[DB], app[KV], app[ARTICLES], content=body, actor=caller_id(request)
    )
    return json_response(service.editor_view(doc), status=201)


@endpoint(roles=READERS, query=AdminArticleQuery, tag="articles")
async def list_articles_admin(request: web.Request, *, query: AdminArticleQuery) -> web.Response:
    """List articles in every status, newest change first."""
    docs, total = await service.list_page(
        request.app[DB], status=query.status, skip=query.skip, limit=query.page_size
    )
    return json_response(query.page_of([service.editor_view(d) for d in docs], total))


@endpoint(roles=READERS, tag="articles")
async def get_article_admin(request: web.Request) -> web.Response:
    """Get an article as editors see it."""
    doc = await service.get_or_raise(request.app[DB], article_id=request.match_info["article_id"])
    return json_response(service.editor_view(doc))


@endpoint(roles=WRITERS, body=ArticleUpdate, tag="articles", errors=(409,))
async def update_article(request: web.Request, *, body: ArticleUpdate) -> web.Response:
    """Replace an article's content; `version` must be the one edited (stale: 409)."""
    app = request.app
    content = ArticleCreate.model_validate(body.model_dump(exclude={"version"}))
    doc = await service.update(
        app[DB],
        app[KV],
        app[ARTICLES],
        article_id=request.match_info["article_id"],
        version=body.version,
        content=content,
        actor=caller_id(request),
    )
    return json_response(service.editor_view(doc))


@endpoint(roles=WRITERS, status=204, tag="articles", errors=(409,))
async def delete_article(request: web.Request) -> web.Response:
    """Delete a draft that was never published."""
    app = request.app
    await service.delete(
        app[DB],
        app[KV],
        app[ARTICLES],
        article_id=request.match_info["article_id"],
        actor=caller_id(request),
    )
    return web.Response(status=204)


def _workflow(action: str, summary: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        body = await read_optional(request, VersionBody)
        app = request.app
        doc = await service.transition(
            app[DB],
            app[KV],
            app[ARTICLES],
            article_id=request.match_info["article_id"],
            version=body.version if body else None,
            action=action,
            actor=caller_id(request),
        )
        return json_response(service.editor_view(doc))

    handler.__doc__ = summary
    handler.__name__ = f"{action}_article"
    return endpoint(roles=WRITERS, tag="articles", errors=(409,), reads_body=True)(handler)


@endpoint(roles="public", query=ArticleQuery, tag="articles")
async def list_articles(request: web.Request, *, query: ArticleQuery) -> web.Response:
    """Published articles by topic/audience, newest or most read; with `q`, ranked search."""
    docs = service.list_published(
        request.app[ARTICLES],
        q=query.q,
        topic=query.topic,
        audience=query.audience,
        sort=query.sort,
    )
    if query.q:
        await service.note_search(request.app[KV], query.q)
    return json_response(query.page_of([service.resident_view(d) for d in docs]))


@endpoint(roles="public", tag="articles")
async def get_article(request: web.Request) -> web.Response:
    """Read a published article (the view is counted)."""
    doc = service.published_or_raise(request.app[ARTICLES], request.match_info["article_id"])
    principal = request[PRINCIPAL]
    reader = principal.user_id if principal is not None and principal.role == "resident" else None
    await service.count_view(request.app[KV], str(doc["_id"]), reader)
    return json_response(service.resident_view(doc, full=True))


@endpoint(roles="public", query=SuggestQuery, tag="articles")
async def suggest(request: web.Request, *, query: SuggestQuery) -> web.Response:
    """Search-box suggestions from popular searched terms and title words."""
    popular = await service.popular_search_terms(request.app[KV])
    items = service.suggestions(request.app[ARTICLES], popular, prefix=query.prefix)
    return json_response(whole_page(items))


async def _export_reader(app: web.Application, user_id: str) -> tuple[str, object]:
    return "articles_read", await service.reading_of(app[KV], app[ARTICLES], user_id)


async def _forget_reader(app: web.Application, user_id: str) -> None:
    await service.forget_reader(app[KV], user_id)


def setup(app: web.Application, api: str) -> None:
    on_export(app, _export_reader)
    on_erase(app, _forget_reader)
    base = f"{api}/admin/articles"
    app.router.add_post(base, create_article)
    app.router.add_get(base, list_articles_admin)
    app.router.add_get(f"{base}/{{article_id}}", get_article_admin)
    app.router.add_put(f"{base}/{{article_id}}", update_article)
    app.router.add_delete(f"{base}/{{article_id}}", delete_article)
    for action, summary in (
        ("submit", "Ask for review (draft → in_review)."),
        ("publish", "Review and publish (another editor than the last author)."),
        ("retire", "Retire an article so residents no longer see it."),
    ):
        app.router.add_post(f"{base}/{{article_id}}/{action}", _workflow(action, summary))
    app.router.add_get(f"{api}/articles", list_articles)
    app.router.add_get(f"{api}/articles/suggestions", suggest)
    app.router.add_get(f"{api}/articles/{{article_id}}", get_article)
