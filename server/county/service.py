"""The county's census margins and literacy targets, as admins load them: validated whole,
stored whole (one document each), so estimates never see half of a census."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.county import storage
from server.county.models import CensusRow
from server.county.vocab import HEADLINE_AGE_BANDS
from server.kernel.errors import ValidationFailed

Document = dict[str, Any]


async def replace_census(db: AsyncDatabase, rows: list[CensusRow], *, actor: str) -> Document:
    """Check and store a full census; returns a summary of what was stored."""
    townships = await storage.township_names(db)
    _check_rows(rows, set(townships))
    has_education = rows[0].education is not None
    doc = {
        "_id": "census",
        "has_education": has_education,
        # One document, replaced whole, so estimates never see half a census; short keys keep a
        # 200-township census well under the document size limit.
        "rows": [
            {
                "t": r.township_code,
                "a": r.age_band,
                "g": r.gender,
                "e": r.education,
                "p": r.population,
            }
            for r in rows
        ],
        "updated_at": datetime.now(UTC),
        "updated_by": actor,
    }
    await storage.put_census(db, doc)
    await storage.bump_stats_version(db, "census")
    return summary(doc)


def _check_rows(rows: list[CensusRow], known: set[str]) -> None:
    problems = []
    with_education = {r.education is not None for r in rows}
    if len(with_education) > 1:
        problems.append(("rows", "文化程度（education）要么每行都填，要么都不填"))
    unknown = sorted({r.township_code for r in rows} - known)
    if unknown:
        problems.append(("rows", f"乡镇代码不存在：{'、'.join(unknown[:10])}"))
    missing = sorted(known - {r.township_code for r in rows})
    if missing:
        problems.append(("rows", f"缺少这些乡镇的人口数：{'、'.join(missing[:10])}"))
    adults: Counter[str] = Counter()
    for r in rows:
        adults[r.township_code] += r.population if r.age_band in HEADLINE_AGE_BANDS else 0
    empty = sorted(code for code in known if adults[code] == 0)
    if empty:
        problems.append(("rows", f"这些乡镇18—69岁人口为0，无法加权：{'、'.join(empty[:10])}"))
    keys = Counter((r.township_code, r.age_band, r.gender, r.education) for r in rows)
    doubled = [key for key, count in keys.items() if count > 1]
    if doubled:
        problems.append(("rows", f"同一乡镇、年龄段、性别、文化程度重复出现：{doubled[0]}"))
    if problems:
        raise ValidationFailed(
            problems[0][1], details=[{"field": f, "message": m} for f, m in problems]
        )


def summary(doc: Document | None) -> Document:
    if doc is None:
        return {"loaded": False, "rows": 0, "population": 0, "has_education": False}
    return {
        "loaded": True,
        "rows": len(doc["rows"]),
        "population": sum(row["p"] for row in doc["rows"]),
        "has_education": doc["has_education"],
        "updated_at": doc["updated_at"].isoformat(),
    }


async def set_target(db: AsyncDatabase, *, year: int, share: float, actor: str) -> Document:
    await storage.put_target(db, year, share, actor)
    return {"targets": await targets_list(db)}


async def targets_list(db: AsyncDatabase) -> list[Document]:
    by_year = await storage.get_targets(db)
    return [{"year": int(y), "literate_share": s} for y, s in sorted(by_year.items())]


def target_for(targets: dict[str, float], year: int) -> tuple[int, float] | None:
    """The target a period is judged against: its own year's, else the next one set, else
    the latest one before it."""
    years = sorted(int(y) for y in targets)
    if not years:
        return None
    chosen = next((y for y in years if y >= year), years[-1])
    return chosen, targets[str(chosen)]


async def township_names(db: AsyncDatabase) -> dict[str, Document]:
    """Every township by code."""
    return await storage.township_names(db)


async def township_exists(db: AsyncDatabase, code: str) -> bool:
    return await storage.township_exists(db, code)


async def upsert_townships(db: AsyncDatabase, townships: list[Document]) -> int:
    return await storage.upsert_townships(db, townships)


async def census(db: AsyncDatabase) -> Document | None:
    """The stored census margins (one document), if any."""
    return await storage.get_census(db)


async def targets(db: AsyncDatabase) -> dict[str, float]:
    """Literate-share targets by year."""
    return await storage.get_targets(db)


async def stats_version(db: AsyncDatabase) -> Document:
    """Tokens replaced on every change of the cells or the census (estimates caches key on
    them)."""
    return await storage.stats_version(db)


async def bump_stats_version(db: AsyncDatabase, *parts: str) -> None:
    await storage.bump_stats_version(db, *parts)


async def list_townships(db: AsyncDatabase, *, skip: int, limit: int) -> tuple[list[Document], int]:
    return await storage.list_townships(db, skip=skip, limit=limit)
