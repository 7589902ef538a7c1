"""Benchmark of the association's statistics: every estimate for 200 townships × 6 groups
recomputed from the cells of 1,000,000 assessments, and the xlsx report.

The cells are written directly (what 1,000,000 submitted assessments would have left), with
literacy depending on age, education and township; the census is loaded the same way. Then
the time to read the cells, to fit (raking + MRP), and the HTTP responses cold (cells just
changed) and warm, each beside GET /healthz measured in the same run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient, TestServer

from scoring.assessment import storage as assessment_storage
from scoring.assessment.scoring import DIMENSIONS
from scoring.quizzes import storage as quizzes_storage
from scoring.statistics import report
from scoring.statistics import service as estimates
from scoring.statistics.estimation import EDUCATIONS, GENDERS, GROUPS
from scripts import services as harness
from scripts.benchkit import report as print_figure
from scripts.benchkit import timed
from server.app import create_app
from server.county import service as county_service
from server.county import storage as county_storage
from server.kernel.keys import DB
from tests.conftest import make_settings
from tests.factories import auth, staff_token

TOWNSHIPS = 200
ASSESSMENTS = 1_000_000
PERIOD = "2026"
AGE_BANDS = ("0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70+")


def synthetic_cells(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Cells holding ASSESSMENTS respondents, opt-in skewed to the young and schooled."""
    shape = (TOWNSHIPS, len(GROUPS), len(AGE_BANDS), len(GENDERS), len(EDUCATIONS))
    by_age_education = np.outer([0.3, 2, 1.6, 1, 0.6, 0.35, 0.15], [0.3, 0.8, 1.5, 3.0])
    propensity = np.broadcast_to(
        by_age_education[None, None, :, None, :]
        * rng.uniform(0.2, 1.0, (TOWNSHIPS, len(GROUPS), 1, 1, 1)),
        shape,
    )
    counts = rng.multinomial(ASSESSMENTS, (propensity / propensity.sum()).ravel()).reshape(shape)
    level = (
        np.array([-0.5, 0.3, 0.2, 0, -0.3, -0.6, -0.9])[None, None, :, None, None]
        + np.array([-1.3, -0.4, 0.4, 1.1])[None, None, None, None, :]
        + rng.normal(0, 0.3, (TOWNSHIPS, 1, 1, 1, 1))
        - 1.2
    )
    literate = rng.binomial(counts, 1 / (1 + np.exp(-level)))
    docs = []
    for index in zip(*np.nonzero(counts), strict=True):
        n, hits = int(counts[index]), int(literate[index])
        t, g, a, s, e = (int(i) for i in index)
        key = (PERIOD, f"T{t:04d}", GROUPS[g], AGE_BANDS[a], GENDERS[s], EDUCATIONS[e])
        docs.append(
            {
                "_id": "|".join(key),
                "period": PERIOD,
                "township_code": key[1],
                "group": key[2],
                "age_band": key[3],
                "gender": key[4],
                "education": key[5],
                "n": n,
                "literate": hits,
                "tiers": {
                    "advanced": hits // 5,
                    "literate": hits - hits // 5,
                    "basic": (n - hits) // 2,
                    "low": n - hits - (n - hits) // 2,
                },
                "total": {"s": n * 6000, "ss": n * 36_000_000},
                "dims": {d: {"s": n * 3000, "ss": n * 9_000_000} for d in DIMENSIONS},
                "channels": {"self": {"n": n, "literate": hits}},
            }
        )
    return docs


def census_doc(rng: np.random.Generator) -> dict[str, Any]:
    rows = [
        {"t": f"T{t:04d}", "a": band, "g": gender, "e": education, "p": int(rng.integers(50, 3000))}
        for t in range(TOWNSHIPS)
        for band in AGE_BANDS
        for gender in GENDERS
        for education in EDUCATIONS
    ]
    return {
        "_id": "census",
        "has_education": True,
        "rows": rows,
        "updated_at": _now(),
        "updated_by": "bench",
    }


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def load(db: Any, rng: np.random.Generator) -> int:
    await county_storage.upsert_townships(
        db,
        [{"code": f"T{t:04d}", "name": f"乡镇{t}", "population": 30_000} for t in range(TOWNSHIPS)],
    )
    await county_storage.put_census(db, census_doc(rng))
    docs = synthetic_cells(rng)
    for start in range(0, len(docs), 1000):
        await db[quizzes_storage.CELLS].insert_many(docs[start : start + 1000], ordered=False)
    return len(docs)


async def run(services: harness.Services) -> None:
    settings = make_settings(services, app_env="development")
    app = create_app(settings)
    rng = np.random.default_rng(1)
    async with TestClient(TestServer(app)) as client:
        started = time.perf_counter()
        cells = await load(app[DB], rng)
        print(
            f"loaded {cells:,} cells of {ASSESSMENTS:,} assessments, {TOWNSHIPS} townships "
            f"in {time.perf_counter() - started:.1f} s"
        )
        health = await timed(lambda: client.get("/healthz"), 50)
        baseline = float(np.median(health))
        print_figure("GET /healthz (baseline)", health)
        await _pure_figures(app)
        token = await staff_token(client, "analyst")

        async def cold(path: str) -> None:
            await county_service.bump_stats_version(app[DB], f"cells_by_period.{PERIOD}")
            response = await client.get(path, headers=auth(token))
            assert response.status == 200, await response.text()
            await response.read()

        async def warm(path: str) -> None:
            response = await client.get(path, headers=auth(token))
            await response.read()

        for label, path in (
            ("literacy by township", "/api/v1/stats/literacy?by=township"),
            ("literacy by group", "/api/v1/stats/literacy?by=group"),
            ("xlsx report (12 monthly periods empty)", "/api/v1/stats/export?format=xlsx"),
        ):
            print_figure(
                f"{label}, cold (cells changed)", await timed(lambda p=path: cold(p), 3), baseline
            )
            print_figure(f"{label}, warm", await timed(lambda p=path: warm(p), 10), baseline)


async def _pure_figures(app: Any) -> None:
    started = time.perf_counter()
    docs = await assessment_storage.read_cells(app[DB], [PERIOD])
    read_s = time.perf_counter() - started
    county = await estimates.load_county(app[DB])
    codes = [t["code"] for t in county["townships"]]
    fit_ms = []
    for _ in range(5):
        started = time.perf_counter()
        frame = report.frame(docs, codes)
        analysis = report.analyse(frame, county["townships"], county["census"])
        report.rows_by_township(analysis, None)
        report.rows_by_group(analysis)
        report.county_row(analysis, None, "全县")
        fit_ms.append((time.perf_counter() - started) * 1000)
    respondents = int(analysis.frame.cells.n.sum())
    print(f"read {len(docs):,} cells from the database: {read_s * 1000:.0f} ms")
    print_figure(f"all estimates from cells ({respondents:,} aged 18-69)", fit_ms)


def main() -> None:
    # The H2 file store: a million assessments' cells outgrow the memory store's heap.
    with harness.running("bench-stats", durable=True) as services:
        asyncio.run(run(services))


if __name__ == "__main__":
    main()
