"""Offline answering: a pack of practice quizzes taken home on the phone, answered without a
connection, and submitted together when the phone next finds a network.

A pack is a few ordinary practice tickets (the resident's group preferences, an optional
topic, no question twice in one pack), each flagged `offline` in the signed ticket and valid
for seven days instead of minutes. Only practice goes offline: the month's assessment is a
measure and must be taken in the resident's own session or with a helper, and the daily quiz,
contests and adaptive practice are bound to a day, a window or a live exchange.

A batch is judged submission by submission, in the order sent: each is scored and stored
once through the ordinary submit (the attempt's `_id` comes from the ticket), so a batch sent
twice, or two copies of it racing, stores each quiz once and the copies get the first result
back ("duplicate"). An offline ticket may also go through the ordinary submit route; either
way the attempt carries `offline: true` and `answered_at`.

Times: `answered_at` is the phone's claim. It must fall between the ticket's issue and its
deadline and not in the future (each give or take a few minutes of clock skew), and the batch
must arrive within a grace period after the deadline. The claim sets only the time spent
(`review.seconds`, `paradata.seconds`); `submitted_at`, the day/week/month periods and so the
leaderboard points follow the server's receipt, so an old batch can't add points to a week
whose board has closed, and a phone's clock can't choose the week its points land in."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from question_bank import assembly
from scoring.quizzes import service, storage, tickets
from scoring.quizzes.flow import (
    OFFLINE_GRACE_SECONDS,
    QuizContext,
    QuizNotFound,
    quiz_view,
    safe_redis,
)
from server.kernel.errors import ApiError, Conflict

Document = dict[str, Any]

VALID_SECONDS = 7 * 86400  # a week: from one market day to the next
CLOCK_SKEW_SECONDS = 300  # a phone's clock may be a few minutes off the server's
CHANNEL = "offline"  # the attempts' channel in the statistics (reserved in QuizStart)
_RNG = random.Random()


class Rejected(Exception):
    """A submission of a batch that is not stored, with the code and message it gets."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ASSESSMENT_OFFLINE = (
    "offline_not_allowed",
    "科学素质测评不能离线作答：每月一次的测评须在本人登录的小程序中或在协助员陪同下在线完成",
)
NOT_OFFLINE = (
    "offline_not_allowed",
    "只有离线练习包中的练习可以批量提交；每日答题、竞赛和自适应练习请在线作答并提交",
)


# ------------------------------------------------------------------ the pack


async def pack(
    ctx: QuizContext, *, user: Document, count: int, topic: str | None, now: datetime
) -> Document:
    """`count` practice quizzes for the resident, each valid for VALID_SECONDS."""
    user_id, group = str(user["_id"]), (user.get("profile") or {}).get("group")
    since = (now - timedelta(days=service.REPEAT_WINDOW_DAYS)).timestamp()
    answered, weak = await safe_redis(
        storage.recent_history(ctx.kv, user_id, since), (frozenset(), ())
    )
    issued_at = int(now.timestamp())
    taken = set(answered)  # the pack's own questions count as recent: no repeats across it
    quizzes = []
    for _ in range(count):
        served = assembly.assemble(
            ctx.bank.published.values(),
            mode="practice",
            group=group,
            rng=_RNG,
            topic=topic,
            recently_answered=frozenset(taken),
            weak_topics=weak,
            generation=ctx.bank.generation,
        )
        if not served:
            raise Conflict("该主题暂时没有可用的题目，请换一个主题", code="no_questions")
        taken.update(s.question.id for s in served)
        ticket = tickets.Ticket(
            mode="practice",
            user_id=user_id,
            issued_at=issued_at,
            deadline=issued_at + VALID_SECONDS,
            nonce=tickets.new_nonce(),
            channel=CHANNEL,
            topic=topic or "",
            questions=tuple(
                tickets.QuizRef(s.question.id, s.question.version, s.order) for s in served
            ),
            offline=True,
        )
        quizzes.append(quiz_view(ctx.bank, ticket, tickets.encode(ticket, ctx.signing_key)))
    valid_until = datetime.fromtimestamp(issued_at + VALID_SECONDS, UTC).isoformat()
    return {"quizzes": quizzes, "valid_until": valid_until}


# ------------------------------------------------------------------ the batch


