"""HTTP routes of the IRT calibration: start a calibration and follow its job (analysts and
admins), and the DIF flags with the editors' reviews."""

from __future__ import annotations

from aiohttp import web

from question_bank import item_params
from question_bank.keys import BANK
from scoring.irt import service
from scoring.irt.keys import CALIBRATIONS
from scoring.irt.models import DifQuery, DifReview, JobRead, JobStarted
from server.kernel.audit import record_request
from server.kernel.errors import NotFound
from server.kernel.http import caller_id, endpoint, json_response
from server.kernel.keys import DB, KV

MEASUREMENT = ("analyst", "admin")
EDITORS = ("editor", "admin")
READERS = ("editor", "analyst", "admin")


class NotCalibrated(NotFound):
    code = "not_calibrated"
    message = "该题目当前发布的版本尚未校准，没有可复核的 DIF 结果"


@endpoint(roles=MEASUREMENT, response=JobStarted, status=202, tag="irt")
async def start_calibration(request: web.Request) -> web.Response:
    """Start an IRT calibration of the bank from the stored answers (or get the running one)."""
    job_id = await request.app[CALIBRATIONS].request(caller_id(request))
    return json_response({"job_id": job_id}, status=202)


@endpoint(roles=MEASUREMENT, response=JobRead, tag="irt")
async def calibration_job(request: web.Request) -> web.Response:
    """A calibration job's status, and its summary once done."""
    return json_response(await service.job_view(request.app[DB], request.match_info["job_id"]))


@endpoint(roles=READERS, query=DifQuery, tag="irt")
async def dif_flags(request: web.Request, *, query: DifQuery) -> web.Response:
    """Question versions flagged for DIF (class C by default: off assessment forms until an
    editor reviews them), with the figures per group contrast."""
    classes = ("C",) if query.dif_class == "C" else ("B", "C")
    flagged = await item_params.dif_flagged(request.app[DB], classes)
    bank = request.app[BANK]
    for entry in flagged:
        doc = bank.docs.get(entry["question_id"])
        entry["stem"] = (doc or {}).get("content", {}).get("stem")
    return json_response(query.page_of(flagged))


@endpoint(roles=EDITORS, body=DifReview, tag="irt")
async def review_dif(request: web.Request, *, body: DifReview) -> web.Response:
    """Review the DIF flag of the question's published version: keep it on assessment forms
    or keep it off (audited; a later review replaces this one)."""
    question_id = request.match_info["question_id"]
    doc = request.app[BANK].docs.get(question_id)
    version = (doc or {}).get("published_version")
    reviewed = None
    if version is not None:
        reviewed = await item_params.review_dif(
            request.app[DB],
            request.app[KV],
            question_id,
            int(version),
            decision=body.decision,
            reason=body.reason,
            actor=caller_id(request),
        )
    if reviewed is None:
        raise NotCalibrated()
    await record_request(
        request,
        action="dif_review",
        subject=f"question:{question_id}:{version}",
        detail=body.model_dump(),
    )
    return json_response({"question_id": question_id, **reviewed})


def setup(app: web.Application, api: str) -> None:
    base = f"{api}/admin/irt"
    app.router.add_post(f"{base}/calibrate", start_calibration)
    app.router.add_get(f"{base}/jobs/{{job_id}}", calibration_job)
    app.router.add_get(f"{base}/dif", dif_flags)
    app.router.add_post(f"{base}/dif/{{question_id}}/review", review_dif)
