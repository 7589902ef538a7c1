"""What every quiz mode shares: the context a quiz is served and scored with, its errors,
the resident's view of a quiz (no answers), and Redis used as a convenience that may be away."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase

from content.cache import ArticleCache
from question_bank.cache import BankCache
from scoring.quizzes import tickets
from scoring.quizzes.leaderboards import Leaderboards
from scoring.quizzes.writer import AttemptWriter
from server.kernel.errors import Conflict, NotFound
from server.kernel.kv import Kv

log = logging.getLogger(__name__)

Document = dict[str, Any]


SUBMIT_GRACE_SECONDS = 30  # a slow rural connection may deliver the answers a little late
# An offline pack's quiz is answered while its ticket is valid but reaches the server only
# when the phone next finds a network: a resident who answers on the last day before a
# market-day trip to town, or whose village has coverage only on the hill, needs days, not
# seconds. Three days covers a long weekend without signal; the points still go to the
# period the answers arrive in (see offline_mode), so a late batch can't reopen a week.
OFFLINE_GRACE_SECONDS = 3 * 86400


def grace_seconds(ticket: tickets.Ticket) -> int:
    """How long after its deadline a submit of this ticket is still accepted."""
    return OFFLINE_GRACE_SECONDS if ticket.offline else SUBMIT_GRACE_SECONDS


class QuizExpired(Conflict):
    code = "quiz_expired"
    message = "答题时间已过，本次答题无法提交"


class QuizNotFound(NotFound):
    code = "quiz_not_found"
    message = "找不到该测验"


class AlreadyDone(Conflict):
    code = "already_done"
    message = "本期答题已完成"


_SAFE_REDIS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass(frozen=True)
class QuizContext:
    db: AsyncDatabase
    kv: Kv
    bank: BankCache
    writer: AttemptWriter
    signing_key: bytes  # HMAC key of quiz tickets
    contest_window: str
    partial_credit: str
    articles: ArticleCache
    boards: Leaderboards
    previous_keys: tuple[bytes, ...] = ()  # still accepted while a rotated-out key expires

    def ticket(self, quiz_id: str) -> tickets.Ticket:
        """The ticket a quiz id carries (signed with the current or a previous key)."""
        return tickets.decode(quiz_id, self.signing_key, *self.previous_keys)


def quiz_view(bank: BankCache, ticket: tickets.Ticket, quiz_id: str) -> Document:
    """What the resident sees: no answer, explanation or dimension."""
    questions = []
    for ref in ticket.questions:
        question = bank.published.get(ref.question_id)
        if question is None or question.version != ref.version:
            raise QuizNotFound("题目已更新，请重新开始答题")
        texts = dict(question.options)
        questions.append(
            {
                "id": ref.question_id,
                "type": question.type,
                "stem": question.stem,
                "options": [
                    {"key": "ABCDEF"[i], "text": texts[key]} for i, key in enumerate(ref.order)
                ],
            }
        )
    deadline = datetime.fromtimestamp(ticket.deadline, UTC).isoformat()
    return {"quiz_id": quiz_id, "mode": ticket.mode, "deadline": deadline, "questions": questions}


async def safe_redis(awaitable: Any, default: Any) -> Any:
    """Redis holds conveniences (today's quiz, recent answers); without it quizzes still work."""
    try:
        return await awaitable
    except _SAFE_REDIS:
        log.warning("redis unavailable for quiz state")
        return default
