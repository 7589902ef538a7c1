"""Rules of assisted answering: a helper acts only in their townships and within a daily
limit; registers residents without WeChat under a printed code; starts and submits quizzes
with them (channel "assisted", the helper recorded on the attempt); prints paper forms and
uploads the filled sheets (channel "paper").

A helper sees residents of their townships, never another helper's results: the only
results a helper gets are those of the quizzes they submit themselves."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from scoring.assisted import paper, sheets, storage
from scoring.quizzes import paper_mode
from scoring.quizzes import service as quiz_service
from scoring.quizzes.flow import QuizContext
from server.accounts import service as users
from server.county import service as county_service
from server.county.periods import COUNTY_TZ, period_keys, seconds_until_next_day
from server.kernel.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from server.kernel.principal import Principal

Document = dict[str, Any]
FORM_CODE_ALPHABET = users.CODE_ALPHABET
MODE_LABELS = {"assessment": "月度科学素质测评", "practice": "科普练习"}


# A row's own problems; anything else (storage away) fails the upload, which a retry repeats
# safely: the rows stored before count once.
ROW_PROBLEMS = (ValidationFailed, Forbidden, Conflict, NotFound)


class OutOfScope(Forbidden):
    code = "outside_helper_townships"
    message = "该乡镇不在你的服务范围内"


class ResidentNotFound(NotFound):
    code = "resident_not_found"
    message = "没有这个居民编号，请核对居民卡"


@dataclass(frozen=True)
class Scope:
    """Who is acting and where: an admin acts everywhere (townships None)."""

    actor_id: str
    townships: frozenset[str] | None
    daily_limit: int | None

    def check(self, township: str | None) -> None:
        if self.townships is not None and township not in self.townships:
            raise OutOfScope()

    def allows(self, township: str | None) -> bool:
        return self.townships is None or township in self.townships


async def scope_of(db: AsyncDatabase, principal: Principal) -> Scope:
    if principal.role == "admin":
        return Scope(principal.user_id, None, None)
    helper = await users.get(db, user_id=principal.user_id)
    if helper is None or helper.get("role") != "helper":
        raise NotFound("协助员账号不存在", code="helper_not_found")
    if helper.get("active") is False:
        raise Forbidden("协助员账号已停用，请联系管理员", code="helper_inactive")
    return Scope(
        principal.user_id, frozenset(helper.get("townships") or ()), helper.get("daily_limit")
    )


async def spend(db: AsyncDatabase, scope: Scope, amount: int = 1) -> None:
    """Count actions against the helper's daily limit (429 once it is reached)."""
    if scope.daily_limit is None:
        return
    day = period_keys(datetime.now(UTC))["day"]
    if not await storage.take_daily(db, scope.actor_id, day, amount, scope.daily_limit):
        raise RateLimited(
            seconds_until_next_day(datetime.now(UTC)),
            f"今天的协助次数已达上限（{scope.daily_limit} 次），请明天再来或联系管理员调整",
            code="helper_daily_limit",
        )


# ------------------------------------------------------------------ residents


def resident_view(user: Document) -> Document:
    profile = user.get("profile") or {}
    return {
        "code": user["resident_code"],
        "township_code": profile.get("township_code"),
        "birth_year": profile.get("birth_year"),
        "gender": profile.get("gender"),
        "group": profile.get("group"),
        "education": profile.get("education"),
        "registered_at": _iso(user.get("created_at")),
    }


async def register(db: AsyncDatabase, scope: Scope, body: Any) -> Document:
    if not await county_service.township_exists(db, body.township_code):
        raise ValidationFailed(
            "township_code：乡镇不存在，请从乡镇列表中选择",
            details=[{"location": "body", "field": "township_code", "message": "乡镇不存在"}],
        )
    scope.check(body.township_code)
    if users.is_minor(body.birth_year) and not body.consent.guardian:
        raise ValidationFailed(
            "未满14周岁的居民需要监护人当面同意，请确认后勾选监护人同意",
            code="guardian_consent_required",
            details=[
                {"location": "body", "field": "consent.guardian", "message": "需要监护人同意"}
            ],
        )
    await spend(db, scope)
    profile = body.model_dump(exclude={"consent"})
    consent = {"version": "oral", "guardian": body.consent.guardian}
    user = await users.register_assisted_resident(
        db, profile=profile, helper_id=scope.actor_id, consent=consent
    )
    return resident_view(user)


