"""Rules of the question bank: the editorial workflow (draft → in_review → published →
retired, four-eyes publishing, optimistic concurrency, versions, audit) and reads.

Without multi-document transactions (the code runs on servers without them), each change is
one atomic compare-and-set on the question document through the shared editorial service;
the version snapshots and audit record are idempotent, so a retry after a crash completes
them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from question_bank import item_params, storage
from question_bank.cache import BankCache, duplicate_tokens
from question_bank.duplicates import content_hash
from question_bank.errors import DuplicateQuestion, QuestionNotFound
from question_bank.item_stats import pending_entry
from question_bank.models import QuestionContent
from server.editorial import service as editorial
from server.editorial.errors import StaleVersion
from server.kernel.clock import now
from server.kernel.kv import Kv
from server.search.index import terms

Document = dict[str, Any]

EDITABLE_STATUSES = ("draft", "in_review", "published", "retired")


def search_tokens(content: Document) -> dict[str, list[str]]:
    """Segment a question's text once, at write time."""
    return {
        "stem": terms(content["stem"]),
        "options": [t for option in content["options"] for t in terms(option["text"])],
        "explanation": terms(content.get("explanation", "")),
        "tags": [t for tag in content.get("tags", []) for t in terms(tag)],
    }


def new_document(content: Document, *, actor: str, status: str = "draft") -> Document:
    from bson import ObjectId

    at = now()
    return {
        "_id": ObjectId(),
        "version": 1,
        "status": status,
        "content": content,
        "dedupe_key": content_hash(content),
        "search_tokens": search_tokens(content),
        "published": None,
        "published_version": None,
        "created_by": actor,
        "created_at": at,
        "updated_by": actor,
        "updated_at": at,
        "reviewed_by": None,
        "published_at": None,
        "changed_at": at,
        "deleted_at": None,
    }


def near_duplicates_of(bank: BankCache, doc: Document) -> list[Document]:
    found = bank.near.similar_to(duplicate_tokens(doc), exclude=str(doc["_id"]))
    return [{"id": other, "similarity": score} for other, score in found[:5]]


async def _after_write(
    db: AsyncDatabase,
    kv: Kv,
    bank: BankCache,
    doc: Document,
    *,
    action: str,
    actor: str,
    before: Document | None,
) -> None:
    await editorial.record(db, "question", doc, action=action, actor=actor, before=before)
    bank.apply(doc)
    await storage.announce_change(kv, doc)


async def create(
    db: AsyncDatabase, kv: Kv, bank: BankCache, *, content: QuestionContent, actor: str
) -> Document:
    doc = new_document(content.content_dict(), actor=actor)
    doc["near_duplicates"] = near_duplicates_of(bank, doc)
    if not await storage.insert(db, doc):
        existing = await storage.find_by_dedupe_keys(db, [doc["dedupe_key"]])
        raise DuplicateQuestion(details={"existing_id": existing.get(doc["dedupe_key"])})
    await _after_write(db, kv, bank, doc, action="create", actor=actor, before=None)
    return doc


async def get_or_raise(db: AsyncDatabase, *, question_id: str) -> Document:
    doc = await storage.get(db, question_id)
    if doc is None:
        raise QuestionNotFound()
    return doc


async def _stale_or_missing(db: AsyncDatabase, question_id: str) -> Exception:
    current = await storage.get(db, question_id)
    if current is None:
        return QuestionNotFound()
    return StaleVersion(
        details={"current_version": current["version"], "status": current["status"]}
    )


async def update(
    db: AsyncDatabase,
    kv: Kv,
    bank: BankCache,
    *,
    question_id: str,
    version: int,
    content: QuestionContent,
    actor: str,
) -> Document:
    """Replace the working copy. Any edit needs a fresh review, so the question returns to
    draft; a published version keeps being served until the new one is published."""
    before = await get_or_raise(db, question_id=question_id)
    if before["version"] != version:
        raise StaleVersion(
            details={"current_version": before["version"], "status": before["status"]}
        )
    new_content = content.content_dict()
    at = now()
    fields = {
        "content": new_content,
        "dedupe_key": content_hash(new_content),
        "search_tokens": search_tokens(new_content),
        "status": "draft",
        "updated_by": actor,
        "updated_at": at,
        "changed_at": at,
    }
    try:
        doc = await editorial.change(db, "question", before, set_fields=fields, new_version=True)
    except DuplicateKeyError:
        raise DuplicateQuestion("修改后的内容与题库中另一道题相同") from None
    if doc is None:
        raise await _stale_or_missing(db, question_id)
    doc["near_duplicates"] = near_duplicates_of(bank, doc)
    await _after_write(db, kv, bank, doc, action="update", actor=actor, before=before["content"])
    return doc


