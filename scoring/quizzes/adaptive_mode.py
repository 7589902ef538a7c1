"""Adaptive practice: one question at a time, each chosen for the resident's current ability.

The quiz id is a signed ticket, as for every quiz, here carrying the questions asked so far
(the last one is being asked) and whether each earlier one was answered right, so a step
needs no stored session. After each answer θ is re-estimated (EAP) and the next item is the
most informative at it, drawn at random among the best five and balanced over the four
dimensions (scoring.irt.adaptive); the practice stops at a posterior SD of 0.35 or after 15
items. The answer key of a question is shown only once it is answered.

Each step is idempotent: the first answer to a step is stored (`adaptive_steps`, _id
"<nonce>:<step>", kept a day) with the response it got, and a repeat of that step, whatever
choice it carries, gets that response again; so a retry after a lost reply neither re-asks
nor lets the answer be changed once the key is shown. The finished practice is stored as an
attempt (its answers count in the next calibration; not in the classical item statistics)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from question_bank import assembly
from question_bank.cache import BankCache, PublishedQuestion
from scoring.irt import adaptive
from scoring.irt.model import ItemBank, item_bank
from scoring.irt.theta import eap
from scoring.quizzes import storage, tickets
from scoring.quizzes.flow import SUBMIT_GRACE_SECONDS, QuizContext, QuizExpired, QuizNotFound
from server.county.periods import COUNTY_TZ, period_keys
from server.county.vocab import age_band
from server.kernel.errors import Conflict, ValidationFailed

Document = dict[str, Any]
MAX_ITEMS = 15
POINTS_PER_CORRECT = 10  # the score shown in the history, as in the other modes
SE_TARGET = 0.35
# Fewer calibrated items than this (in the topic asked for) make a poor adaptive test.
MIN_POOL = 30
STEP_RECORD_TTL = timedelta(days=1)


class AdaptiveUnavailable(Conflict):
    code = "adaptive_unavailable"
    message = "题库尚未完成校准（或该主题的已校准题目太少），暂时无法进行自适应练习"


class AdaptiveFinished(Conflict):
    code = "adaptive_finished"
    message = "本次自适应练习已结束"


@dataclass(frozen=True)
class Pool:
    """The calibrated published questions an adaptive practice draws from, with their
    parameters as an ItemBank (same order)."""

    questions: tuple[PublishedQuestion, ...]
    bank: ItemBank

    def index_of(self, question_id: str) -> int | None:
        for i, question in enumerate(self.questions):
            if question.id == question_id:
                return i
        return None


def pool_of(bank: BankCache, topic: str | None) -> Pool:
    """Published, calibrated, not held for DIF, of the topic if one is asked for."""
    chosen = []
    for question in sorted(bank.published.values(), key=lambda q: q.id):
        key = f"{question.id}:{question.version}"
        params = bank.irt.get(key)
        if params is None or not params.calibrated or key in bank.held_from_assessment:
            continue
        if topic is None or question.topic == topic:
            chosen.append((question, params))
    if bank.scale is None or len(chosen) < MIN_POOL:
        raise AdaptiveUnavailable()
    return Pool(
        tuple(q for q, _ in chosen),
        item_bank(
            [q.id for q, _ in chosen],
            [q.dimension for q, _ in chosen],
            [p.a for _, p in chosen],
            [p.b for _, p in chosen],
        ),
    )


def start(ctx: QuizContext, *, user: Document, topic: str | None, now: datetime) -> Document:
    """A new adaptive practice with its first question."""
    pool = pool_of(ctx.bank, topic)
    first = adaptive.next_item(pool.bank, [], np.random.default_rng(), max_items=MAX_ITEMS)
    assert first is not None  # an empty history never stops
    issued = int(now.timestamp())
    ticket = tickets.Ticket(
        mode="adaptive",
        user_id=str(user["_id"]),
        issued_at=issued,
        deadline=issued + assembly.time_limit("adaptive", None),
        nonce=tickets.new_nonce(),
        questions=(_ref(pool.questions[first]),),
        topic=topic or "",
    )
    quiz_id = tickets.encode(ticket, ctx.signing_key)
    return {
        **_question_step(ctx, ticket, quiz_id),
        "theta": None,
        "theta_se": None,
    }


async def answer(
    ctx: QuizContext, *, user: Document, quiz_id: str, question_id: str, choice: list[str]
) -> Document:
    """Score the current question, re-estimate θ, and give the next one (or none: finished)."""
    ticket = _own_ticket(ctx, user, quiz_id)
    step_id = f"{ticket.nonce}:{len(ticket.questions)}"
    stored = await storage.adaptive_step(ctx.db, step_id)
    if stored is not None:
        response = dict(stored["response"])
        if response["next"] is None:  # the last step: its attempt may not have been stored
            done = tickets.Ticket(
                **{**ticket.__dict__, "results": (*ticket.results, response["correct"])}
            )
            await _store_attempt(ctx, user, done, datetime.now(UTC))
        return response
    if datetime.now(UTC).timestamp() > ticket.deadline + SUBMIT_GRACE_SECONDS:
        raise QuizExpired()
    current = ticket.questions[-1]
    if question_id != current.question_id:
        raise ValidationFailed(
            "question_id：不是本步的题目",
            details=[{"field": "question_id", "message": "不是本步的题目"}],
        )
    if any("ABCDEF".find(k) >= len(current.order) for k in choice):
        raise ValidationFailed(
            "choice：选项不存在", details=[{"field": "choice", "message": "选项不存在"}]
        )
    chosen = {current.order["ABCDEF".index(k)] for k in choice}
    response, finished = _step_response(ctx, ticket, chosen)
    now = datetime.now(UTC)
    first = await storage.record_adaptive_step(
        ctx.db,
        {
            "_id": step_id,
            "user_id": ticket.user_id,
            "chosen": sorted(chosen),
            "response": response,
            "expires_at": now + STEP_RECORD_TTL,
        },
    )
    if first is not None:  # a concurrent repeat stored its response first: that one stands
        return dict(first["response"])
    if finished is not None:
        await _store_attempt(ctx, user, finished, now)
    return response


def _own_ticket(ctx: QuizContext, user: Document, quiz_id: str) -> tickets.Ticket:
    try:
        ticket = ctx.ticket(quiz_id)
    except tickets.InvalidTicket:
        raise QuizNotFound() from None
    if ticket.user_id != str(user["_id"]):
        raise QuizNotFound()
    if ticket.mode != "adaptive":
        raise QuizNotFound("该测验不是自适应练习，请整卷提交")
    return ticket


def _step_response(
    ctx: QuizContext, ticket: tickets.Ticket, chosen: set[str]
) -> tuple[Document, tickets.Ticket | None]:
    """The response to this step, and the final ticket if the practice ends with it."""
    current = ticket.questions[-1]
    question = ctx.bank.published.get(current.question_id)
    if question is None or question.version != current.version:
        raise QuizNotFound("题目已更新，请重新开始自适应练习")
    right = chosen == set(question.answer)
    results = (*ticket.results, right)
    theta, se = _theta(ctx.bank, ticket.questions, results)
    following = None
    if len(ticket.questions) < MAX_ITEMS and se > SE_TARGET:
        following = _next_question(ctx.bank, ticket, results)
    response: Document = {
        "question_id": current.question_id,
        "correct": right,
        "answer": sorted("ABCDEF"[current.order.index(k)] for k in question.answer),
        "explanation": question.explanation,
        "theta": round(theta, 3),
        "theta_se": round(se, 3),
        "step": len(ticket.questions),
    }
    if following is None:
        finished = tickets.Ticket(**{**ticket.__dict__, "results": results})
        return {**response, "next": None, "quiz_id": None}, finished
    advanced = tickets.Ticket(
        **{
            **ticket.__dict__,
            "questions": (*ticket.questions, _ref(following)),
            "results": results,
        }
    )
    next_id = tickets.encode(advanced, ctx.signing_key)
    step = _question_step(ctx, advanced, next_id)
    return {**response, "next": step["questions"][0], "quiz_id": next_id}, None


def _theta(
    bank: BankCache, asked: tuple[tickets.QuizRef, ...], results: tuple[bool, ...]
) -> tuple[float, float]:
    """EAP θ from the parameters of the versions actually asked (whatever the pool is now)."""
    used = [
        (params, right)
        for ref, right in zip(asked, results, strict=True)
        if (params := bank.irt.get(f"{ref.question_id}:{ref.version}")) is not None
        and params.calibrated
    ]
    if not used:
        return 0.0, 1.0
    return eap([p.a for p, _ in used], [p.b for p, _ in used], [right for _, right in used])


def _next_question(
    bank: BankCache, ticket: tickets.Ticket, results: tuple[bool, ...]
) -> PublishedQuestion | None:
    """The next item, or None when the pool has become too small (a calibration or a DIF
    review since the practice began): the practice then ends with what was answered."""
    try:
        pool = pool_of(bank, ticket.topic or None)
    except AdaptiveUnavailable:
        return None
    answered = [
        (index, right)
        for ref, right in zip(ticket.questions, results, strict=True)
        if (index := pool.index_of(ref.question_id)) is not None
    ]
    chosen = adaptive.next_item(
        pool.bank, answered, np.random.default_rng(), max_items=MAX_ITEMS, se_target=0.0
    )
    return None if chosen is None else pool.questions[chosen]


def _ref(question: PublishedQuestion) -> tickets.QuizRef:
    served = assembly.serve_for_measure(question, random.Random())
    return tickets.QuizRef(question.id, question.version, served.order)


def _question_step(ctx: QuizContext, ticket: tickets.Ticket, quiz_id: str) -> Document:
    """The quiz view of the question being asked (no answer, explanation or dimension)."""
    ref = ticket.questions[-1]
    question = ctx.bank.published[ref.question_id]
    texts = dict(question.options)
    return {
        "quiz_id": quiz_id,
        "mode": "adaptive",
        "deadline": datetime.fromtimestamp(ticket.deadline, UTC).isoformat(),
        "step": len(ticket.questions),
        "max_items": MAX_ITEMS,
        "questions": [
            {
                "id": ref.question_id,
                "type": question.type,
                "stem": question.stem,
                "options": [
                    {"key": "ABCDEF"[i], "text": texts[key]} for i, key in enumerate(ref.order)
                ],
            }
        ],
    }


async def _store_attempt(
    ctx: QuizContext, user: Document, ticket: tickets.Ticket, now: datetime
) -> None:
    """The finished practice as an attempt, for the resident's history and the next
    calibration. No points (a measure, not a game), and not in the classical item statistics,
    whose rest-score discrimination assumes everyone answered comparable forms."""
    steps = await storage.adaptive_steps(ctx.db, ticket.nonce, len(ticket.questions))
    right = sum(ticket.results)
    profile = user.get("profile") or {}
    doc = {
        "_id": ticket.attempt_id,
        "user_id": ticket.user_id,
        "mode": "adaptive",
        "topic": ticket.topic or None,
        "channel": None,
        "issued_at": datetime.fromtimestamp(ticket.issued_at, UTC),
        "submitted_at": now,
        "quiz_id": tickets.encode(ticket, ctx.signing_key),
        "periods": period_keys(now),
        "score": right * POINTS_PER_CORRECT,
        "max_score": POINTS_PER_CORRECT * len(ticket.questions),
        "points": 0,
        "items": [
            {
                "question_id": ref.question_id,
                "version": ref.version,
                "order": list(ref.order),
                "chosen": steps.get(step, []),
                "mark": 1.0 if result else 0.0,
            }
            for step, (ref, result) in enumerate(
                zip(ticket.questions, ticket.results, strict=True), start=1
            )
        ],
        "recommended_articles": [],
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
    }
    await storage.insert_attempts(ctx.db, [doc])  # a repeat is a duplicate id: nothing to do
