"""copying: identical wrong answers against chance, abilities and distractor popularity."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from functools import cache
from typing import Any

from scoring.integrity.copying import copying, fit_copying_model
from scoring.integrity.records import AttemptRecord
from scripts.eval_integrity import percent_match_flags
from tests.scoring.integrity.simulate import CountySpec, simulate_county

SEED = 5
# Honest residents only, on 4 forms, with one distractor drawing nearly every wrong answer.
HONEST = CountySpec(
    townships=2,
    weeks=2,
    per_week=60.0,
    history_weeks=3,
    forms=4,
    helper=0,
    speeders=0,
    straight_liners=0,
    ring=0,
    leaked=0,
    campaign=0,
    campaign_burst=0,
    assisted=0,
    fabricated_per_week=0,
    paper=0,
    triples=0,
    distractors=0.15,
)


# The same county with the evaluation's ordinary distractor popularity, for planted copies: with
# near-universal distractors a lone copy of a mid-ability resident is weak evidence (limitations).
ORDINARY = replace(HONEST, distractors=0.8)


@cache
def county_docs(spec: CountySpec) -> tuple[dict[str, Any], ...]:
    return tuple(simulate_county(spec, SEED).docs)


def honest_docs() -> tuple[dict[str, Any], ...]:
    return county_docs(ORDINARY)


def records(docs: Any) -> list[AttemptRecord]:
    return [AttemptRecord.from_doc(d) for d in docs]


def source_doc(min_wrong: int = 8) -> dict[str, Any]:
    return next(d for d in honest_docs() if sum(i["mark"] < 1 for i in d["items"]) >= min_wrong)


def copied(source: dict[str, Any], user: str, **changes: Any) -> dict[str, Any]:
    """A second resident's attempt with the source's answers (options shown in another order)."""
    doc = copy.deepcopy(source)
    doc.update({"_id": f"{user}:copy", "user_id": user, **changes})
    doc["submitted_at"] = source["submitted_at"] + timedelta(minutes=30)
    doc["paradata"] = {**doc["paradata"], "device_hash": f"{user}-phone"}
    for item in doc["items"]:
        item["order"] = item["order"][1:] + item["order"][:1]
    return doc


def test_honest_residents_sharing_popular_wrong_answers_are_not_copying() -> None:
    honest = records(county_docs(HONEST))
    assert copying(honest, seed=SEED) == []
    # The fixed 85 % rule flags many of the same honest residents.
    assert len(percent_match_flags(honest)) > 0.05 * len(honest)


def test_a_copied_attempt_is_flagged_with_its_partner_and_the_evidence() -> None:
    source = source_doc()
    copier = copied(source, "copier")
    flags = {f.attempt_id: f for f in copying(records([*honest_docs(), copier]), seed=SEED)}
    assert set(flags) == {source["_id"], copier["_id"]}
    detail = flags[copier["_id"]].reasons[0].detail
    assert detail["partner_id"] == source["_id"]
    assert flags[source["_id"]].reasons[0].detail["partner_id"] == copier["_id"]
    wrong = sum(i["mark"] < 1 for i in source["items"])
    assert detail["identical_wrong"] == wrong
    assert detail["expected_identical_wrong"] < wrong / 2
    assert detail["p_value"] <= detail["threshold"]  # type: ignore[operator]
    assert len(detail["matched"]) == min(wrong, 10)  # type: ignore[arg-type]
    assert flags[copier["_id"]].strong


def test_pairs_in_different_township_weeks_or_of_one_resident_are_not_compared() -> None:
    source = source_doc()
    elsewhere = copied(source, "elsewhere", profile={"township_code": "450223199"})
    later = copied(source, "later")
    later["submitted_at"] += timedelta(days=7)
    again = copied(source, source["user_id"])
    again["_id"] = f"{source['user_id']}:again"
    assert copying(records([*honest_docs(), elsewhere, later, again]), seed=SEED) == []


def test_a_new_copier_is_screened_against_its_township_week_with_the_nights_model() -> None:
    source = source_doc()
    history = records(honest_docs())
    model = fit_copying_model(history, seed=SEED)
    new = AttemptRecord.from_doc(copied(source, "copier"))
    week = [r for r in history if (r.township_code, r.week) == (new.township_code, new.week)]
    flags = {f.attempt_id for f in copying([new], history=week, model=model)}
    assert flags == {new.attempt_id, source["_id"]}  # the earlier partner is flagged too
    honest_new = replace(week[0], attempt_id="fresh:1", user_id="fresh")
    assert copying([honest_new], history=week[1:], model=model) == []


def test_a_group_chat_answer_sheet_is_found_as_a_ring() -> None:
    spec = replace(HONEST, ring=15, ring_wrong=4, distractors=0.8, weeks=3, townships=4)
    county = simulate_county(spec, SEED)
    flags = {f.attempt_id: f for f in copying(records(county.docs), seed=SEED)}
    ring = county.ids("ring")
    assert len(ring & set(flags)) >= 12
    assert set(flags) <= ring
    detail = flags[next(iter(ring & set(flags)))].reasons[0].detail
    assert "ring" in detail and detail["ring"]["size"] >= 3  # type: ignore[index]
