"""The literacy assessment's own rules on top of the quiz flow: a complete profile, one per
calendar month (a second tap resumes the month's quiz), a standard form, 100-point scoring,
and the cells that feed the estimates."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from question_bank import assembly, item_params
from question_bank.cache import BankCache, PublishedQuestion
from question_bank.item_params import ItemParams, Scale
from scoring.assessment import scoring as assessment
from scoring.assessment.scoring import display, hundredths
from scoring.irt import scores as irt_scores
from scoring.irt.forms import FormAssembler
from scoring.quizzes import storage, tickets
from scoring.quizzes.flow import SUBMIT_GRACE_SECONDS, QuizContext, QuizNotFound, quiz_view
from server.county.periods import period_keys
from server.kernel.errors import Conflict

Document = dict[str, Any]
PROFILE_FIELDS = ("township_code", "birth_year", "gender", "group", "education")
# This process's assembler of forms from the calibrated bank (it counts exposure).
CALIBRATED_FORMS = FormAssembler()


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
    if await storage.assessment_stored(ctx.db, user_id, month):
        raise AssessmentDone()  # e.g. a paper form already uploaded for the month
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
    form = draw_form(ctx.bank)
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


def draw_form(bank: BankCache) -> list[assembly.ServedQuestion] | None:
    """From the calibrated bank (equal information at the cut, exposure capped) once there is
    a scale, else by strata of observed facility."""
    rng = random.Random()
    calibrated = CALIBRATED_FORMS.form(bank)
    if calibrated is None:
        return assembly.assemble_assessment(
            bank.published.values(),
            rng=rng,
            facility=bank.facility,
            held=bank.held_from_assessment,
        )
    form = [assembly.serve_for_measure(question, rng) for question in calibrated]
    rng.shuffle(form)
    return form


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
    periods = period_keys(datetime.fromtimestamp(ticket.issued_at, UTC))
    year = periods["month"][:4]
    first = await storage.first_of_year(ctx.db, ticket.user_id, year, ticket.attempt_id)
    await _scale_in_force(ctx)
    answers = {
        f"{ref.question_id}:{ref.version}": marks[ref.question_id] for ref in ticket.questions
    }
    dimensions = {
        f"{ref.question_id}:{ref.version}": questions[ref.question_id].dimension
        for ref in ticket.questions
    }
    return {
        **score_block(answers, dimensions, ctx.bank.scale, ctx.bank.irt),
        "month": periods["month"],
        "counts_in": [periods["month"], year] if first else [periods["month"]],
    }


async def _scale_in_force(ctx: QuizContext) -> None:
    """Make sure this process scores on the scale in force. `rescore` announces a new scale
    to every process, but an announcement can be missed (Redis away) and a process would then
    score on the old one until its ten-minute reload, putting percent totals into cells
    rescore has just moved onto the scale. One read by _id per assessment (a resident takes
    one a month) rules that out."""
    if await item_params.scale_job(ctx.db) != item_params.job_of(ctx.bank.scale):
        await ctx.bank.load(ctx.db)


def score_block(
    marks: dict[str, float],
    dimensions: dict[str, str],
    scale: Scale | None,
    params: dict[str, ItemParams],
) -> Document:
    """The scores of an assessment by "id:version": the dimension scores as percent correct;
    the total, tier and literacy on the IRT scale when the bank is calibrated ("scale": "irt",
    the expected total on the reference form at the resident's θ), else as percent correct
    ("scale": "raw"). `raw_total` is always the percent-correct total."""
    raw = assessment.score((dimensions[key], mark) for key, mark in marks.items())
    return {
        "dimension_scores": {d: display(s) for d, s in raw.dimension_scores.items()},
        "dimension_hundredths": {d: hundredths(s) for d, s in raw.dimension_scores.items()},
        **total_fields(hundredths(raw.total), marks, scale, params),
    }


def total_fields(
    raw_hundredths: int, marks: dict[str, float], scale: Scale | None, params: dict[str, ItemParams]
) -> Document:
    """The total and what follows from it (tier, literacy) on the scale in force; also what a
    re-scoring after a calibration rewrites."""
    equated = irt_scores.equate(scale, params, ((k, m >= 1.0) for k, m in marks.items()))
    fields: Document = {"raw_total": raw_hundredths / 100}
    if equated is None or scale is None:
        total_hundredths = raw_hundredths
        fields.update(scale="raw", theta=None, theta_se=None, scale_id=None)
    else:
        total_hundredths = hundredths(equated.total)
        fields.update(
            scale="irt",
            theta=round(equated.theta, 3),
            theta_se=round(equated.theta_se, 3),
            scale_id=scale.job_id,
        )
    total = total_hundredths / 100
    return {
        **fields,
        "total": total,
        "total_hundredths": total_hundredths,
        "tier": assessment.tier_of(total),
        "literate": total >= assessment.LITERATE_CUTOFF,
    }


def raw_hundredths_of(block: Document) -> int:
    """The stored percent-correct total (before the IRT scale, the total itself)."""
    if block.get("scale", "raw") == "raw":
        return int(block["total_hundredths"])
    return round(block["raw_total"] * 100)


def result_fields(block: Document) -> Document:
    """What the resident's result shows of the stored scores (attempts stored before the IRT
    scale have only the percent-correct total, which was then the total)."""
    return {
        "dimension_scores": block["dimension_scores"],
        "total": block["total"],
        "tier": block["tier"],
        "scale": block.get("scale", "raw"),
        "theta": block.get("theta"),
        "theta_se": block.get("theta_se"),
        "raw_total": block.get("raw_total", block["total"]),
    }
