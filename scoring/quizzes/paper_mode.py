"""Paper forms on top of the quiz flow: the forms a helper prints are drawn as quizzes of
their mode are (an assessment form by the blueprint, never with options dropped), and a
filled form typed into a spreadsheet is scored and stored like any attempt, with channel
"paper", exactly once per form and resident.

The attempt's id is `<user_id>:paper-<form code>`, so uploading the same sheet twice (or two
helpers uploading the same form for the same resident) stores it once and returns the stored
result. An assessment counts in the month it was filled in (the sheet's 作答日期, else the
day the form was printed), and the month's one assessment rule holds as for a resident's own."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from question_bank import assembly
from scoring.quizzes import assessment_mode as assessments
from scoring.quizzes import service, storage, tickets
from scoring.quizzes.flow import QuizContext
from server.kernel.errors import Conflict, ValidationFailed

Document = dict[str, Any]
SHOWN_KEYS = "ABCDEF"


def draw_forms(ctx: QuizContext, *, mode: str, count: int) -> list[list[assembly.ServedQuestion]]:
    """`count` forms: assessments from the calibrated bank or by strata, practice for no
    particular group."""
    rng = random.Random()
    forms = []
    for _ in range(count):
        if mode == "assessment":
            form = assessments.draw_form(ctx.bank)
            if form is None:
                raise assessments.AssessmentUnavailable()
        else:
            form = assembly.assemble(
                ctx.bank.published.values(),
                mode="practice",
                group=None,
                rng=rng,
                generation=ctx.bank.generation,
            )
            if not form:
                raise Conflict("题库中暂时没有可用的题目", code="no_questions")
        forms.append(form)
    return forms


async def submit_paper(
    ctx: QuizContext,
    *,
    user: Document,
    form: Document,
    answers: dict[int, tuple[str, ...]],
    answered_at: datetime | None,
    uploaded_at: datetime,
    client: Document,
) -> tuple[bool, Document]:
    """Score one filled form for one resident; (True, result) when stored now, (False, the
    stored result with the `helper_id` who stored it) when it was stored before. Answers are by question number on the form,
    as the letters shown on it."""
    refs = tuple(
        tickets.QuizRef(q["question_id"], int(q["version"]), tuple(q["order"]))
        for q in form["questions"]
    )
    printed = _utc(form["issued_at"])
    started = answered_at or printed
    ticket = tickets.Ticket(
        mode=form["mode"],
        user_id=str(user["_id"]),
        issued_at=int(started.timestamp()),
        deadline=int(uploaded_at.timestamp()),
        nonce=f"paper-{form['_id']}",
        questions=refs,
        channel="paper",
    )
    stored = await storage.get_attempt(ctx.db, ticket.attempt_id)
    if stored is not None:
        result = await service.replay(ctx, stored)
        return False, {**result, "helper_id": (stored.get("paradata") or {}).get("helper_id")}
    if ticket.mode == "assessment":
        assessments.require_profile(user)
    questions = await service.served_questions(ctx, refs)
    chosen = _chosen(refs, questions, answers)
    doc = await service.scored_attempt(
        ctx,
        user=user,
        ticket=ticket,
        quiz_id=f"paper:{form['_id']}",
        chosen=chosen,
        questions=questions,
        now=uploaded_at,
    )
    doc["review"] = {"too_fast": False, "seconds": None}  # no time is measured on paper
    doc["paradata"] = {
        "seconds": None,  # answered on paper: no time was measured
        "durations_ms": None,
        "ip_hash": client.get("ip_hash"),
        "device_hash": client.get("device_hash"),
        "helper_id": client.get("helper_id"),
        "form_code": form["_id"],
        "form_issued_at": printed,
        "answered_on": answered_at,
        "uploaded_at": uploaded_at,
    }
    fresh, result = await service.store_scored(ctx, doc, questions)
    if not fresh:  # stored meanwhile by a racing upload
        stored = await storage.get_attempt(ctx.db, ticket.attempt_id) or {}
        return False, {**result, "helper_id": (stored.get("paradata") or {}).get("helper_id")}
    return True, result


def _chosen(
    refs: tuple[tickets.QuizRef, ...],
    questions: dict[str, Any],
    answers: dict[int, tuple[str, ...]],
) -> dict[str, set[str]]:
    """Original option keys per question from the letters ticked on the form."""
    chosen: dict[str, set[str]] = {}
    for number, letters in sorted(answers.items()):
        if number > len(refs):
            raise _problem(number, f"第 {number} 题不存在：这份答卷共 {len(refs)} 题")
        ref = refs[number - 1]
        if any(SHOWN_KEYS.index(letter) >= len(ref.order) for letter in letters):
            last = SHOWN_KEYS[len(ref.order) - 1]
            raise _problem(number, f"第 {number} 题只有 A—{last} 选项，填的是 {''.join(letters)}")
        if len(letters) > 1 and questions[ref.question_id].type != "multiple":
            raise _problem(number, f"第 {number} 题是单选题，只能勾选一个选项")
        chosen[ref.question_id] = {ref.order[SHOWN_KEYS.index(letter)] for letter in letters}
    return chosen


def _problem(number: int, message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": str(number), "message": message}])


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