async def transition(
    db: AsyncDatabase,
    kv: Kv,
    bank: BankCache,
    *,
    question_id: str,
    version: int | None,
    action: str,
    actor: str,
) -> Document:
    """submit, publish or retire (see `workflow`); four-eyes applies to publishing."""
    current = await get_or_raise(db, question_id=question_id)
    doc = await editorial.transition(
        db, "question", current, action=action, actor=actor, version=version, noun="题目"
    )
    if doc is None:
        raise await _stale_or_missing(db, question_id)
    await _after_write(db, kv, bank, doc, action=action, actor=actor, before=None)
    return doc


async def delete(
    db: AsyncDatabase, kv: Kv, bank: BankCache, *, question_id: str, actor: str
) -> None:
    """Delete a never-published draft; the document stays as a tombstone."""
    current = await get_or_raise(db, question_id=question_id)
    doc = await editorial.delete_draft(
        db, "question", current, actor=actor, noun="题目", unset_fields=("dedupe_key",)
    )
    if doc is None:
        raise await _stale_or_missing(db, question_id)
    bank.apply(doc)
    await storage.announce_change(kv, doc)


async def list_questions(
    db: AsyncDatabase,
    bank: BankCache,
    *,
    page: int,
    page_size: int,
    q: str | None,
    **filters: str | None,
) -> tuple[list[Document], int]:
    """Newest first from MongoDB; with `q`, ranked by relevance from the search index."""
    if not q:
        return await storage.list_page(db, skip=(page - 1) * page_size, limit=page_size, **filters)

    def accept(doc_id: str) -> bool:
        return _matches(bank.docs[doc_id], **filters)

    ranked = bank.search.search(terms(q), accept=accept)
    window = ranked[(page - 1) * page_size : page * page_size]
    docs = [dict(bank.docs[doc_id], score=round(score, 4)) for doc_id, score in window]
    return docs, len(ranked)


def _matches(
    doc: Document,
    *,
    status: str | None,
    dimension: str | None,
    topic: str | None,
    audience: str | None,
) -> bool:
    content = doc["content"]
    return (
        (not status or doc["status"] == status)
        and (not dimension or content["dimension"] == dimension)
        and (not topic or content["topic"] == topic)
        and (not audience or audience in content["audiences"])
    )


async def history(db: AsyncDatabase, *, question_id: str) -> list[Document]:
    await get_or_raise(db, question_id=question_id)
    return await editorial.history(db, "question", question_id)


