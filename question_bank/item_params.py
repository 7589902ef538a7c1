"""The items' IRT parameters as the bank holds them: per question version, what the latest
calibration estimated (slope `a`, difficulty `b`, their standard errors, the evidence and the
model used, the item fit), its DIF check and an editor's review of that check; and the scale
they are on (the fixed reference form whose expected score is the reported total, and the θ
of the 70 cut). Calibrations write them (scoring.irt); every process holds them in its bank
cache, since scoring an assessment must not cost a database round trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.exceptions
from pymongo.asynchronous.database import AsyncDatabase

from question_bank import storage
from server.kernel.clock import now
from server.kernel.kv import Kv

Document = dict[str, Any]
CALIBRATED_MODELS = ("2pl", "rasch", "fixed")


@dataclass(frozen=True)
class ItemParams:
    a: float
    b: float
    model: str  # "2pl" | "rasch" | "fixed" (linked anchor) | "prior" (too few answers)
    dif_class: str | None  # ETS "A" | "B" | "C" for the worst group contrast, None unchecked
    dif_decision: str | None  # an editor's review: "keep" | "exclude", None before one

    @property
    def calibrated(self) -> bool:
        return self.model in CALIBRATED_MODELS

    @property
    def held_from_assessment(self) -> bool:
        """A class C item stays off assessment forms until an editor keeps it."""
        if self.dif_decision is not None:
            return self.dif_decision == "exclude"
        return self.dif_class == "C"


@dataclass(frozen=True)
class Scale:
    """The reference form (a, b, weight per item; weights sum to 100) and the 70 cut's θ."""

    reference: tuple[tuple[float, float, float], ...]
    theta_cut: float
    calibrated_at: datetime
    job_id: str


def params_from(doc: Document) -> ItemParams:
    return ItemParams(
        a=float(doc["a"]),
        b=float(doc["b"]),
        model=str(doc["model"]),
        dif_class=(doc.get("dif") or {}).get("class"),
        dif_decision=_standing_decision(doc),
    )


def dif_finding(dif: Document | None) -> Document:
    """What a review is a review of: the worst class and the contrasts at class C."""
    dif = dif or {}
    groups = dif.get("groups") or {}
    return {
        "class": dif.get("class"),
        "contrasts": sorted(g for g, figures in groups.items() if figures.get("class") == "C"),
    }


def _standing_decision(doc: Document) -> str | None:
    """An editor's decision stands while the DIF finding it reviewed does; a later
    calibration that finds something else (another group at class C) needs a new review."""
    review = doc.get("dif_review") or {}
    if review.get("finding") != dif_finding(doc.get("dif")):
        return None
    decision = review.get("decision")
    return str(decision) if decision else None


def scale_from(doc: Document | None) -> Scale | None:
    """The scale assessments are scored on: None before the first calibration and while the
    first scale waits for `rescore` to put it in force (scores on it and the stored ones must
    not mix in the estimates)."""
    if doc is None or not doc.get("active"):
        return None
    return Scale(
        reference=tuple((r["a"], r["b"], r["weight"]) for r in doc["reference"]),
        theta_cut=float(doc["theta_cut"]),
        calibrated_at=doc["calibrated_at"],
        job_id=str(doc["job_id"]),
    )


async def scale_job(db: AsyncDatabase) -> str | None:
    """The job id of the scale in force (None: none in force), read from storage."""
    return job_of(scale_from(await storage.irt_scale(db)))


def job_of(scale: Scale | None) -> str | None:
    return scale.job_id if scale else None


async def load(db: AsyncDatabase) -> tuple[dict[str, ItemParams], Scale | None]:
    """Every version's parameters by "id:version", and the scale (None before the first
    calibration)."""
    docs = await storage.all_item_params(db)
    params = {f"{d['question_id']}:{d['version']}": params_from(d) for d in docs}
    return params, scale_from(await storage.irt_scale(db))