async def resident_in_scope(db: AsyncDatabase, scope: Scope, code: str) -> Document:
    user = await users.assisted_resident(db, code)
    if user is None:
        raise ResidentNotFound()
    scope.check((user.get("profile") or {}).get("township_code"))
    return user


async def residents(
    db: AsyncDatabase, scope: Scope, *, skip: int, limit: int
) -> tuple[list[Document], int]:
    townships = None if scope.townships is None else sorted(scope.townships)
    found, total = await users.assisted_residents(db, townships, skip=skip, limit=limit)
    return [resident_view(u) for u in found], total


# ------------------------------------------------------------------ quizzes with a helper


def _quiz_user(user: Document) -> Document:
    return {"_id": str(user["_id"]), "profile": user.get("profile") or {}}


async def start_quiz(
    ctx: QuizContext, scope: Scope, code: str, *, mode: str, topic: str | None
) -> Document:
    user = await resident_in_scope(ctx.db, scope, code)
    await spend(ctx.db, scope)
    return await quiz_service.start_quiz(
        ctx, user=_quiz_user(user), mode=mode, topic=topic, channel="assisted"
    )


async def submit_quiz(
    ctx: QuizContext, scope: Scope, code: str, *, quiz_id: str, answers: list[Any], client: Document
) -> Document:
    user = await resident_in_scope(ctx.db, scope, code)
    return await quiz_service.submit_quiz(
        ctx,
        user=_quiz_user(user),
        quiz_id=quiz_id,
        answers=answers,
        client={**client, "helper_id": scope.actor_id},
    )


# ------------------------------------------------------------------ paper forms


def new_form_code() -> str:
    raw = "".join(secrets.choice(FORM_CODE_ALPHABET) for _ in range(8))
    return f"PF-{raw[:4]}-{raw[4:]}"


async def print_forms(
    ctx: QuizContext, scope: Scope, *, mode: str, count: int, township: str | None
) -> tuple[bytes, str]:
    """A PDF of `count` numbered forms for one township, each stored under its code so the
    filled sheet can be scored against exactly what was printed. Returns (pdf, filename)."""
    township = _form_township(scope, township)
    names = await county_service.township_names(ctx.db)
    if township not in names:
        raise ValidationFailed(
            "township：乡镇不存在",
            details=[{"location": "query", "field": "township", "message": "乡镇不存在"}],
        )
    await spend(ctx.db, scope, count)
    now = datetime.now(UTC)
    forms = paper_mode.draw_forms(ctx, mode=mode, count=count)
    docs, printed = [], []
    for served in forms:
        code = new_form_code()
        docs.append(
            {
                "_id": code,
                "mode": mode,
                "township_code": township,
                "helper_id": scope.actor_id,
                "issued_at": now,
                "questions": [
                    {
                        "question_id": s.question.id,
                        "version": s.question.version,
                        "order": list(s.order),
                    }
                    for s in served
                ],
            }
        )
        printed.append(_printable(code, mode, names[township]["name"], now, served))
    await storage.insert_forms(ctx.db, docs)
    pdf = await asyncio.to_thread(paper.render_forms, printed)
    day = now.astimezone(COUNTY_TZ).date().isoformat()
    return pdf, f"paper-forms-{township}-{day}.pdf"


def _form_township(scope: Scope, township: str | None) -> str:
    if township is not None:
        scope.check(township)
        return township
    if scope.townships is not None and len(scope.townships) == 1:
        return next(iter(scope.townships))
    raise ValidationFailed(
        "township：请指定答卷所用的乡镇（你负责多个乡镇）",
        details=[{"location": "query", "field": "township", "message": "请指定乡镇"}],
    )