def to_read(doc: Document) -> Document:
    """The editor's view of a stored question."""
    view = {
        "id": str(doc["_id"]),
        "version": doc["version"],
        "status": doc["status"],
        **doc["content"],
        "published_version": doc.get("published_version"),
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
        view[name] = value.isoformat() if isinstance(value, datetime) else value
    if "near_duplicates" in doc:
        view["near_duplicates"] = doc["near_duplicates"]
    if "score" in doc:
        view["score"] = doc["score"]
    return view


# ------------------------------------------------------------------ import and export


async def import_questions(
    db: AsyncDatabase, kv: Kv, bank: BankCache, *, parsed: Any, dry_run: bool, actor: str
) -> Document:
    """Import the valid rows as drafts; invalid rows are reported and nothing of them is
    written. Exact duplicates (of the bank or of an earlier row) are skipped and counted, so
    re-sending a file (a retry after a dropped connection) imports nothing twice."""
    docs, duplicates, seen = [], 0, set()
    for _row, content in parsed.rows:
        doc = new_document(content.content_dict(), actor=actor)
        if doc["dedupe_key"] in seen:
            duplicates += 1
            continue
        seen.add(doc["dedupe_key"])
        docs.append(doc)
    existing = await storage.find_by_dedupe_keys(db, [doc["dedupe_key"] for doc in docs])
    fresh = [doc for doc in docs if doc["dedupe_key"] not in existing]
    duplicates += len(docs) - len(fresh)
    near = 0
    for doc in fresh:
        doc["near_duplicates"] = near_duplicates_of(bank, doc)
        near += bool(doc["near_duplicates"])
    imported = len(fresh)
    if not dry_run and fresh:
        inserted, raced = await storage.insert_many(db, fresh)
        imported, duplicates = len(inserted), duplicates + raced
        inserted_set = set(inserted)
        for doc in fresh:
            if doc["_id"] in inserted_set:
                bank.apply(doc)
        await editorial.record_created(
            db,
            "question",
            [d for d in fresh if d["_id"] in inserted_set],
            action="import",
            actor=actor,
        )
        await storage.announce_reload(kv)
    errors = sorted(parsed.errors, key=lambda e: (e["row"], e["field"]))
    return {
        "imported": imported,
        "duplicates": duplicates,
        "errors": errors,
        "dry_run": dry_run,
        "near_duplicates": near,
    }


async def export_contents(db: AsyncDatabase, *, status: str | None) -> list[Document]:
    docs = await storage.all_matching(db, status=status, dimension=None, topic=None, audience=None)
    return [doc["content"] for doc in docs]


# ------------------------------------------------------------------ duplicates and statistics


def duplicate_pairs(bank: BankCache, *, threshold: float) -> list[Document]:
    pairs = []
    for a, b, score in bank.near.all_pairs(threshold=threshold):
        pairs.append(
            {
                "a": a,
                "b": b,
                "similarity": score,
                "a_stem": bank.docs[a]["content"]["stem"],
                "b_stem": bank.docs[b]["content"]["stem"],
            }
        )
    return pairs


async def item_statistics(db: AsyncDatabase, *, question_id: str) -> Document:
    from question_bank import item_stats as stats

    doc = await get_or_raise(db, question_id=question_id)
    versions = []
    for sums in await storage.item_stats(db, question_id):
        snapshot = await editorial.version(db, "question", question_id, sums["version"])
        content = snapshot["content"] if snapshot else doc["content"]
        summary = stats.summarise(
            sums,
            question_type=content["type"],
            options=[o["key"] for o in content["options"]],
            answer=content["answer"],
        )
        irt = await item_params.admin_view(db, question_id, sums["version"])
        if irt is not None and irt["held_from_assessment"]:
            summary["flags"].append("dif")  # biased against a group: off assessment forms
        versions.append({"version": sums["version"], **summary, "irt": irt})
    # The served version's IRT parameters and DIF check, even before it has classical stats
    # (a calibration also reads answers the outbox never saw, such as adaptive practice).
    irt = await item_params.admin_view(db, question_id, doc.get("published_version"))
    return {
        "question_id": question_id,
        "versions": versions,
        "irt": irt,
        "flagged": any(v["flags"] for v in versions) or bool(irt and irt["held_from_assessment"]),
        "min_attempts_for_flags": stats.MIN_ATTEMPTS_FOR_FLAGS,
    }


async def record_pending_responses(db: AsyncDatabase, attempts: list[Document]) -> None:
    """Queue scored attempts' answers for the item statistics (scoring calls this before it
    stores the attempts); `item_stats_fold` adds each once its attempt is stored."""
    await storage.add_pending(db, [pending_entry(attempt) for attempt in attempts])


# ------------------------------------------------------------------ demo bank


async def seed_demo(db: AsyncDatabase) -> int:
    """Load the demo bank as published questions (idempotent: existing content is skipped)."""
    import json
    from pathlib import Path

    contents = []
    for path in sorted((Path(__file__).parent / "demo").glob("questions_*.json")):
        contents.extend(json.loads(path.read_text(encoding="utf-8")))
    docs = []
    for raw in contents:
        content = QuestionContent.model_validate(raw).content_dict()
        doc = new_document(content, actor="seed-demo", status="published")
        doc.update(
            published=content,
            published_version=1,
            reviewed_by="seed-demo",
            published_at=doc["created_at"],
        )
        docs.append(doc)
    existing = await storage.find_by_dedupe_keys(db, [d["dedupe_key"] for d in docs])
    fresh = [d for d in docs if d["dedupe_key"] not in existing]
    inserted, _ = await storage.insert_many(db, fresh)
    await editorial.record_created(
        db,
        "question",
        [d for d in fresh if d["_id"] in set(inserted)],
        action="import",
        actor="seed-demo",
    )
    return len(inserted)


async def version_served(db: AsyncDatabase, *, question_id: str, version: int) -> Document | None:
    """The content of one version of a question, as it was served."""
    return await editorial.version(db, "question", question_id, version)
