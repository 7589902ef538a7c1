"""The literacy assessment's own rules on top of the quiz flow: a complete profile, one per
calendar month (a second tap resumes the month's quiz), a standard form, 100-point scoring,
and the cells that feed the estimates."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from question_bank import assembly
from question_bank.cache import PublishedQuestion
from scoring.assessment import scoring as assessment
from scoring.assessment.scoring import hundredths
from scoring.quizzes import storage, tickets
from scoring.quizzes.flow import SUBMIT_GRACE_SECONDS, QuizContext, QuizNotFound, quiz_view
from server.county.periods import period_keys
from server.kernel.errors import Conflict

Document = dict[str, Any]
PROFILE_FIELDS = ("township_code", "birth_year", "gender", "group", "education")


class AssessmentDone(Conflict):
    code = "assessment_already_taken"
    message = "本月已完成科学素质测评，每月只能测评一次，请下个月再来"


class ProfileIncomplete(Conflict):
    code = "profile_incomplete"
    message = "参加科学素质测评前，请先在个人资料中填写乡镇、出生年份、性别、人群和文化程度"


class AssessmentUnavailable(Conflict):
    code = "assessment_unavailable"
    message = "题库中可用于科学素质测评的题目不足，暂时无法测评"


def require_profile(user: Document) -> None:
    profile = user.get("profile") or {}
    if any(profile.get(name) is None for name in PROFILE_FIELDS):
        raise ProfileIncomplete()


async def start(ctx: QuizContext, *, user: Document, channel: str | None, now: datetime) -> Any:
    """The month's assessment: a new one, or the one already started (a double tap, or a
    resident coming back to it before its deadline). Submitted this month: 409."""

    require_profile(user)
    user_id, month = str(user["_id"]), period_keys(now)["month"]
    held = await storage.assessment_claim(ctx.db, user_id, month)
    if held is not None:
        resumed = await _resume(ctx, held, now.timestamp() - SUBMIT_GRACE_SECONDS)
        if resumed is not None:
            return resumed
    quiz_id = issue(ctx, user=user, channel=channel, now=now)
    kept = await storage.claim_assessment(ctx.db, user_id, month, quiz_id, replacing=held)
    return quiz_view(ctx.bank, ctx.ticket(kept), kept)


async def _resume(ctx: QuizContext, held: str, open_after: float) -> Document | None:
    """The month's assessment if it can still be taken; 409 if it was submitted; None if a
    new one should replace it (expired, signed with a retired key, or a question on it has
    since been edited and can't be shown)."""

    try:
        ticket = ctx.ticket(held)
    except tickets.InvalidTicket:
        return None
    if await storage.get_attempt(ctx.db, ticket.attempt_id) is not None:
        raise AssessmentDone()
    if ticket.deadline <= open_after:
        return None
    try:
        return quiz_view(ctx.bank, ticket, held)
    except QuizNotFound:
        return None


def issue(ctx: QuizContext, *, user: Document, channel: str | None, now: datetime) -> str:
    form = assembly.assemble_assessment(
        ctx.bank.published.values(), rng=random.Random(), facility=ctx.bank.facility
    )
    if form is None:
        raise AssessmentUnavailable()
    issued_at = int(now.timestamp())
    group = user["profile"]["group"]
    ticket = tickets.Ticket(
        mode="assessment",
        user_id=str(user["_id"]),
        issued_at=issued_at,
        deadline=issued_at + assembly.time_limit("assessment", group),
        nonce=tickets.new_nonce(),
        channel=channel or "",
        questions=tuple(tickets.QuizRef(s.question.id, s.question.version, s.order) for s in form),
    )
    return tickets.encode(ticket, ctx.signing_key)


async def scored(
    ctx: QuizContext,
    *,
    ticket: tickets.Ticket,
    marks: dict[str, float],
    questions: dict[str, PublishedQuestion],
) -> Document:
    """The assessment block of the attempt: scores, tier, and the periods it counts in.

    Periods come from when the assessment was started, so one begun on the last evening of a
    month counts in that month (and its once-per-month key matches the claim)."""
    result = assessment.score((questions[qid].dimension, mark) for qid, mark in marks.items())
    periods = period_keys(datetime.fromtimestamp(ticket.issued_at, UTC))
    year = periods["month"][:4]
    first = await storage.first_of_year(ctx.db, ticket.user_id, year, ticket.attempt_id)
    return {
        **result.as_response(),
        "literate": result.literate,
        "total_hundredths": hundredths(result.total),
        "dimension_hundredths": {d: hundredths(s) for d, s in result.dimension_scores.items()},
        "month": periods["month"],
        "counts_in": [periods["month"], year] if first else [periods["month"]],
    }
