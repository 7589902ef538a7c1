"""Rules for articles: sanitised bodies, the editorial workflow (same rules as questions:
draft → in_review → published → retired, four-eyes publishing, optimistic concurrency,
versions, audit), residents' reading, search, suggestions and recommendations."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from content import storage
from content.cache import ArticleCache
from content.models import ArticleContent
from content.sanitize import reading_minutes, sanitize_markdown
from server.editorial import service as editorial
from server.editorial.errors import StaleVersion
from server.kernel.clock import now
from server.kernel.errors import NotFound
from server.kernel.kv import Kv
from server.search.index import terms

Document = dict[str, Any]


class ArticleNotFound(NotFound):
    code = "article_not_found"
    message = "文章不存在或未发布"


def _prepared(content: ArticleContent) -> Document:
    data = content.model_dump(mode="json")
    data["body"] = sanitize_markdown(data["body"])
    data["title"] = sanitize_markdown(data["title"])
    data["summary"] = sanitize_markdown(data["summary"])
    data["reading_minutes"] = reading_minutes(data["body"])
    return data


def _tokens(content: Document) -> dict[str, list[str]]:
    return {
        "title": terms(content["title"]),
        "summary": terms(content["summary"]),
        "body": terms(content["body"]),
    }


def new_document(content: Document, *, actor: str, status: str = "draft") -> Document:
    at = now()
    doc = {
        "_id": ObjectId(),
        "version": 1,
        "status": status,
        "content": content,
        "published": None,
        "published_version": None,
        "published_tokens": None,
        "views": 0,
        "created_by": actor,
        "created_at": at,
        "updated_by": actor,
        "updated_at": at,
        "reviewed_by": None,
        "published_at": None,
        "changed_at": at,
        "deleted_at": None,
    }
    if status == "published":
        doc.update(
            published=content,
            published_version=1,
            published_tokens=_tokens(content),
            published_at=at,
        )
    return doc


async def _after_write(
    db: AsyncDatabase,
    kv: Kv,
    cache: ArticleCache,
    doc: Document,
    *,
    action: str,
    actor: str,
    before: Document | None,
) -> None:
    await editorial.record(db, "article", doc, action=action, actor=actor, before=before)
    await cache.reload_after_write(db, kv)


async def create(
    db: AsyncDatabase, kv: Kv, cache: ArticleCache, *, content: ArticleContent, actor: str
) -> Document:
    doc = new_document(_prepared(content), actor=actor)
    await storage.insert(db, doc)
    await _after_write(db, kv, cache, doc, action="create", actor=actor, before=None)
    return doc


async def get_or_raise(db: AsyncDatabase, *, article_id: str) -> Document:
    doc = await storage.get(db, article_id)
    if doc is None:
        raise ArticleNotFound("文章不存在或已删除")
    return doc


async def _conflict(db: AsyncDatabase, article_id: str) -> Exception:
    current = await storage.get(db, article_id)
    return (
        ArticleNotFound()
        if current is None
        else StaleVersion(
            "文章已被他人修改，请刷新后在最新版本上修改",
            details={"current_version": current["version"]},
        )
    )


async def update(
    db: AsyncDatabase,
    kv: Kv,
    cache: ArticleCache,
    *,
    article_id: str,
    version: int,
    content: ArticleContent,
    actor: str,
) -> Document:
    before = await get_or_raise(db, article_id=article_id)
    if before["version"] != version:
        raise await _conflict(db, article_id)
    at = now()
    prepared = _prepared(content)
    fields = {
        "content": prepared,
        "status": "draft",
        "updated_by": actor,
        "updated_at": at,
        "changed_at": at,
    }
    doc = await editorial.change(db, "article", before, set_fields=fields, new_version=True)
    if doc is None:
        raise await _conflict(db, article_id)
    await _after_write(db, kv, cache, doc, action="update", actor=actor, before=before["content"])
    return doc


async def transition(
    db: AsyncDatabase,
    kv: Kv,
    cache: ArticleCache,
    *,
    article_id: str,
    version: int | None,
    action: str,
    actor: str,
) -> Document:
    """submit, publish or retire (see `question_bank.workflow`); published articles also
    keep the segmented snapshot the search index uses."""
    current = await get_or_raise(db, article_id=article_id)
    published = {"published_tokens": _tokens(current["content"])} if action == "publish" else None
    doc = await editorial.transition(
        db,
        "article",
        current,
        action=action,
        actor=actor,
        version=version,
        noun="文章",
        extra_fields=published,
    )
    if doc is None:
        raise await _conflict(db, article_id)
    await _after_write(db, kv, cache, doc, action=action, actor=actor, before=None)
    return doc


async def delete(
    db: AsyncDatabase, kv: Kv, cache: ArticleCache, *, article_id: str, actor: str
) -> None:
    current = await get_or_raise(db, article_id=article_id)
    if await editorial.delete_draft(db, "article", current, actor=actor, noun="文章") is None:
        raise await _conflict(db, article_id)
    await cache.reload_after_write(db, kv)


def editor_view(doc: Document) -> Document:
    view = {
        "id": str(doc["_id"]),
        "version": doc["version"],
        "status": doc["status"],
        **doc["content"],
        "published_version": doc.get("published_version"),
        "views": doc.get("views", 0),
    }
    for name in (
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
        "reviewed_by",
        "published_at",
    ):
        value = doc.get(name)
        view[name] = (
            value.isoformat() if hasattr(value, "isoformat") and value is not None else value
        )
    return view


def resident_view(doc: Document, *, full: bool = False) -> Document:
    content = doc["published"]
    view = {
        "id": str(doc["_id"]),
        "title": content["title"],
        "summary": content["summary"],
        "cover_url": content.get("cover_url"),
        "media_url": content.get("media_url"),
        "topics": content["topics"],
        "audiences": content["audiences"],
        "dimensions": content["dimensions"],
        "source": content["source"],
        "author": content["author"],
        "reading_minutes": content["reading_minutes"],
        "published_at": doc["published_at"].isoformat() if doc.get("published_at") else None,
        "views": doc.get("views", 0),
    }
    if full:
        view["body"] = content["body"]
    return view


# ------------------------------------------------------------------ residents


def list_published(
    cache: ArticleCache, *, q: str | None, topic: str | None, audience: str | None, sort: str
) -> list[Document]:
    def fits(doc: Document) -> bool:
        content = doc["published"]
        return (not topic or topic in content["topics"]) and (
            not audience or audience in content["audiences"] or "general" in content["audiences"]
        )

    if q:
        ranked = cache.search.search(terms(q), accept=lambda a: fits(cache.published[a]))
        return [cache.published[a] for a, _ in ranked]
    docs = [d for d in cache.published.values() if fits(d)]
    key = (lambda d: d.get("views", 0)) if sort == "popular" else (lambda d: d["published_at"])
    return sorted(docs, key=key, reverse=True)


def published_or_raise(cache: ArticleCache, article_id: str) -> Document:
    doc = cache.published.get(article_id)
    if doc is None:
        raise ArticleNotFound()
    return doc


def suggestions(
    cache: ArticleCache, popular_terms: list[str], *, prefix: str, limit: int = 8
) -> list[str]:
    """Popular searched terms that still find something, then title words, by prefix."""
    found = [
        t for t in popular_terms if t.startswith(prefix) and cache.search.document_frequency(t)
    ]
    if len(found) < limit:
        title_words = sorted(
            {
                t
                for d in cache.published.values()
                for t in d["published_tokens"]["title"]
                if len(t) > 1 and t.startswith(prefix)
            },
            key=lambda t: -cache.search.document_frequency(t),
        )
        found += [t for t in title_words if t not in found]
    return found[:limit]


def recommend(
    cache: ArticleCache, *, wrong: dict[str, int], group: str | None, read: set[str], limit: int = 3
) -> list[Document]:
    """Articles on the topics answered wrong, for the resident's group, not already read;
    each says why. Then popular articles for the group, to fill the list."""
    audience = group if group in ("farmer", "elderly", "youth", "worker", "official") else "general"
    picked: list[Document] = []
    taken: set[str] = set(read)

    def first_fitting(ids: list[str], exact_only: bool) -> str | None:
        fallback = None
        for article_id in ids:  # most read first
            if article_id in taken:
                continue
            audiences = cache.published[article_id]["published"]["audiences"]
            if audience in audiences:
                return article_id
            if fallback is None and not exact_only and "general" in audiences:
                fallback = article_id
        return fallback

    for topic, count in sorted(wrong.items(), key=lambda item: -item[1]):
        found = first_fitting(cache.by_topic.get(topic, []), exact_only=False)
        if found is not None and len(picked) < limit:
            taken.add(found)
            picked.append(
                {
                    **resident_view(cache.published[found]),
                    "reason": f"你在「{topic}」题目上答错了 {count} 题",
                }
            )
    while len(picked) < limit:
        found = first_fitting(cache.popular, exact_only=True)
        if found is None:
            break
        taken.add(found)
        picked.append({**resident_view(cache.published[found]), "reason": "同类读者常看的科普文章"})
    return picked


async def seed_demo(db: AsyncDatabase) -> int:
    """Load the demo articles as published (idempotent by title)."""
    import json
    from pathlib import Path

    raw = json.loads((Path(__file__).parent / "demo" / "articles.json").read_text(encoding="utf-8"))
    existing = await storage.existing_titles(db)
    docs = []
    for item in raw:
        content = _prepared(ArticleContent.model_validate(item))
        if content["title"] not in existing:
            doc = new_document(content, actor="seed-demo", status="published")
            doc["reviewed_by"] = "seed-demo"
            docs.append(doc)
    await storage.insert_many(db, docs)
    return len(docs)


async def read_by(kv: Kv, user_id: str) -> set[str]:
    """Ids of the articles this resident has read."""
    return await storage.read_by(kv, user_id)


async def reading_of(kv: Kv, cache: ArticleCache, user_id: str) -> list[Document]:
    """The articles the resident has read (for their export), with titles where still
    published."""
    return [
        {
            "id": article_id,
            "title": (cache.published.get(article_id) or {}).get("published", {}).get("title"),
        }
        for article_id in sorted(await storage.read_by(kv, user_id))
    ]


async def forget_reader(kv: Kv, user_id: str) -> None:
    """Erase which articles the resident read (their account is being deleted)."""
    await storage.forget_reader(kv, user_id)


async def list_page(
    db: AsyncDatabase, *, status: str | None, skip: int, limit: int
) -> tuple[list[Document], int]:
    """Articles in every status (editors), newest change first."""
    return await storage.list_page(db, status=status, skip=skip, limit=limit)


async def note_search(kv: Kv, query: str) -> None:
    """Remember a resident's search terms (they feed the suggestions)."""
    await storage.note_search(kv, terms(query))


async def count_view(kv: Kv, article_id: str, reader: str | None) -> None:
    """Count a view (and, for a signed-in resident, remember it was read)."""
    await storage.count_view(kv, article_id, reader)


async def popular_search_terms(kv: Kv) -> list[str]:
    return await storage.popular_search_terms(kv)