def _printable(
    code: str, mode: str, township_name: str, now: datetime, served: list[Any]
) -> paper.PaperForm:
    return paper.PaperForm(
        code=code,
        title="公民科学素质测评（纸质答卷）"
        if mode == "assessment"
        else "科普知识练习（纸质答卷）",
        township_name=township_name,
        mode_label=MODE_LABELS[mode],
        issued_on=now.astimezone(COUNTY_TZ).date().isoformat(),
        questions=tuple(
            paper.PaperQuestion(
                number=number,
                stem=s.question.stem,
                options=tuple(
                    ("ABCDEF"[i], dict(s.question.options)[key]) for i, key in enumerate(s.order)
                ),
                multiple=s.question.type == "multiple",
            )
            for number, s in enumerate(served, start=1)
        ),
    )


async def upload_forms(
    ctx: QuizContext, scope: Scope, *, filename: str, data: bytes, client: Document
) -> Document:
    """Score a spreadsheet of filled forms: each row once (by form and resident code), every
    problem reported by row in Chinese; rows with problems are left out, the others stored."""
    sheet = await asyncio.to_thread(_read, filename, data)
    forms = await storage.forms_by_code(ctx.db, sorted({r.form_code for r in sheet.rows}))
    uploaded_at = datetime.now(UTC)
    outcomes: list[Document] = []
    for row in sheet.rows:
        try:
            outcome = await _upload_row(ctx, scope, row, forms, client, uploaded_at)
        except ROW_PROBLEMS as error:  # storage away is a 503 for the whole upload, not a row's
            sheet.problem(
                row.row, error.details[0]["field"] if error.details else "答卷", error.message
            )
            outcome = {"row": row.row, "status": "rejected"}
        outcomes.append({"form_code": row.form_code, "resident_code": row.resident_code, **outcome})
    for problem in sheet.errors:
        if not any(o["row"] == problem["row"] for o in outcomes):
            outcomes.append({"row": problem["row"], "status": "rejected"})
    outcomes.sort(key=lambda o: o["row"])
    count = {
        key: sum(o["status"] == status for o in outcomes)
        for key, status in (
            ("accepted", "accepted"),
            ("duplicates", "duplicate"),
            ("rejected", "rejected"),
        )
    }
    return {**count, "errors": sorted(sheet.errors, key=lambda e: e["row"]), "rows": outcomes}


def _read(filename: str, data: bytes) -> sheets.Sheet:
    from question_bank.importing import sheet_rows

    return sheets.read_sheet(sheet_rows(filename, data))


async def _upload_row(
    ctx: QuizContext,
    scope: Scope,
    row: sheets.SheetRow,
    forms: dict[str, Document],
    client: Document,
    uploaded_at: datetime,
) -> Document:
    form = forms.get(row.form_code)
    if form is None:
        raise ValidationFailed(
            f"表单编号 {row.form_code} 不存在，请照答卷上的编号填写",
            details=[{"field": sheets.FORM_COLUMN}],
        )
    if not scope.allows(form["township_code"]):
        raise Forbidden(
            f"答卷 {row.form_code} 属于其他乡镇，你不能上传",
            details=[{"field": sheets.FORM_COLUMN}],
        )
    user = await users.assisted_resident(ctx.db, row.resident_code)
    if user is None:
        raise ValidationFailed(
            f"居民编号 {row.resident_code} 不存在，请核对居民卡",
            details=[{"field": sheets.RESIDENT_COLUMN}],
        )
    if not scope.allows((user.get("profile") or {}).get("township_code")):
        raise Forbidden(
            f"居民 {row.resident_code} 不在你的服务范围内",
            details=[{"field": sheets.RESIDENT_COLUMN}],
        )
    if (user.get("profile") or {}).get("township_code") != form["township_code"]:
        raise ValidationFailed(
            f"答卷 {row.form_code} 是为其他乡镇印制的，与居民 {row.resident_code} 的乡镇不符",
            details=[{"field": sheets.RESIDENT_COLUMN}],
        )
    answered_at = _answered_at(row, form, uploaded_at)
    if not await storage.claim_form(ctx.db, form["_id"], str(user["_id"])):
        raise Conflict(
            f"答卷 {row.form_code} 已录入为另一位居民的答卷，同一份答卷只能属于一位居民",
            details=[{"field": sheets.RESIDENT_COLUMN}],
        )
    fresh, result = await paper_mode.submit_paper(
        ctx,
        user=_quiz_user(user),
        form=form,
        answers=row.answers,
        answered_at=answered_at,
        uploaded_at=uploaded_at,
        client={**client, "helper_id": scope.actor_id},
    )
    # A duplicate another helper uploaded: its result is theirs to see, not this helper's.
    shown = fresh or result.get("helper_id") == scope.actor_id
    return {
        "row": row.row,
        "status": "accepted" if fresh else "duplicate",
        "score": result.get("score") if shown else None,
        "total": result.get("total") if shown else None,
    }


