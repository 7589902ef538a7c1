"""Rules of the literacy cells: apply a stored assessment exactly once, rebuild them all from
the stored assessments, and read them for the estimates. Every change replaces the version
token the estimates' caches follow, for the periods it touched."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from scoring.assessment import cells, storage
from server.county import service as county_service

Document = dict[str, Any]


async def apply(db: AsyncDatabase, attempt: Document) -> None:
    """Add one stored assessment to its cells. Safe to repeat and to race: each cell takes a
    given attempt once."""
    inc = cells.increments(attempt)
    keys = cells.keys_of(attempt)
    for key in keys:
        await storage.apply_once(
            db,
            cell_id=cells.cell_id(key),
            fields=cells.cell_fields(key),
            inc=inc,
            attempt_id=attempt["_id"],
        )
    periods = sorted({key[0] for key in keys})
    await county_service.bump_stats_version(db, *(f"cells_by_period.{p}" for p in periods))


async def remove(db: AsyncDatabase, attempt: Document) -> None:
    """Take one stored assessment out of its cells (an integrity exclusion). Safe to repeat
    and to race, and undone by `apply`."""
    inc = cells.increments(attempt)
    keys = cells.keys_of(attempt)
    for key in keys:
        await storage.remove_once(
            db, cell_id=cells.cell_id(key), inc=inc, attempt_id=attempt["_id"]
        )
    periods = sorted({key[0] for key in keys})
    await county_service.bump_stats_version(db, *(f"cells_by_period.{p}" for p in periods))


async def rebuild(db: AsyncDatabase, assessments: AsyncIterable[Document]) -> int:
    """Recompute every cell from the stored assessments and swap them in; returns the count.
    Each attempt counts in the periods recorded when it was submitted."""
    sums: cells.CellSums = {}
    applied: dict[cells.CellKey, list[str]] = {}
    async for attempt in assessments:
        cells.add(sums, applied, attempt)
    await storage.replace_cells(db, cells.as_documents(sums, applied))
    await county_service.bump_stats_version(db, "cells")
    return len(sums)


async def read(db: AsyncDatabase, periods: list[str]) -> list[Document]:
    """The cells of these periods, sums only."""
    return await storage.read_cells(db, periods)


async def periods_with_respondents(db: AsyncDatabase) -> list[Document]:
    """Every period that has cells, with its respondent count."""
    return await storage.cell_periods(db)