async def stored(db: AsyncDatabase) -> tuple[list[Document], Document | None]:
    """The stored parameter documents and scale document, as stored."""
    return await storage.all_item_params(db), await storage.irt_scale(db)


async def activate_scale(db: AsyncDatabase, kv: Kv) -> bool:
    """Put a scale waiting since its first calibration in force (the `rescore` command does,
    just before it re-scores the stored assessments on it); False if there is no scale."""
    scale = await storage.irt_scale(db)
    if scale is None:
        return False
    if not scale.get("active"):
        await storage.save_irt_scale(db, {**scale, "active": True, "activated_at": now()})
        await _announce(kv)
    return True


async def publish(
    db: AsyncDatabase, kv: Kv, *, params: list[Document], scale: Document | None
) -> bool:
    """Store a calibration's parameters (and the scale, when it is new), then ask every
    process to reload its bank so the next assessment is scored with them. A new scale is
    only ever created, never replaced: False (nothing stored) if one appeared meanwhile."""
    if scale is not None and not await storage.create_irt_scale(db, scale):
        return False
    await storage.save_item_params(db, params)
    await _announce(kv)
    return True


async def _announce(kv: Kv) -> None:
    try:
        await storage.announce_reload(kv)
    except redis.exceptions.RedisError:
        pass  # stored; each process's ten-minute full reload picks the change up


async def admin_view(db: AsyncDatabase, question_id: str, version: int | None) -> Document | None:
    """The `irt` block of the editors' view of a question version: its calibrated parameters,
    DIF check and review (None until the version is calibrated)."""
    if version is None:
        return None
    doc = await storage.item_params_of(db, question_id, version)
    if doc is None or doc.get("model") not in CALIBRATED_MODELS:
        return None
    return version_view(doc)


def version_view(doc: Document) -> Document:
    calibrated_at = doc.get("calibrated_at")
    return {
        "version": doc["version"],
        "a": doc["a"],
        "b": doc["b"],
        "se_a": doc.get("se_a"),
        "se_b": doc.get("se_b"),
        "n": doc.get("n"),
        "model": doc["model"],
        "fit": doc.get("fit"),
        "calibrated_at": calibrated_at.isoformat() if calibrated_at else None,
        "dif": doc.get("dif"),
        "dif_review": _review_view(doc.get("dif_review")),
        "dif_review_stands": _standing_decision(doc) is not None,
        "held_from_assessment": params_from(doc).held_from_assessment,
    }


async def dif_flagged(db: AsyncDatabase, classes: tuple[str, ...]) -> list[Document]:
    """Calibrated versions whose worst DIF class is one of `classes`, as `version_view`s
    with their question id, worst first."""
    docs = await storage.item_params_with_dif(db, list(classes))
    views = [{"question_id": d["question_id"], **version_view(d)} for d in docs]
    return sorted(views, key=lambda v: (v["dif"]["class"] != "C", v["question_id"], v["version"]))


async def review_dif(
    db: AsyncDatabase,
    kv: Kv,
    question_id: str,
    version: int,
    *,
    decision: str,
    reason: str,
    actor: str,
) -> Document | None:
    """Record an editor's review of a version's DIF flag: "keep" lets a class C item back
    on assessment forms, "exclude" keeps it off. None if the version was never calibrated."""
    current = await storage.item_params_of(db, question_id, version)
    if current is None:
        return None
    review = {
        "decision": decision,
        "reason": reason,
        "by": actor,
        "at": now(),
        "finding": dif_finding(current.get("dif")),
    }
    if not await storage.set_item_review(db, question_id, version, review):
        return None
    await _announce(kv)  # forms everywhere take it or leave it from now on
    doc = await storage.item_params_of(db, question_id, version)
    return version_view(doc) if doc else None


def _review_view(review: Document | None) -> Document | None:
    if not review:
        return None
    at = review.get("at")
    return {**review, "at": at.isoformat() if isinstance(at, datetime) else at}
