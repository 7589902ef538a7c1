"""Rules for residents' quizzes: issue a quiz (from the bank cache, as a signed ticket),
score a submission, store it once (the writer also queues its answers for the item
statistics), count assessments in the literacy cells, award points and feed leaderboards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from content import service as content_service
from question_bank import assembly, item_params
from question_bank import service as question_service
from question_bank.cache import BankCache, PublishedQuestion
from scoring.assessment import service as assessment_service
from scoring.quizzes import adaptive_mode, storage, tickets
from scoring.quizzes import assessment_mode as assessments
from scoring.quizzes.flow import (
    SUBMIT_GRACE_SECONDS,
    AlreadyDone,
    QuizContext,
    QuizExpired,
    QuizNotFound,
    grace_seconds,
    quiz_view,
    safe_redis,
)
from server.county import service as county_service
from server.county.periods import COUNTY_TZ, period_keys, seconds_until_next_day
from server.county.vocab import age_band
from server.kernel.errors import Conflict, ValidationFailed
from server.kernel.kv import Kv
from server.kernel.logs import log_background_failure

log = logging.getLogger(__name__)
Document = dict[str, Any]

POINTS_PER_CORRECT = 10
STREAK_BONUS_PER_DAY = 2
STREAK_BONUS_CAP_DAYS = 7
MIN_SECONDS_PER_QUESTION = 2.0  # faster than this is flagged for review, never rejected
REPEAT_WINDOW_DAYS = 30
# Which questions and in what order is not a secret worth a fresh seed (30 µs from the OS)
# per quiz: one generator per process.
_RNG = random.Random()


# ------------------------------------------------------------------ starting a quiz


async def start_quiz(
    ctx: QuizContext, *, user: Document, mode: str, topic: str | None, channel: str | None
) -> Document:
    now = datetime.now(UTC)
    if mode == "assessment":
        return await assessments.start(ctx, user=user, channel=channel, now=now)
    if mode == "adaptive":
        return adaptive_mode.start(ctx, user=user, topic=topic, now=now)
    user_id, group = str(user["_id"]), user.get("profile", {}).get("group")
    periods = period_keys(now)
    if mode == "daily":
        return await _daily(
            ctx, user_id=user_id, group=group, channel=channel, day=periods["day"], now=now
        )
    if mode == "contest":
        window = periods[ctx.contest_window]
        if await safe_redis(storage.contest_done(ctx.kv, user_id, window), False):
            raise AlreadyDone(
                f"本{'周' if ctx.contest_window == 'week' else '月'}竞赛已参加过，每期只能参加一次"
            )
    return await _issue(
        ctx, user_id=user_id, group=group, mode=mode, topic=topic, channel=channel, now=now
    )


async def _daily(
    ctx: QuizContext,
    *,
    user_id: str,
    group: str | None,
    channel: str | None,
    day: str,
    now: datetime,
) -> Document:
    issued, done = await safe_redis(storage.get_daily(ctx.kv, user_id, day), (None, False))
    if done:
        raise AlreadyDone("今天的每日答题已完成，明天再来吧")
    if issued:
        try:
            ticket = ctx.ticket(issued)
            if ticket.deadline + SUBMIT_GRACE_SECONDS > now.timestamp():
                return quiz_view(ctx.bank, ticket, issued)
        except tickets.InvalidTicket:
            pass
    quiz = await _issue(
        ctx, user_id=user_id, group=group, mode="daily", topic=None, channel=channel, now=now
    )
    if issued is None:  # keep the first one if two taps raced
        kept = await safe_redis(
            storage.remember_daily(
                ctx.kv, user_id, day, quiz["quiz_id"], seconds_until_next_day(now)
            ),
            quiz["quiz_id"],
        )
        if kept != quiz["quiz_id"]:
            return quiz_view(ctx.bank, ctx.ticket(kept), kept)
    return quiz


async def _issue(
    ctx: QuizContext,
    *,
    user_id: str,
    group: str | None,
    mode: str,
    topic: str | None,
    channel: str | None,
    now: datetime,
) -> Document:
    since = (now - timedelta(days=REPEAT_WINDOW_DAYS)).timestamp()
    answered, weak = await safe_redis(
        storage.recent_history(ctx.kv, user_id, since), (frozenset(), ())
    )
    served = assembly.assemble(
        ctx.bank.published.values(),
        mode=mode,
        group=group,
        rng=_RNG,
        topic=topic,
        recently_answered=answered,
        weak_topics=weak,
        generation=ctx.bank.generation,
    )
    if not served:
        raise Conflict("该主题暂时没有可用的题目，请换一个主题", code="no_questions")
    issued_at = int(now.timestamp())
    ticket = tickets.Ticket(
        mode=mode,
        user_id=user_id,
        issued_at=issued_at,
        deadline=issued_at + assembly.time_limit(mode, group),
        nonce=tickets.new_nonce(),
        channel=channel or "",
        topic=topic or "",
        questions=tuple(
            tickets.QuizRef(s.question.id, s.question.version, s.order) for s in served
        ),
    )
    quiz_id = tickets.encode(ticket, ctx.signing_key)
    return quiz_view(ctx.bank, ticket, quiz_id)


# ------------------------------------------------------------------ submitting


class AdaptiveStepwise(Conflict):
    code = "adaptive_stepwise"
    message = "自适应练习请逐题作答（POST /api/v1/quizzes/{quiz_id}/answer），不能整卷提交"


def mark(question: PublishedQuestion, chosen: set[str], partial_credit: str) -> float:
    """Single choice and true/false: all or nothing. Multiple choice: full marks only for the
    exact set; with partial_credit="subset_half", half a mark for a non-empty subset of the
    key with no wrong option."""
    key = set(question.answer)
    if chosen == key:
        return 1.0
    if question.type == "multiple" and partial_credit == "subset_half" and chosen and chosen < key:
        return 0.5
    return 0.0


async def submit_quiz(
    ctx: QuizContext,
    *,
    user: Document,
    quiz_id: str,
    answers: list[Any],
    client: Document | None = None,
) -> Document:
    """Score and store a submission once. `client` holds the request's salted network and
    device hashes (`server.kernel.pseudonyms.client_paradata`), kept as the attempt's
    paradata for the integrity checks."""
    _, result = await submit_attempt(
        ctx, user=user, quiz_id=quiz_id, answers=answers, client=client
    )
    return result


async def submit_attempt(
    ctx: QuizContext,
    *,
    user: Document,
    quiz_id: str,
    answers: list[Any],
    client: Document | None = None,
    answered_at: datetime | None = None,
) -> tuple[bool, Document]:
    """`submit_quiz`, also saying whether this call stored the attempt (True) or found it
    stored (False, with the stored result). `answered_at` is when the resident answered, as
    an offline client reports it (default: now); it sets the time spent, never the periods."""
    user_id = str(user["_id"])
    try:
        ticket = ctx.ticket(quiz_id)
    except tickets.InvalidTicket:
        raise QuizNotFound() from None
    if ticket.user_id != user_id:
        raise QuizNotFound()  # someone else's quiz: don't confirm it exists
    if ticket.mode == "adaptive":
        raise AdaptiveStepwise()
    now = datetime.now(UTC)
    if now.timestamp() > ticket.deadline + grace_seconds(ticket):
        stored = await storage.get_attempt(ctx.db, ticket.attempt_id)
        if stored is not None:  # a late retry of a submit that was accepted in time
            return False, await replay(ctx, stored)
        raise QuizExpired()
    chosen = _validate_answers(ticket, answers)
    questions = await served_questions(ctx, ticket.questions)
    doc = await scored_attempt(
        ctx,
        user=user,
        ticket=ticket,
        quiz_id=quiz_id,
        chosen=chosen,
        questions=questions,
        now=now,
        answered_at=answered_at,
    )
    doc["paradata"] = paradata(ticket, answers, client or {}, elapsed=doc["review"]["seconds"])
    return await store_scored(ctx, doc, questions)


async def _settle(ctx: QuizContext, doc: Document, questions: dict[str, PublishedQuestion]) -> None:
    await _finish_cells(ctx, doc)
    await _after_stored(ctx, doc, questions)


async def _settle_replay(ctx: QuizContext, stored: Document) -> None:
    """A retry of a stored attempt finishes what its first submit may not have (a crash or a
    lost connection in between): the cells and the boards each take an attempt once."""
    await _finish_cells(ctx, stored)
    await safe_redis(_award(ctx, stored), None)


async def _finish_cells(ctx: QuizContext, attempt: Document) -> None:
    """Add a stored assessment to the estimates' cells and mark it counted. Each cell takes an
    attempt once, so a retry, a concurrent duplicate or the sweep repeating this after a
    failure anywhere in between never counts it twice."""
    await count_in_cells(ctx.db, attempt)


async def count_in_cells(db: AsyncDatabase, attempt: Document) -> None:
    """Count one stored assessment in the literacy cells, once (a no-op for other modes),
    unless a reviewer excluded it."""
    if "assessment" not in attempt or not attempt.get("cells_pending"):
        return
    if attempt.get("excluded"):
        # Excluded: it may still have been applied by a submit that died before settling,
        # so take it out (a guarded no-op when it is not in the cells).
        await reconcile_cells(db, attempt["_id"])
    else:
        await assessment_service.apply(db, attempt)
        # A reviewer's exclusion may have landed while this was on its way; its removal
        # then found nothing to remove, so settle the cells on the decision now.
        now = await storage.cell_input(db, attempt["_id"])
        if now is not None and now.get("excluded"):
            await reconcile_cells(db, attempt["_id"])
    await storage.mark_counted(db, attempt["_id"])


async def assessments_between(db: AsyncDatabase, start: datetime, end: datetime) -> list[Document]:
    """Stored assessments submitted in [start, end), as the integrity checks read them."""
    return await storage.assessments_between(db, start, end).to_list()


async def assessment_totals_between(
    db: AsyncDatabase, start: datetime, end: datetime
) -> list[Document]:
    """Township, time and total of the assessments submitted in [start, end)."""
    return await storage.assessment_totals_between(db, start, end)


async def assessments_by_id(db: AsyncDatabase, attempt_ids: list[str]) -> list[Document]:
    """These stored assessments as the literacy cells see them (with their exclusion)."""
    return await storage.assessments_by_id(db, attempt_ids)


RECONCILE_ROUNDS = 5


async def set_exclusion(db: AsyncDatabase, attempt_id: str, *, excluded: bool, seq: int) -> None:
    """Apply an integrity decision: the assessment leaves the literacy cells (or comes back
    when a later decision keeps it), and the estimates change through the cells only."""
    await storage.set_excluded(db, attempt_id, excluded=excluded, seq=seq)
    await reconcile_cells(db, attempt_id)


async def reconcile_cells(db: AsyncDatabase, attempt_id: str) -> None:
    """Make the cells agree with the attempt's recorded decision. Each round acts on the
    decision it read and then reads it again: a round that acted on a decision replaced
    meanwhile is followed by another, so the last act always matches the last decision,
    however reviewers' decisions and the submit's own counting interleave."""
    for _ in range(RECONCILE_ROUNDS):
        attempt = await storage.cell_input(db, attempt_id)
        if attempt is None or "assessment" not in attempt:
            return
        excluded = bool(attempt.get("excluded"))
        if excluded:
            await assessment_service.remove(db, attempt)
        else:
            await assessment_service.apply(db, attempt)
        again = await storage.cell_input(db, attempt_id)
        if again is None or bool(again.get("excluded")) == excluded:
            return
    log.warning("cells not settled on an integrity decision after several rounds")


SWEEP_EVERY_SECONDS = 600
SWEEP_MIN_AGE_SECONDS = 120  # younger ones may still be on their way through a submit


async def count_uncounted(db: AsyncDatabase, *, before: datetime) -> int:
    """Count stored assessments submitted before `before` that never reached the cells (the
    process stopped, or the cell write failed and the resident never retried)."""
    missed = await storage.uncounted_assessments(db, before=before)
    for attempt in missed:
        await count_in_cells(db, attempt)
        log.info("counted a stored assessment missed by the cells", extra={"id": attempt["_id"]})
    return len(missed)


async def sweep_uncounted(db: AsyncDatabase, stop: asyncio.Event) -> None:
    """Run `count_uncounted` a minute after start and then every ten minutes."""
    delay = 60.0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        delay = SWEEP_EVERY_SECONDS
        try:
            await count_uncounted(
                db, before=datetime.now(UTC) - timedelta(seconds=SWEEP_MIN_AGE_SECONDS)
            )
        except Exception:
            log_background_failure(
                log, "sweep of uncounted assessments failed; next try in ten minutes"
            )


async def rebuild_cells(db: AsyncDatabase) -> int:
    """Recompute the literacy cells from every stored assessment (`rebuild-stats`). An
    integrity decision taken while the rebuild read the attempts is settled again after the
    swap, which would otherwise have put back what it removed (or left out what it kept)."""
    started = datetime.now(UTC)
    count = await assessment_service.rebuild(db, storage.scored_assessments(db))
    await storage.mark_all_counted(db)
    for attempt_id in await storage.decided_since(db, started - timedelta(seconds=1)):
        await reconcile_cells(db, attempt_id)
    return count


async def rescore_with_scale(db: AsyncDatabase, kv: Kv) -> Document:
    """`python -m server rescore`: put a scale waiting since the first calibration in force
    (every process reloads it), then re-score the stored assessments on it."""
    activated = await item_params.activate_scale(db, kv)
    bank = BankCache()
    await bank.load(db)
    return {"scale": "irt" if activated else "raw", **await rescore_assessments(db, bank)}


async def rescore_assessments(db: AsyncDatabase, bank: BankCache) -> Document:
    """Re-score every stored assessment on the bank's current scale (after a calibration),
    then rebuild the literacy cells from them: the estimates change only through this."""
    changed: dict[str, Document] = {}
    seen = 0
    async for attempt in storage.assessments_for_rescoring(db):
        seen += 1
        block = attempt["assessment"]
        marks = {f"{i['question_id']}:{i['version']}": i["mark"] for i in attempt["items"]}
        fields = assessments.total_fields(
            assessments.raw_hundredths_of(block), marks, bank.scale, bank.irt
        )
        if any(block.get(name) != value for name, value in fields.items()):
            changed[attempt["_id"]] = fields
    await storage.set_assessment_totals(db, changed)
    cells = await rebuild_cells(db)
    log.info("assessments re-scored", extra={"assessments": seen, "changed": len(changed)})
    return {"assessments": seen, "changed": len(changed), "cells": cells}


def paradata(
    ticket: tickets.Ticket, answers: list[Any], client: Document, *, elapsed: float
) -> Document:
    """How the attempt was made, for the integrity checks: the server's issue-to-submit time,
    the client's time per question (in the ticket's order; null where it sent none, and no
    list at all when it sent none anywhere), the salted network and device hashes, and the
    helper who answered with the resident (none for a resident's own session)."""
    by_question = {a.question_id: a.total_ms() for a in answers}
    durations = [by_question.get(ref.question_id) for ref in ticket.questions]
    return {
        "seconds": elapsed,
        "durations_ms": durations if any(d is not None for d in durations) else None,
        "ip_hash": client.get("ip_hash"),
        "device_hash": client.get("device_hash"),
        "helper_id": client.get("helper_id"),
        # Offline: `seconds` runs from issue to the answering time the client reports, not
        # to the server's receipt, so it is the client's claim (and includes days of waiting).
        **({"offline": True} if ticket.offline else {}),
    }


def _validate_answers(ticket: tickets.Ticket, answers: list[Any]) -> dict[str, set[str]]:
    refs = {ref.question_id: ref for ref in ticket.questions}
    chosen: dict[str, set[str]] = {}
    problems = []
    for index, answer in enumerate(answers):
        ref = refs.get(answer.question_id)
        if ref is None:
            problems.append(
                {"field": f"answers.{index}.question_id", "message": "该题不在本次测验中"}
            )
        elif answer.question_id in chosen:
            problems.append({"field": f"answers.{index}.question_id", "message": "同一题重复作答"})
        elif any("ABCDEF".find(k) >= len(ref.order) for k in answer.choice):
            problems.append({"field": f"answers.{index}.choice", "message": "选项不存在"})
        else:
            chosen[answer.question_id] = {ref.order["ABCDEF".index(k)] for k in answer.choice}
    if problems:
        raise ValidationFailed(
            f"{problems[0]['field']}：{problems[0]['message']}", details=problems
        )
    return chosen


async def served_questions(
    ctx: QuizContext, refs: Iterable[tickets.QuizRef]
) -> dict[str, PublishedQuestion]:
    """The exact versions served, from the cache or (if edited since) from version history."""
    found = {}
    for ref in refs:
        cached = ctx.bank.published.get(ref.question_id)
        if cached is not None and cached.version == ref.version:
            found[ref.question_id] = cached
            continue
        snapshot = await question_service.version_served(
            ctx.db, question_id=ref.question_id, version=ref.version
        )
        if snapshot is None:
            raise QuizNotFound("题目已不存在，请重新开始答题")
        c = snapshot["content"]
        found[ref.question_id] = PublishedQuestion(
            ref.question_id,
            ref.version,
            c["type"],
            c["stem"],
            tuple((o["key"], o["text"]) for o in c["options"]),
            tuple(c["answer"]),
            c.get("explanation", ""),
            c["dimension"],
            c["topic"],
            tuple(c["audiences"]),
            int(c.get("difficulty", 3)),
        )
    return found


async def scored_attempt(
    ctx: QuizContext,
    *,
    user: Document,
    ticket: tickets.Ticket,
    quiz_id: str,
    chosen: dict[str, set[str]],
    questions: dict[str, PublishedQuestion],
    now: datetime,
    answered_at: datetime | None = None,
) -> Document:
    """The attempt to store, received `now`: periods, points and `submitted_at` follow the
    receipt; the time spent follows `answered_at` when an offline client reports it."""
    marks = {}
    # The assessment is scored as the national survey is: all or nothing per item.
    credit = "none" if ticket.mode == "assessment" else ctx.partial_credit
    for ref in ticket.questions:
        question = questions[ref.question_id]
        marks[ref.question_id] = mark(question, chosen.get(ref.question_id, set()), credit)
    periods = period_keys(now)
    score = round(sum(marks.values()) * POINTS_PER_CORRECT)
    bonus = await _streak_bonus(ctx, ticket, str(user["_id"]), periods["day"]) if score else 0
    # The assessment is a measure, not a game: it earns no points for the leaderboards.
    points = 0 if ticket.mode == "assessment" else score + bonus
    profile = user.get("profile", {})
    elapsed = (answered_at or now).timestamp() - ticket.issued_at
    doc = {
        "_id": ticket.attempt_id,
        "user_id": str(user["_id"]),
        "mode": ticket.mode,
        "topic": ticket.topic or None,
        "channel": ticket.channel or None,
        "issued_at": datetime.fromtimestamp(ticket.issued_at, UTC),
        "submitted_at": now,
        "quiz_id": quiz_id,
        "periods": periods,
        "score": score,
        "max_score": POINTS_PER_CORRECT * len(ticket.questions),
        "points": points,
        "items": [
            {
                "question_id": r.question_id,
                "version": r.version,
                "order": list(r.order),  # the options as shown, so answers render as shown
                "chosen": sorted(chosen.get(r.question_id, set())),
                "mark": marks[r.question_id],
            }
            for r in ticket.questions
        ],
        # What was recommended is a fact of the attempt: a replay shows the same articles.
        "recommended_articles": await _recommendations(ctx, user, questions, marks),
        "profile": {
            "township_code": profile.get("township_code"),
            "age_band": age_band(
                profile.get("birth_year"),
                datetime.fromtimestamp(ticket.issued_at, COUNTY_TZ).year,
            ),
            "gender": profile.get("gender"),
            "group": profile.get("group"),
            "education": profile.get("education"),
        },
        "review": {
            "too_fast": elapsed < MIN_SECONDS_PER_QUESTION * len(ticket.questions),
            "seconds": round(elapsed, 1),
        },
    }
    if ticket.offline:  # from an offline pack, answered when the client says (its claim)
        doc.update(offline=True, answered_at=answered_at or now)
    if ticket.mode == "daily":
        doc["once_key"] = f"{doc['user_id']}:daily:{periods['day']}"
    elif ticket.mode == "contest":
        doc["once_key"] = f"{doc['user_id']}:contest:{periods[ctx.contest_window]}"
    elif ticket.mode == "assessment":
        result = await assessments.scored(ctx, ticket=ticket, marks=marks, questions=questions)
        doc["assessment"] = result
        doc["cells_pending"] = True  # until counted in the literacy cells (sparse index)
        doc["once_key"] = f"{doc['user_id']}:assessment:{result['month']}"
    return doc


async def result_view(ctx: QuizContext, attempt: Document) -> Document:
    """The resident's result, rendered from the stored attempt: the same attempt always
    renders the same result (explanations come from the versions served, which never
    change), and a change of this view never rewrites what was stored."""
    refs = [
        tickets.QuizRef(i["question_id"], i["version"], tuple(i["order"])) for i in attempt["items"]
    ]
    questions = await served_questions(ctx, refs)
    view: Document = {
        "quiz_id": attempt["quiz_id"],
        "score": attempt["score"],
        "max_score": attempt["max_score"],
        "correct_count": sum(1 for i in attempt["items"] if i["mark"] == 1.0),
        "points": attempt["points"],
        "results": [
            {
                "question_id": ref.question_id,
                "correct": item["mark"] == 1.0,
                "answer": tickets_shown_keys(ref.order, questions[ref.question_id].answer),
                "explanation": questions[ref.question_id].explanation,
            }
            for ref, item in zip(refs, attempt["items"], strict=True)
        ],
        "recommended_articles": attempt["recommended_articles"],
    }
    if "assessment" in attempt:
        view.update(assessments.result_fields(attempt["assessment"]))
    return view


async def attempts_of(
    ctx: QuizContext, *, user_id: str, skip: int, limit: int
) -> tuple[list[Document], int]:
    """The resident's own attempts, newest first, each rendered as its result."""
    docs, total = await storage.user_attempts(ctx.db, user_id, skip=skip, limit=limit)
    items = [
        {
            **await result_view(ctx, doc),
            "mode": doc["mode"],
            "topic": doc.get("topic"),
            "submitted_at": doc["submitted_at"].isoformat(),
        }
        for doc in docs
    ]
    return items, total


async def _recommendations(
    ctx: QuizContext,
    user: Document,
    questions: dict[str, PublishedQuestion],
    marks: dict[str, float],
) -> list[Document]:
    """Published articles for the topics answered wrong, for the resident's group, unread."""
    wrong = Counter(questions[qid].topic for qid, value in marks.items() if value < 1)
    read = await safe_redis(content_service.read_by(ctx.kv, str(user["_id"])), set())
    group = user.get("profile", {}).get("group")
    return content_service.recommend(ctx.articles, wrong=dict(wrong), group=group, read=read)


def tickets_shown_keys(order: tuple[str, ...], answer: tuple[str, ...]) -> list[str]:
    return sorted("ABCDEF"[order.index(key)] for key in answer if key in order)


async def _streak_bonus(ctx: QuizContext, ticket: tickets.Ticket, user_id: str, day: str) -> int:
    """Consecutive days with a daily quiz earn a bonus (capped); other modes earn none."""
    if ticket.mode != "daily":
        return 0
    last_day, count = await safe_redis(storage.streak(ctx.kv, user_id), (None, 0))
    if last_day == day:  # a retry of today's submit: same streak, same bonus
        return STREAK_BONUS_PER_DAY * min(max(count, 1) - 1, STREAK_BONUS_CAP_DAYS)
    yesterday = (datetime.strptime(day, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")
    count = count + 1 if last_day == yesterday else 1
    await safe_redis(storage.set_streak(ctx.kv, user_id, day, count), None)
    return STREAK_BONUS_PER_DAY * min(count - 1, STREAK_BONUS_CAP_DAYS)


async def _after_stored(
    ctx: QuizContext, doc: Document, questions: dict[str, PublishedQuestion]
) -> None:
    """Effects of a stored attempt. Each is best-effort: the attempt is what counts, and the
    leaderboards can be rebuilt from attempts."""
    user_id, items = doc["user_id"], doc["items"]
    wrong = sorted({questions[i["question_id"]].topic for i in items if i["mark"] < 1})
    done = []
    if doc["mode"] == "daily":
        done.append(("daily_done", doc["periods"]["day"], 2 * 86400))
    if doc["mode"] == "contest":
        done.append(("contest_done", doc["periods"][ctx.contest_window], 40 * 86400))
    await safe_redis(
        storage.record_progress(
            ctx.kv,
            user_id=user_id,
            answered=[i["question_id"] for i in items],
            wrong_topics=wrong,
            at=time.time(),
            done=done,
        ),
        None,
    )
    await safe_redis(_award(ctx, doc), None)


async def _award(ctx: QuizContext, doc: Document) -> None:
    """Points to the county's and the township's boards for week, month and all time, and
    the resident to the township's participants; counted once per attempt, however often
    this runs for it."""
    if doc["user_id"]:
        await ctx.boards.add(doc)


# ------------------------------------------------------------------ reads


async def leaderboard(
    ctx: QuizContext,
    *,
    user: Document,
    scope: str,
    period: str,
    township: str | None,
    skip: int,
    limit: int,
) -> Document:
    now_keys = period_keys(datetime.now(UTC))
    if scope == "township":
        township = township or user.get("profile", {}).get("township_code")
        if not township:
            raise ValidationFailed(
                "township：请先在个人资料中选择乡镇，或指定 township 参数",
                details=[{"field": "township", "message": "缺少乡镇"}],
            )
    board_township = township if scope == "township" else None
    board = storage.board_key(ctx.kv, board_township, period, now_keys[period])
    me = str(user["_id"])
    await ctx.boards.ready()  # after a loss of Redis's data: wait a little for the rebuild
    rows, total, my_rank, my_points = await storage.read_board(
        ctx.kv, board, start=skip, stop=skip + limit - 1, user_id=me
    )
    items = [
        {
            "rank": skip + i + 1,
            "name": f"居民{member[-4:]}",
            "points": int(score),
            "is_me": member == me,
        }
        for i, (member, score) in enumerate(rows)
    ]
    return {
        "items": items,
        "total": total,
        "scope": scope,
        "period": period,
        "period_key": now_keys[period],
        "township": township if scope == "township" else None,
        "me": {"rank": my_rank, "points": int(my_points or 0)},
    }


async def township_ranking(
    ctx: QuizContext, *, period: str, populations: dict[str, int]
) -> list[Document]:
    key = period_keys(datetime.now(UTC))[period]
    townships = await county_service.township_names(ctx.db)
    await ctx.boards.ready()
    counts = await storage.participant_counts(
        ctx.kv, [storage.participants_key(ctx.kv, code, period, key) for code in townships]
    )
    rows = []
    for (code, township), participants in zip(townships.items(), counts, strict=True):
        population = populations.get(code) or township.get("population")
        per_1000 = round(participants / population * 1000, 3) if population else None
        rows.append(
            {
                "code": code,
                "name": township["name"],
                "participants": participants,
                "population": population,
                "per_1000": per_1000,
            }
        )
    rows.sort(
        key=lambda r: (r["per_1000"] is None, -(r["per_1000"] or 0), -r["participants"], r["code"])
    )
    return rows


EXPORT_PAGE = 500


async def export_attempts(ctx: QuizContext, *, user_id: str) -> list[Document]:
    """Every attempt of the resident for their export: what was asked (as shown), what they
    answered, the marks and scores, newest first."""
    exported: list[Document] = []
    while True:
        docs, total = await storage.user_attempts(
            ctx.db, user_id, skip=len(exported), limit=EXPORT_PAGE
        )
        for doc in docs:
            view = await result_view(ctx, doc)
            answered = {
                item["question_id"]: tickets_shown_keys(tuple(item["order"]), tuple(item["chosen"]))
                for item in doc["items"]
            }
            for result in view["results"]:
                result["your_answer"] = answered[result["question_id"]]
            view.update(
                mode=doc["mode"],
                topic=doc.get("topic"),
                submitted_at=doc["submitted_at"].isoformat(),
            )
            exported.append(view)
        if not docs or len(exported) >= total:
            return exported


async def forget_resident(ctx: QuizContext, *, user_id: str) -> None:
    await storage.anonymise_attempts(ctx.db, user_id)
    await safe_redis(storage.forget_user_state(ctx.kv, user_id), None)


async def weak_topics(kv: Kv, *, user_id: str) -> tuple[str, ...]:
    """Topics the resident recently answered wrong (for tailored reading)."""
    _, weak = await safe_redis(storage.recent_history(kv, user_id, since=float("inf")), ((), ()))
    return tuple(weak)


async def store_demo_attempts(db: AsyncDatabase, docs: list[Document]) -> None:
    """Store synthetic attempts (the demo seed), skipping those already stored."""
    await storage.insert_new_attempts(db, docs)


# ------------------------------------------------------------------ attempts scored elsewhere


async def replay(ctx: QuizContext, stored: Document) -> Document:
    """The result of an attempt stored before, after finishing what its first store may not
    have (cells, boards: each takes an attempt once)."""
    await _settle_replay(ctx, stored)
    return await result_view(ctx, stored)


async def store_scored(
    ctx: QuizContext, doc: Document, questions: dict[str, PublishedQuestion]
) -> tuple[bool, Document]:
    """Store a scored attempt once and settle it: (True, its result), or (False, the result
    stored before under the same id). A second assessment of the month is a 409."""
    if not await ctx.writer.insert(doc):
        stored = await storage.get_attempt(ctx.db, doc["_id"])
        if stored is not None:
            return False, await replay(ctx, stored)
        if doc["mode"] == "assessment":
            raise assessments.AssessmentDone()
        raise AlreadyDone("本期答题已完成，不能重复提交")
    await asyncio.shield(_settle(ctx, doc, questions))
    return True, await result_view(ctx, doc)


async def attempts_by_helper(db: AsyncDatabase) -> dict[str, Document]:
    """Attempts each helper answered with residents, by channel (assisted, paper)."""
    return await storage.attempts_by_helper(db)
