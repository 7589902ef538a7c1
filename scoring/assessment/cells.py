"""Incremental aggregates of scored assessments, as pure functions: one cell per period ×
township × group × age band × gender × education, holding counts, literate and tier counts,
and the sums (and sums of squares) of the total and of each dimension's score.

Estimates read cells, never attempts. Scores are summed in integer hundredths of a point, so
the sums are exact and a rebuild (which adds the same numbers in another order) reproduces
the incremental cells bit for bit.

An assessment counts in the month it was started and, if it is the resident's first of that
year, in the year; the attempt records which (`assessment.counts_in`), decided once when it
was submitted, so a rebuild never has to re-decide it."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from bson.int64 import Int64

from scoring.assessment.scoring import DIMENSIONS

Document = dict[str, Any]
CellKey = tuple[str, ...]
CellSums = dict[CellKey, dict[str, int]]

CELL_FIELDS = ("township_code", "group", "age_band", "gender", "education")
SELF_INITIATED = "self"  # the channel of a resident who came without a campaign code


def cell_key(period: str, profile: Document) -> CellKey:
    return (period, *(str(profile.get(name) or "unknown") for name in CELL_FIELDS))


def cell_id(key: CellKey) -> str:
    return "|".join(key)


def cell_fields(key: CellKey) -> Document:
    return {"period": key[0], **dict(zip(CELL_FIELDS, key[1:], strict=True))}


def keys_of(attempt: Document) -> list[CellKey]:
    """The cells one stored assessment counts in (one per period it counts in)."""
    return [cell_key(period, attempt["profile"]) for period in attempt["assessment"]["counts_in"]]


def increments(attempt: Document) -> dict[str, int]:
    """What one scored assessment adds to each of its cells."""
    result = attempt["assessment"]
    total = result["total_hundredths"]
    literate = 1 if result["literate"] else 0
    channel = attempt.get("channel") or SELF_INITIATED
    inc: dict[str, int] = {
        "n": 1,
        "literate": literate,
        f"tiers.{result['tier']}": 1,
        "total.s": total,
        "total.ss": total * total,
        f"channels.{channel}.n": 1,
        f"channels.{channel}.literate": literate,
    }
    for dimension in DIMENSIONS:
        value = result["dimension_hundredths"][dimension]
        inc[f"dims.{dimension}.s"] = value
        inc[f"dims.{dimension}.ss"] = value * value
    return inc


def add(sums: CellSums, applied: dict[CellKey, list[str]], attempt: Document) -> None:
    """Add one attempt to cells being summed in memory (a rebuild), noting its id."""
    for key in keys_of(attempt):
        merged = sums.setdefault(key, {})
        for name, value in increments(attempt).items():
            merged[name] = merged.get(name, 0) + value
        applied.setdefault(key, []).append(attempt["_id"])


def merge(attempts: Iterable[Document]) -> tuple[CellSums, dict[CellKey, list[str]]]:
    """Sum the increments of many attempts per cell, with the ids applied to each."""
    sums: CellSums = {}
    applied: dict[CellKey, list[str]] = {}
    for attempt in attempts:
        add(sums, applied, attempt)
    return sums, applied


def without(docs: list[Document], attempts: Iterable[Document], period: str) -> list[Document]:
    """Copies of one period's cell documents with these attempts' increments taken out: the
    figures as they would be without them (the reports' "without open flags"), in memory.
    Attempts must be counted in these cells (not excluded, not pending)."""
    cells = {doc["_id"]: copy.deepcopy(doc) for doc in docs}
    for attempt in attempts:
        for key in keys_of(attempt):
            cell = cells.get(cell_id(key))
            if key[0] != period or cell is None:
                continue
            for dotted, value in increments(attempt).items():
                *parents, leaf = dotted.split(".")
                target = cell
                for parent in parents:
                    target = target.setdefault(parent, {})
                target[leaf] = target.get(leaf, 0) - value
    return [cell for cell in cells.values() if cell.get("n", 0) > 0]


def as_documents(sums: CellSums, applied: dict[CellKey, list[str]]) -> list[Document]:
    """Cells in their stored shape: nested sums as `$inc` on dotted names leaves them, 64-bit
    (sums of squares pass 2^31 within a few dozen assessments), and the attempt ids applied."""
    docs = []
    for key, cell in sums.items():
        doc: Document = {"_id": cell_id(key), **cell_fields(key), "applied": applied[key]}
        for dotted, value in cell.items():
            *parents, leaf = dotted.split(".")
            target = doc
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = Int64(value)
        docs.append(doc)
    return docs
