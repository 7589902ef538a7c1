"""`seed-demo`: load the demo county (townships, then each domain's demo content). Every
step is an idempotent upsert, so running it twice changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from content import service as content_service
from question_bank import service as question_service
from question_bank.cache import BankCache
from scoring.assessment import demo as demo_data
from scoring.quizzes import service as quiz_service
from server.county import service as county_service
from server.county.models import CensusRow

_COUNTY_FILE = Path(__file__).resolve().parent / "county" / "demo" / "county.json"


def load_demo_county() -> dict[str, Any]:
    return json.loads(_COUNTY_FILE.read_text(encoding="utf-8"))


async def seed_demo(db: AsyncDatabase, *, assessments: bool = False) -> dict[str, int]:
    """Townships, census margins, targets, questions and articles; with `assessments`, also a
    year of synthetic assessments (and the cells rebuilt from every stored assessment)."""
    county = load_demo_county()
    townships = [
        {"code": t["code"], "name": t["name"], "population": t["population"]}
        for t in county["townships"]
    ]
    counts = {"townships": await county_service.upsert_townships(db, townships)}
    counts["questions"] = await question_service.seed_demo(db)
    counts["articles"] = await content_service.seed_demo(db)
    counts["census_rows"] = await _seed_census(db, county)
    if assessments:
        counts["demo_assessments"] = await _seed_assessments(db, county)
    return counts


async def _seed_census(db: AsyncDatabase, county: dict[str, Any]) -> int:
    rows = [CensusRow(**row) for row in demo_data.census_rows(county)]
    await county_service.replace_census(db, rows, actor="seed-demo")
    target = county["target"]
    await county_service.set_target(
        db, year=target["year"], share=target["literate_share"], actor="seed-demo"
    )
    return len(rows)


async def _seed_assessments(db: AsyncDatabase, county: dict[str, Any]) -> int:
    """Deterministic ids make this idempotent; the cells are rebuilt from all assessments."""
    bank = BankCache()
    await bank.load(db)
    docs = demo_data.assessments(county, list(bank.published.values()), now=datetime.now(UTC))
    await quiz_service.store_demo_attempts(db, docs)
    await quiz_service.rebuild_cells(db)
    return len(docs)