def _answered_at(row: sheets.SheetRow, form: Document, uploaded_at: datetime) -> datetime:
    """When the form was filled in: the sheet's date (noon, county time, but never after the
    upload), which must lie between the day it was printed and the upload; without a date,
    the upload time. It decides the month an assessment counts in."""
    if row.answered_on is None:
        return uploaded_at
    printed = form["issued_at"]
    printed = printed if printed.tzinfo else printed.replace(tzinfo=UTC)
    first = printed.astimezone(COUNTY_TZ).date()
    last = uploaded_at.astimezone(COUNTY_TZ).date()
    if not first <= row.answered_on <= last:
        raise ValidationFailed(
            f"作答日期 {row.answered_on.isoformat()} 不在答卷印制日（{first.isoformat()}）"
            f"与今天（{last.isoformat()}）之间，请核对",
            details=[{"field": sheets.DATE_COLUMN}],
        )
    noon = datetime.combine(row.answered_on, time(12), COUNTY_TZ).astimezone(UTC)
    return min(max(noon, printed), uploaded_at)


# ------------------------------------------------------------------ admins


async def helper_activity(db: AsyncDatabase) -> list[Document]:
    """Every helper with their townships, limit and what they did (today and in all)."""
    day = period_keys(datetime.now(UTC))["day"]
    today = await storage.used_on(db, day)
    forms = await storage.forms_issued_by(db)
    attempts = await quiz_service.attempts_by_helper(db)
    return [
        {
            **helper_view(helper),
            "used_today": today.get(str(helper["_id"]), 0),
            "forms_printed": forms.get(str(helper["_id"]), 0),
            "attempts": attempts.get(str(helper["_id"]), {"assisted": 0, "paper": 0}),
        }
        for helper in await users.helpers(db)
    ]


def helper_view(helper: Document) -> Document:
    return {
        "id": str(helper["_id"]),
        "username": helper.get("username"),
        "townships": list(helper.get("townships") or ()),
        "daily_limit": helper.get("daily_limit"),
        "active": helper.get("active", True),
        "created_at": _iso(helper.get("created_at")),
    }


async def create_helper(db: AsyncDatabase, body: Any) -> Document:
    await _known_townships(db, body.townships)
    helper_id = await users.create_staff(
        db,
        username=body.username,
        password=body.password,
        role="helper",
        extra={"townships": body.townships, "daily_limit": body.daily_limit, "active": True},
    )
    created = await users.get(db, user_id=helper_id)
    assert created is not None
    return helper_view(created)


async def update_helper(db: AsyncDatabase, helper_id: str, body: Any) -> Document:
    fields = body.model_dump(exclude_none=True)
    if "townships" in fields:
        await _known_townships(db, fields["townships"])
    if not fields:
        raise ValidationFailed("请至少修改一项：townships、daily_limit 或 active")
    return helper_view(await users.set_helper_scope(db, helper_id, fields))


async def _known_townships(db: AsyncDatabase, codes: list[str]) -> None:
    names = await county_service.township_names(db)
    unknown = [code for code in codes if code not in names]
    if unknown:
        raise ValidationFailed(
            f"townships：乡镇不存在：{'、'.join(unknown[:5])}",
            details=[{"location": "body", "field": "townships", "message": "乡镇不存在"}],
        )


def _iso(moment: Any) -> str | None:
    if not isinstance(moment, datetime):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
