"""`seed-demo`: load the demo county (townships, then each domain's demo content). Every
step is an idempotent upsert, so running it twice changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from scoring import storage as county_storage

_COUNTY_FILE = Path(__file__).resolve().parents[1] / "scoring" / "demo" / "county.json"


def load_demo_county() -> dict[str, Any]:
    return json.loads(_COUNTY_FILE.read_text(encoding="utf-8"))


async def seed_demo(db: AsyncDatabase) -> dict[str, int]:
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
    return counts