async def batch_submit(
    ctx: QuizContext, *, user: Document, submissions: Sequence[Any], client: Document
) -> list[Document]:
    """One outcome per submission, in the order sent. The first copy of each quiz is judged
    (concurrently, so the writer stores them in one group commit); a later copy of the same
    quiz in the batch is judged after it, and so finds it stored."""
    user_id = str(user["_id"])
    first: dict[str, int] = {}
    for index, submission in enumerate(submissions):
        first.setdefault(submission.quiz_id, index)
    ticket_of = {quiz_id: _ticket(ctx, user_id, quiz_id) for quiz_id in first}
    stored = await storage.get_attempts(
        ctx.db, [t.attempt_id for t in ticket_of.values() if isinstance(t, tickets.Ticket)]
    )

    async def judge(index: int, lookup: bool) -> Document:
        submission = submissions[index]
        ticket = ticket_of[submission.quiz_id]
        found = None
        if isinstance(ticket, tickets.Ticket):
            if lookup:
                found = await storage.get_attempt(ctx.db, ticket.attempt_id)
            else:
                found = stored.get(ticket.attempt_id)
        return await _outcome(ctx, user, submission, ticket, found, client)

    outcomes: list[Document | None] = [None] * len(submissions)
    firsts = sorted(first.values())
    for index, outcome in zip(
        firsts, await asyncio.gather(*(judge(i, False) for i in firsts)), strict=True
    ):
        outcomes[index] = outcome
    for index in range(len(submissions)):
        if outcomes[index] is None:
            outcomes[index] = await judge(index, True)
    return [o for o in outcomes if o is not None]


def _ticket(ctx: QuizContext, user_id: str, quiz_id: str) -> tickets.Ticket | Rejected:
    try:
        ticket = ctx.ticket(quiz_id)
    except tickets.InvalidTicket:
        return Rejected(QuizNotFound.code, QuizNotFound.message)
    if ticket.user_id != user_id:  # someone else's quiz: don't confirm it exists
        return Rejected(QuizNotFound.code, QuizNotFound.message)
    if ticket.mode == "assessment":
        return Rejected(*ASSESSMENT_OFFLINE)
    if not (ticket.offline and ticket.mode == "practice"):
        return Rejected(*NOT_OFFLINE)
    return ticket


async def _outcome(
    ctx: QuizContext,
    user: Document,
    submission: Any,
    ticket: tickets.Ticket | Rejected,
    found: Document | None,
    client: Document,
) -> Document:
    quiz_id = submission.quiz_id
    if isinstance(ticket, Rejected):
        return _view(quiz_id, "rejected", None, ticket.code, ticket.message)
    try:
        if found is not None:  # sent before (an earlier batch, or the ordinary submit)
            return _view(quiz_id, "duplicate", await service.replay(ctx, found))
        answered_at = _answered_at(ticket, submission.answered_at, datetime.now(UTC))
        fresh, result = await service.submit_attempt(
            ctx,
            user=user,
            quiz_id=quiz_id,
            answers=submission.answers,
            client=client,
            answered_at=answered_at,
        )
    except Rejected as rejected:
        return _view(quiz_id, "rejected", None, rejected.code, rejected.message)
    except ApiError as error:
        if error.status >= 500:
            raise
        # Answers that don't fit the quiz, a question since deleted, the grace period over.
        return _view(quiz_id, "rejected", None, error.code, error.message)
    return _view(quiz_id, "accepted" if fresh else "duplicate", result)


def _answered_at(ticket: tickets.Ticket, claimed: datetime, now: datetime) -> datetime:
    """The phone's answering time, if plausible: after the ticket was issued, by its
    deadline, not in the future (each within the clock skew); clamped into [issue, now]."""
    moment = claimed.astimezone(UTC)
    at = moment.timestamp()
    if now.timestamp() > ticket.deadline + OFFLINE_GRACE_SECONDS:
        raise Rejected(
            "quiz_expired",
            f"这份离线练习已超过提交期限（有效期 {VALID_SECONDS // 86400} 天，"
            f"之后可在 {OFFLINE_GRACE_SECONDS // 86400} 天内补交），无法提交",
        )
    if at > now.timestamp() + CLOCK_SKEW_SECONDS:
        raise Rejected(
            "answered_in_future",
            "作答时间晚于当前时间，请检查手机的日期和时间设置后重新提交",
        )
    if at < ticket.issued_at - CLOCK_SKEW_SECONDS:
        raise Rejected(
            "answered_before_issue",
            "作答时间早于这份练习的下发时间，请检查手机的日期和时间设置后重新提交",
        )
    if at > ticket.deadline + CLOCK_SKEW_SECONDS:
        raise Rejected(
            "quiz_expired",
            f"这份离线练习在有效期（{VALID_SECONDS // 86400} 天）过后才作答，无法提交",
        )
    issued = datetime.fromtimestamp(ticket.issued_at, UTC)
    return min(max(moment, issued), now)


def _view(
    quiz_id: str,
    status: str,
    result: Document | None,
    code: str | None = None,
    message: str | None = None,
) -> Document:
    error = None if code is None else {"code": code, "message": message}
    return {"quiz_id": quiz_id, "status": status, "result": result, "error": error}
