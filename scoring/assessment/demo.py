"""Demo county data beyond townships: census margins expanded from `demo/county.json`'s
illustrative model, and a year of synthetic assessments so the statistics and the dashboard
have something to show on a fresh `make run`.

The synthetic respondents are drawn the way real ones arrive (young and schooled people opt in
more), answer the demo bank's items by a simple ability model, and are scored and counted by
the same code as real assessments. They are marked `demo: true` and have no resident account."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from question_bank.assembly import assemble_assessment, expected_facility
from question_bank.cache import PublishedQuestion
from scoring.assessment import scoring as assessment
from scoring.assessment.scoring import hundredths
from server.county.periods import COUNTY_TZ, period_keys

Document = dict[str, Any]
EDUCATIONS = ("primary_or_less", "junior", "senior", "college_plus")
# Opt-in propensity: quizzes on a phone reach the young and the schooled first.
AGE_PROPENSITY = {
    "0-17": 0.6,
    "18-29": 2.0,
    "30-39": 1.6,
    "40-49": 1.0,
    "50-59": 0.6,
    "60-69": 0.35,
    "70+": 0.15,
}
EDUCATION_PROPENSITY = {"primary_or_less": 0.3, "junior": 0.8, "senior": 1.5, "college_plus": 3.0}
EDUCATION_ABILITY = {"primary_or_less": -1.3, "junior": -0.4, "senior": 0.4, "college_plus": 1.1}
# Puts the demo county near its plan's 12.5% target, as rural Guangxi counties report.
DEMO_ABILITY_SHIFT = -1.6
AGE_ABILITY = {
    "0-17": 0.2,
    "18-29": 0.5,
    "30-39": 0.3,
    "40-49": 0.0,
    "50-59": -0.3,
    "60-69": -0.6,
    "70+": -0.9,
}


def census_rows(county: Document) -> list[Document]:
    """Township × age band × gender × education populations from the county's model."""
    model = county["census_model"]
    rows = []
    for township in county["townships"]:
        kind = "urban" if township.get("urban") else "rural"
        for band, age_share in model["age_shares"].items():
            for gender, gender_share in (
                ("male", model["male_share"]),
                ("female", 1 - model["male_share"]),
            ):
                for education, edu_share in zip(
                    EDUCATIONS, model["education_by_age"][kind][band], strict=True
                ):
                    population = township["population"] * age_share * gender_share * edu_share
                    rows.append(
                        {
                            "township_code": township["code"],
                            "age_band": band,
                            "gender": gender,
                            "education": education,
                            "population": round(population),
                        }
                    )
    return rows


def assessments(
    county: Document, bank: list[PublishedQuestion], *, now: datetime, seed: int = 2025
) -> list[Document]:
    """A year (to date) of synthetic assessment attempts, deterministic for a given seed."""
    rng = random.Random(seed)
    rows = census_rows(county)
    months = [
        f"{now.astimezone(COUNTY_TZ).year}-{m:02d}"
        for m in range(1, now.astimezone(COUNTY_TZ).month + 1)
    ]
    docs = []
    for index, township in enumerate(county["townships"]):
        cells = [r for r in rows if r["township_code"] == township["code"]]
        weights = [
            r["population"] * AGE_PROPENSITY[r["age_band"]] * EDUCATION_PROPENSITY[r["education"]]
            for r in cells
        ]
        township_effect = rng.gauss(0.2 if township.get("urban") else -0.1, 0.25)
        respondents = 12 + int(240 * rng.random() ** 1.5) if index != 8 else 7
        for number in range(respondents):
            cell = rng.choices(cells, weights)[0]
            docs.append(
                _attempt(
                    rng,
                    bank,
                    cell,
                    township_effect,
                    f"{township['code']}-{number}",
                    month=rng.choice(months),
                )
            )
    return docs


def _attempt(
    rng: random.Random,
    bank: list[PublishedQuestion],
    cell: Document,
    township_effect: float,
    label: str,
    *,
    month: str,
) -> Document:
    ability = (
        DEMO_ABILITY_SHIFT
        + EDUCATION_ABILITY[cell["education"]]
        + AGE_ABILITY[cell["age_band"]]
        + township_effect
        + rng.gauss(0, 0.8)
    )
    form = assemble_assessment(bank, rng=rng, facility={}) or []
    marks = {}
    for served in form:
        p = expected_facility(served.question, {})
        difficulty = -math.log(p / (1 - p))  # item's logit difficulty from its facility
        marks[served.question.id] = 1.0 if rng.random() < _logistic(ability - difficulty) else 0.0
    result = assessment.score((s.question.dimension, marks[s.question.id]) for s in form)
    year = int(month[:4])
    submitted = datetime(
        year, int(month[5:]), rng.randint(1, 28), rng.randint(8, 21), tzinfo=COUNTY_TZ
    ).astimezone(UTC)
    # How it was answered, from a generator of its own so the scores above stay as they were.
    how = random.Random(f"paradata:{label}")
    seconds = round(len(form) * 15.0 * math.exp(how.gauss(0.0, 0.35)), 1)
    return {
        "_id": f"demo:{label}",
        "user_id": f"demo:{label}",
        "demo": True,
        "mode": "assessment",
        "channel": rng.choice(["village-qr", None, None]),
        "submitted_at": submitted,
        "periods": period_keys(submitted),
        "points": 0,
        "issued_at": submitted - timedelta(seconds=seconds),
        "items": [
            {
                "question_id": s.question.id,
                "version": s.question.version,
                "order": list(s.order),
                "chosen": _chosen(how, s.question, right=marks[s.question.id] == 1.0),
                "mark": marks[s.question.id],
            }
            for s in form
        ],
        "review": {"too_fast": False, "seconds": seconds},
        "paradata": {
            "seconds": seconds,
            "durations_ms": None,
            "ip_hash": f"demo-net-{how.randrange(4000)}",
            "device_hash": f"demo-device-{label}",
            "helper_id": None,
        },
        "profile": {
            "township_code": cell["township_code"],
            "gender": cell["gender"],
            "age_band": cell["age_band"],
            "education": cell["education"],
            "group": _group(rng, cell),
        },
        "assessment": {
            **result.as_response(),
            "literate": result.literate,
            "total_hundredths": hundredths(result.total),
            "dimension_hundredths": {d: hundredths(s) for d, s in result.dimension_scores.items()},
            "month": month,
            "counts_in": [month, month[:4]],  # one synthetic assessment per person
        },
    }


def _chosen(rng: random.Random, question: PublishedQuestion, *, right: bool) -> list[str]:
    """The original option keys a synthetic respondent chose: the key when right, else one
    wrong option, the first listed more often (distractors are not equally attractive)."""
    if right:
        return sorted(question.answer)
    wrong = [key for key, _ in question.options if key not in question.answer]
    if not wrong:
        return []
    weights = [2.0**-index for index in range(len(wrong))]
    return [rng.choices(wrong, weights)[0]]


def _group(rng: random.Random, cell: Document) -> str:
    if cell["age_band"] in ("0-17", "18-29") and rng.random() < 0.5:
        return "youth" if cell["age_band"] == "0-17" or rng.random() < 0.5 else "worker"
    if cell["age_band"] in ("60-69", "70+"):
        return "elderly"
    if cell["education"] == "college_plus" and rng.random() < 0.3:
        return "official"
    return rng.choices(["farmer", "worker", "other"], [0.6, 0.25, 0.15])[0]


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x))
