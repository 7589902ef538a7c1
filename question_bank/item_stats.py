"""Classical test theory item statistics (as Moodle's quiz statistics compute them), from
sufficient sums kept per question version, so reading them never rescans answers.

For each response: mark x in [0, 1] for this item, rest score y = the sum of the marks of the
other items in the same quiz. Kept: n, Σx, Σx², Σy, Σy², Σxy, and per option the number of
residents who chose it and the Σy of those residents."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MIN_ATTEMPTS_FOR_FLAGS = 30
FACILITY_TOO_EASY = 0.95
FACILITY_TOO_HARD = 0.10
CHANCE_MARGIN = 0.05
MIN_DISCRIMINATION = 0.15


@dataclass(frozen=True)
class Response:
    """One resident's answer to one item of a scored quiz."""

    question_id: str
    version: int
    mark: float
    rest: float
    chosen: tuple[str, ...]


def increments(response: Response) -> dict[str, float]:
    x, y = response.mark, response.rest
    inc: dict[str, float] = {"n": 1, "sx": x, "sxx": x * x, "sy": y, "syy": y * y, "sxy": x * y}
    for key in response.chosen:
        inc[f"options.{key}.n"] = 1
        inc[f"options.{key}.sy"] = y
    return inc


def pending_entry(attempt: Mapping[str, Any]) -> dict[str, Any]:
    """The item-statistics outbox entry of a scored attempt: one response per item, keyed by
    the attempt's id (so the entry and the attempt are one fact, written once)."""
    items = attempt["items"]
    total = sum(item["mark"] for item in items)
    return {
        "_id": attempt["_id"],
        "at": attempt["submitted_at"],
        "responses": [
            {
                "question_id": item["question_id"],
                "version": item["version"],
                "mark": item["mark"],
                "rest": total - item["mark"],
                "chosen": list(item["chosen"]),
            }
            for item in items
        ],
    }


def batch_increments(
    entries: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, int], dict[str, float]]:
    """The increments of many outbox entries per (question, version), merged: the fold adds a
    whole batch to each item in one guarded update."""
    merged: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for raw in (response for entry in entries for response in entry["responses"]):
        response = Response(
            raw["question_id"], raw["version"], raw["mark"], raw["rest"], tuple(raw["chosen"])
        )
        sums = merged[(response.question_id, response.version)]
        for name, value in increments(response).items():
            sums[name] = sums.get(name, 0) + value  # counts stay integers
    return dict(merged)


def chance_level(question_type: str, option_count: int) -> float:
    if question_type == "multiple":
        return 1 / (2**option_count - 1)  # any non-empty subset, exact match needed
    return 1 / max(option_count, 1)


def pearson(n: float, sx: float, sy: float, sxx: float, syy: float, sxy: float) -> float | None:
    var_x = n * sxx - sx * sx
    var_y = n * syy - sy * sy
    if n < 2 or var_x <= 0 or var_y <= 0:
        return None
    return (n * sxy - sx * sy) / math.sqrt(var_x * var_y)


def summarise(
    sums: dict[str, Any], *, question_type: str, options: list[str], answer: list[str]
) -> dict[str, Any]:
    n = float(sums.get("n", 0))
    sx, sy = float(sums.get("sx", 0)), float(sums.get("sy", 0))
    facility = sx / n if n else None
    discrimination = pearson(
        n, sx, sy, float(sums.get("sxx", 0)), float(sums.get("syy", 0)), float(sums.get("sxy", 0))
    )
    option_rows = _options(sums, n, sy, options, answer)
    result: dict[str, Any] = {
        "attempts": int(n),
        "facility": _round(facility),
        "discrimination": _round(discrimination),
        "options": option_rows,
        "flags": [],
    }
    result["flags"] = flags(result, question_type=question_type, option_count=len(options))
    return result


def _options(
    sums: dict[str, Any], n: float, sy: float, options: list[str], answer: list[str]
) -> list[dict[str, Any]]:
    per_option = sums.get("options", {}) or {}
    mean_all = sy / n if n else None
    rows = []
    for key in options:
        chosen = per_option.get(key, {})
        count = float(chosen.get("n", 0))
        mean_rest = float(chosen.get("sy", 0)) / count if count else None
        rows.append(
            {
                "key": key,
                "correct": key in answer,
                "share": _round(count / n) if n else None,
                "mean_rest_score": _round(mean_rest),
                # Positive: residents who choose this option do better on the rest of the quiz.
                "attracts_stronger": (
                    None if mean_rest is None or mean_all is None else bool(mean_rest > mean_all)
                ),
            }
        )
    return rows


def flags(stats: dict[str, Any], *, question_type: str, option_count: int) -> list[str]:
    """Reasons to review an item; only once it has enough attempts to say so."""
    if stats["attempts"] < MIN_ATTEMPTS_FOR_FLAGS:
        return []
    found = []
    facility = stats["facility"]
    if facility is not None and facility > FACILITY_TOO_EASY:
        found.append("too_easy")
    if facility is not None and (
        facility < FACILITY_TOO_HARD
        or facility < chance_level(question_type, option_count) + CHANCE_MARGIN
    ):
        found.append("too_hard")
    discrimination = stats["discrimination"]
    if discrimination is not None and discrimination < MIN_DISCRIMINATION:
        found.append("low_discrimination")
    if _distractor_backwards(stats["options"]):
        found.append("distractor_backwards")
    return found


def _distractor_backwards(options: list[dict[str, Any]]) -> bool:
    """A wrong option whose choosers do better on the rest of the quiz than those who chose
    the key: the item probably misleads strong residents (or the key is wrong)."""
    key_means = [
        o["mean_rest_score"] for o in options if o["correct"] and o["mean_rest_score"] is not None
    ]
    if not key_means:
        return False
    best_key = max(key_means)
    return any(
        not o["correct"]
        and o["mean_rest_score"] is not None
        and o["mean_rest_score"] > best_key
        and (o["share"] or 0) >= 0.05
        for o in options
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
