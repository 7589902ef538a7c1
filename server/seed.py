"""`seed-demo`: load the demo county (townships, then each domain's demo content). Every
step is an idempotent upsert, so running it twice changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from scoring import storage as county_storage

_COUNTY_FILE = Path(__file__).resolve().parents[1] / "scoring" / "demo" / "county.json"


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
    counts = {"townships": await county_storage.upsert_townships(db, townships)}
    from question_bank import service as question_service

    counts["questions"] = await question_service.seed_demo(db)
    from content import service as content_service

    counts["articles"] = await content_service.seed_demo(db)
    counts["census_rows"] = await _seed_census(db, county)
    if assessments:
        counts["demo_assessments"] = await _seed_assessments(db, county)
    return counts


async def _seed_census(db: AsyncDatabase, county: dict[str, Any]) -> int:
    from scoring import census, demo_data
    from scoring.models import CensusRow

    rows = [CensusRow(**row) for row in demo_data.census_rows(county)]
    await census.replace_census(db, rows, actor="seed-demo")
    target = county["target"]
    await census.set_target(
        db, year=target["year"], share=target["literate_share"], actor="seed-demo"
    )
    return len(rows)


async def _seed_assessments(db: AsyncDatabase, county: dict[str, Any]) -> int:
    """Deterministic ids make this idempotent; the cells are rebuilt from all assessments."""
    from question_bank.cache import BankCache
    from scoring import cells, demo_data

    bank = BankCache()
    await bank.load(db)
    docs = demo_data.assessments(county, list(bank.published.values()), now=datetime.now(UTC))
    await county_storage.insert_new_attempts(db, docs)
    await cells.rebuild(db)
    return len(docs)
