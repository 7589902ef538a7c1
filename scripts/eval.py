"""Validation by simulation through the real HTTP API (`make eval`).

`scripts.simulation` checks the estimators in process. This drives the same synthetic county
through the service instead: townships (storage: there is no townships API), the census
(`PUT /api/v1/admin/census`), the simulation's Rasch item bank (imported as JSON, published by
a second editor), then every simulated respondent signs in (`POST /api/v1/auth/dev`), sets a
profile in their age band, takes the monthly assessment and answers each served item right or
wrong by their ability and its known difficulty. The analyst's `GET /api/v1/stats/literacy`
rows are then scored against the simulation's truth (raw, raked and the published MRP share),
and every API score is checked against the simulation's own scoring of the same answers.

Item ratings (难度 1-5) follow the known difficulties and the items are imported hardest first,
so the service's difficulty strata (ranked by rating, then id) are exactly the simulation's;
once the bank's periodic reload brings observed facilities, the strata may shift a little, so
forms off the simulation's strata are counted and reported.

`python -m scripts.eval [--townships 40] [--seed 1] [--runs N] [--scale 0.2] [--concurrency 4]`
(`--scale` thins every township's respondents to that fraction, keeping the opt-in mix).

Size: `make eval` pushes the simulation's full county (`--townships 200 --scale 1`, about
27,000 respondents) through the API and prints its wall time and requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from question_bank.keys import BANK
from scoring.assessment.scoring import TIER_CUTOFFS
from scoring.statistics import estimation as est
from scoring.statistics.estimation_mrp import fit_mrp
from scoring.statistics.report import MRP_DRAWS
from scripts import services as harness
from scripts import simulation as sim
from server.accounts import service as users
from server.app import create_app
from server.county import storage as county_storage
from server.county.vocab import DIMENSION_LABELS
from server.kernel.keys import DB
from server.kernel.settings import Settings

API = "/api/v1"
# Sign-in, profile, start and submit: the HTTP requests of one respondent.
REQUESTS_PER_RESPONDENT = 4
# Respondents in flight (the acceptance load of the storage issue: 16 concurrent clients).
CONCURRENCY = 16
# A birth year `year - age` puts a resident in the middle of each headline age band.
BAND_AGES = {"18-29": 24, "30-39": 35, "40-49": 45, "50-59": 55, "60-69": 65}
ESTIMATORS = ("raw", "raked", "mrp")
Client = TestClient[Any, Any]
Document = dict[str, Any]


class ApiError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# The county as the service sees it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One simulated assessment item: its dimension, rank in the sorted bank and difficulty."""

    dimension: int  # index into sim.DIMENSIONS
    rank: int  # position in the dimension's bank, easiest first
    difficulty: float

    @property
    def name(self) -> str:
        return sim.DIMENSIONS[self.dimension][0]

    @property
    def stem(self) -> str:
        label = DIMENSION_LABELS[self.name]
        return f"模拟测评·{label}·第{self.rank + 1:03d}题：下列哪一项是本题的正确说法？"

    @property
    def right(self) -> str:
        return f"正确说法（{self.name}-{self.rank + 1}）"

    def rating(self, size: int) -> int:
        """The editors' 1-5 difficulty rating: quintiles of the known difficulty."""
        return 1 + self.rank * 5 // size

    def content(self, size: int) -> Document:
        """The item as a JSON import row (a single choice; option A is right)."""
        texts = [self.right, *(f"干扰说法{k}（{self.name}-{self.rank + 1}）" for k in "一二三")]
        return {
            "type": "single",
            "stem": self.stem,
            "options": [{"key": k, "text": t} for k, t in zip("ABCD", texts, strict=True)],
            "answer": ["A"],
            "explanation": "模拟数据，用于验证估计方法。",
            "dimension": self.name,
            "topic": "前沿科技",
            "audiences": ["general"],
            "difficulty": self.rating(size),
            "source": "模拟",
        }


def bank_items(county: sim.County) -> list[Item]:
    """Every item of the simulation's bank, hardest first within each dimension."""
    return [
        Item(d, rank, float(difficulties[rank]))
        for d, difficulties in enumerate(county.bank)
        for rank in reversed(range(len(difficulties)))
    ]


def township_code(index: int) -> str:
    return f"SIM{index:04d}"  # zero-padded, so code order is index order


def township_docs(townships: int) -> list[Document]:
    return [{"code": township_code(t), "name": f"模拟乡镇{t + 1:03d}"} for t in range(townships)]


def census_rows(census: est.FloatArray) -> list[Document]:
    """Township × age band × gender × education rows (ages 18-69 only, as simulated)."""
    rows = []
    for (t, a, g, e), population in np.ndenumerate(census):
        rows.append(
            {
                "township_code": township_code(t),
                "age_band": est.AGE_BANDS[a],
                "gender": est.GENDERS[g],
                "education": est.EDUCATIONS[e],
                "population": int(population),
            }
        )
    return rows


def thin(respondents: Sequence[sim.Respondent], scale: float, seed: int) -> list[sim.Respondent]:
    """Keep each respondent with probability `scale` (every township, same opt-in mix)."""
    if scale >= 1:
        return list(respondents)
    keep = np.random.default_rng([seed, 3]).random(len(respondents)) < scale
    return [r for r, kept in zip(respondents, keep, strict=True) if kept]


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(client: Client, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    """One request; the JSON body, or ApiError naming the status and body."""
    headers = auth(token) if token else {}
    async with client.request(method, API + path, headers=headers, **kw) as response:
        if response.status >= 300:
            raise ApiError(f"{method} {path}: {response.status} {await response.text()}")
        return await response.json()


@dataclass(frozen=True)
class Staff:
    editor: str
    reviewer: str
    analyst: str
    admin: str


async def staff_tokens(client: Client) -> Staff:
    """Create four staff accounts in storage and sign them in through the API."""
    tokens, password = [], uuid.uuid4().hex
    for role in ("editor", "editor", "analyst", "admin"):
        name = f"sim_{role}_{uuid.uuid4().hex[:6]}"
        await users.create_staff(client.app[DB], username=name, password=password, role=role)
        body = await call(
            client, "POST", "/auth/staff", json={"username": name, "password": password}
        )
        tokens.append(body["token"])
    return Staff(*tokens)


async def load_county(client: Client, staff: Staff, county: sim.County) -> dict[str, Item]:
    """Townships, census and the published item bank; returns the items by stem."""
    await county_storage.upsert_townships(client.app[DB], township_docs(len(county.census)))
    await call(
        client, "PUT", "/admin/census", staff.admin, json={"rows": census_rows(county.census)}
    )
    items = bank_items(county)
    sizes = [len(b) for b in county.bank]
    payload = json.dumps([i.content(sizes[i.dimension]) for i in items], ensure_ascii=False)
    form = FormData()
    form.add_field("file", payload.encode(), filename="simulation.json")
    result = await call(client, "POST", "/admin/questions/import", staff.editor, data=form)
    if result["imported"] != len(items) or result["errors"]:
        raise ApiError(f"import: {result}")
    await publish_drafts(client, staff)
    await client.app[BANK].load(client.app[DB])
    published = {q.stem for q in client.app[BANK].published.values()}
    if published != {i.stem for i in items}:
        raise ApiError("the bank cache does not hold exactly the simulation's items")
    return {i.stem: i for i in items}


async def publish_drafts(client: Client, staff: Staff) -> None:
    """Publish every draft as a second editor (four eyes), a few at a time."""
    ids: list[str] = []
    page = 1
    while True:
        body = await call(
            client, "GET", f"/admin/questions?status=draft&page={page}&page_size=100", staff.editor
        )
        ids.extend(q["id"] for q in body["items"])
        if page * body["page_size"] >= body["total"]:
            break
        page += 1
    gate = asyncio.Semaphore(8)

    async def publish(qid: str) -> None:
        async with gate:
            await call(client, "POST", f"/admin/questions/{qid}/publish", staff.reviewer)

    await asyncio.gather(*(publish(qid) for qid in ids))


# ---------------------------------------------------------------------------------------------
# Respondents
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One respondent's assessment: the simulation's scoring and the API's."""

    respondent: sim.Respondent
    correct: tuple[int, ...]  # correct answers per dimension
    sim_total: float
    api_total: float
    api_tier: str
    on_strata: bool  # the form took one item from each of the simulation's strata

    @property
    def literate(self) -> bool:
        return self.api_tier in ("advanced", "literate")

    @property
    def agrees(self) -> bool:
        shown = np.floor(self.sim_total * 100 + 1e-6) / 100  # the API rounds down to 0.01
        return abs(shown - self.api_total) < 1e-9 and tier_of(self.sim_total) == self.api_tier


def tier_of(total: float) -> str:
    return next((tier for tier, cutoff in TIER_CUTOFFS if total >= cutoff - 1e-9), "low")


def profile(respondent: sim.Respondent, year: int) -> Document:
    return {
        "township_code": township_code(respondent.township),
        "birth_year": year - BAND_AGES[respondent.age_band],
        "gender": respondent.gender,
        "group": respondent.group,
        "education": respondent.education,
    }


def answer_form(
    questions: list[Document], items: dict[str, Item], respondent: sim.Respondent, rng: Any
) -> tuple[list[Document], list[Item], list[bool]]:
    """The respondent's choices (shown keys) for the served questions, right or wrong by
    the Rasch model, with the items they were and which were answered right."""
    served = [items[q["stem"]] for q in questions]
    hits = respondent.answer([i.difficulty for i in served], rng)
    answers = []
    for question, item, hit in zip(questions, served, hits, strict=True):
        right = [o["key"] for o in question["options"] if o["text"] == item.right]
        wrong = [o["key"] for o in question["options"] if o["text"] != item.right]
        answers.append({"question_id": question["id"], "choice": right if hit else wrong[:1]})
    return answers, served, hits


def on_strata(served: list[Item]) -> bool:
    """Whether the form holds exactly one item of each simulation stratum per dimension."""
    for d, (_, _, count, size, _) in enumerate(sim.DIMENSIONS):
        strata = sorted(i.rank // (size // count) for i in served if i.dimension == d)
        if strata != list(range(count)):
            return False
    return True


async def take_assessment(
    client: Client, items: dict[str, Item], respondent: sim.Respondent, key: str, rng: Any
) -> Outcome:
    """Sign in, set the profile, take and submit the monthly assessment."""
    token = (await call(client, "POST", "/auth/dev", json={"openid": key}))["token"]
    year = datetime.now(UTC).year
    await call(client, "PUT", "/me", token, json=profile(respondent, year))
    start: Document = {"mode": "assessment"}
    if respondent.channel != "self":
        start["channel"] = respondent.channel
    quiz = await call(client, "POST", "/quizzes", token, json=start)
    answers, served, hits = answer_form(quiz["questions"], items, respondent, rng)
    result = await call(
        client, "POST", f"/quizzes/{quiz['quiz_id']}/submit", token, json={"answers": answers}
    )
    correct = np.zeros(len(sim.DIMENSIONS), dtype=np.int64)
    for item, hit in zip(served, hits, strict=True):
        correct[item.dimension] += hit
    return Outcome(
        respondent,
        tuple(int(c) for c in correct),
        float(sim.total_score(correct[None, :])[0]),
        float(result["total"]),
        str(result["tier"]),
        on_strata(served),
    )


async def take_all(
    client: Client,
    items: dict[str, Item],
    respondents: Sequence[sim.Respondent],
    seed: int,
    concurrency: int = CONCURRENCY,
    progress: bool = False,
) -> list[Outcome]:
    """Every respondent's assessment, `concurrency` at a time; outcomes in respondent order."""
    outcomes: list[Outcome | None] = [None] * len(respondents)
    queue = iter(range(len(respondents)))
    started, step = time.perf_counter(), max(1, len(respondents) // 10)

    async def worker() -> None:
        for index in queue:
            rng = np.random.default_rng([seed, 2, index])
            key = f"sim{seed}-{index}"
            outcomes[index] = await take_assessment(client, items, respondents[index], key, rng)
            done = sum(o is not None for o in outcomes) if progress else 0
            if progress and done % step == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  {done:,} of {len(respondents):,} ({rate:.1f}/s)", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [o for o in outcomes if o is not None]


# ---------------------------------------------------------------------------------------------
# Estimates
# ---------------------------------------------------------------------------------------------


async def literacy(client: Client, token: str) -> tuple[list[Document], Document]:
    """Township rows (in township index order) and the county row of the current year."""
    townships = await call(client, "GET", "/stats/literacy?by=township", token)
    county = await call(client, "GET", "/stats/literacy?by=county", token)
    rows = sorted(townships["rows"], key=lambda row: row["key"])
    if [row["key"] for row in rows] != [township_code(t) for t in range(len(rows))]:
        raise ApiError("the township rows are not the simulation's townships")
    return rows, county["county"]


def to_cells(outcomes: Sequence[Outcome]) -> est.Cells:
    """The respondents as estimation cells, literate as the API scored them."""
    rows = np.array(
        [
            (
                o.respondent.township,
                est.AGE_BANDS.index(o.respondent.age_band),
                est.GENDERS.index(o.respondent.gender),
                est.EDUCATIONS.index(o.respondent.education),
                est.GROUPS.index(o.respondent.group),
                int(o.literate),
            )
            for o in outcomes
        ],
        dtype=np.int64,
    ).reshape(-1, 6)
    keys, inverse = np.unique(rows[:, :5], axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n = np.bincount(inverse, minlength=len(keys))
    literate = np.bincount(inverse, weights=rows[:, 5], minlength=len(keys)).astype(np.int64)
    township, age, gender, education, group = keys.T
    return est.Cells(township, age, gender, education, group, n, literate)


@dataclass(frozen=True)
class InProcess:
    """What the service computes from the same cells, computed here: MRP and raking."""

    township: est.Estimates  # MRP
    county: est.Estimates  # MRP
    raked: est.DomainShares  # township raking
    raked_county: float  # the whole sample raked to the county's census


def in_process(outcomes: Sequence[Outcome], census: est.FloatArray) -> InProcess:
    """The service's estimators (as `scoring.report.analyse` calls them) on the same cells."""
    cells = to_cells(outcomes)
    raking = est.rake(cells, census)
    mrp = fit_mrp(cells, census, draws=MRP_DRAWS, seed=0)
    whole = est.domain_share(cells, est.rake_county(cells, census).weights)
    return InProcess(mrp.township, mrp.county, raking.township, float(whole.estimate[0]))


@dataclass(frozen=True)
class Metrics:
    """One estimator in one run: errors and coverage (published townships) and the county."""

    errors: est.FloatArray
    covered: est.BoolArray
    county_error: float
    county_covered: bool


def intervals(row: Document, estimator: str) -> tuple[float, float, float]:
    """(share, low, high) of a row: Wilson on n for raw, Wilson-Kish for raked, MRP's own."""
    if estimator == "mrp":
        return row["weighted_share"], row["ci_low"], row["ci_high"]
    share, n = (
        (row["raw_share"], row["respondents"])
        if estimator == "raw"
        else (row["raked_share"], row["n_eff"])
    )
    wilson = est.wilson_interval(share, n)
    return float(share), float(wilson.lower), float(wilson.upper)


def score_rows(
    rows: Sequence[Document], county_row: Document, county: sim.County, estimator: str
) -> Metrics:
    """Errors and coverage of one estimator's published rows against the simulation's truth."""
    errors, covered = [], []
    for t, row in enumerate(rows):
        if row["suppressed"]:
            continue
        share, low, high = intervals(row, estimator)
        truth = county.true_share[t]
        errors.append(share - truth)
        covered.append(low <= truth <= high)
    share, low, high = intervals(county_row, estimator)
    return Metrics(
        np.array(errors),
        np.array(covered, dtype=bool),
        share - county.true_county,
        bool(low <= county.true_county <= high),
    )


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seed: int
    scale: float
    county: sim.County
    outcomes: list[Outcome]
    rows: list[Document]
    county_row: Document
    metrics: dict[str, Metrics]
    seconds: dict[str, float]

    @property
    def townships(self) -> int:
        return len(self.county.census)

    @property
    def suppressed(self) -> int:
        return sum(bool(r["suppressed"]) for r in self.rows)

    @property
    def mismatches(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.agrees]


def settings_for(services: harness.Services) -> Settings:
    """Development settings on the harness's servers, with a database of this run's own."""
    unique = uuid.uuid4().hex[:12]
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        app_env="development",
        mongodb_uri=services.mongo.url,
        mongodb_db=f"eval_{unique}",
        redis_url=services.redis.url,
        redis_prefix=f"eval:{unique}:",
        quiz_signing_key=SecretStr(uuid.uuid4().hex),
        rate_limit_requests=10**9,
        login_rate_limit_requests=10**9,
    )


async def simulate(
    client: Client,
    seed: int,
    townships: int,
    scale: float,
    concurrency: int = CONCURRENCY,
    progress: bool = False,
) -> Run:
    """One synthetic county through the API, scored against its truth."""
    clock = time.perf_counter()
    county = sim.build_county(seed, townships)
    respondents = thin(sim.draw_respondents(county, seed).records(), scale, seed)
    staff = await staff_tokens(client)
    items = await load_county(client, staff, county)
    seconds = {"setup": time.perf_counter() - clock}
    clock = time.perf_counter()
    outcomes = await take_all(client, items, respondents, seed, concurrency, progress)
    seconds["respondents"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rows, county_row = await literacy(client, staff.analyst)
    seconds["statistics"] = time.perf_counter() - clock
    metrics = {name: score_rows(rows, county_row, county, name) for name in ESTIMATORS}
    return Run(seed, scale, county, outcomes, rows, county_row, metrics, seconds)


async def run_once(
    services: harness.Services, seed: int, townships: int, scale: float, concurrency: int
) -> Run:
    """A fresh app and database for one run; both dropped afterwards."""
    settings = settings_for(services)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        return await simulate(client, seed, townships, scale, concurrency, progress=True)
    finally:
        await client.close()
        await drop(services, settings)


async def drop(services: harness.Services, settings: Settings) -> None:
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(services.mongo.url)
    redis = Redis.from_url(services.redis.url)
    try:
        await mongo.drop_database(settings.mongodb_db)
        keys = [k async for k in redis.scan_iter(match=settings.redis_prefix + "*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await mongo.close()
        await redis.aclose()


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def format_run(run: Run) -> str:
    total = sum(run.seconds.values())
    rate = len(run.outcomes) / run.seconds["respondents"]
    off = sum(not o.on_strata for o in run.outcomes)
    lines = [
        f"seed {run.seed}: {run.townships} townships, {len(run.outcomes):,} respondents "
        f"(scale {run.scale:g}); "
        f"{run.townships - run.suppressed} townships published, {run.suppressed} suppressed; "
        f"true county share {100 * run.county.true_county:.2f}%",
        f"{'estimator':<10} {'bias':>6} {'MAE':>6} {'cover':>6} | {'county err':>10} {'covered':>7}",
    ]
    for name in ESTIMATORS:
        m = run.metrics[name]
        lines.append(
            f"{name:<10} {100 * m.errors.mean():>6.2f} {100 * np.abs(m.errors).mean():>6.2f} "
            f"{m.covered.mean():>6.1%} | {100 * m.county_error:>10.2f} "
            f"{'yes' if m.county_covered else 'no':>7}"
        )
    lines.append(
        f"scores: {len(run.outcomes) - len(run.mismatches):,} of {len(run.outcomes):,} API "
        f"totals and tiers agree with the simulation's scoring; {off:,} forms off the "
        "simulation's difficulty strata"
    )
    lines.append(
        f"wall time {total:.1f} s (setup {run.seconds['setup']:.1f} s, respondents "
        f"{run.seconds['respondents']:.1f} s = {rate:.0f}/s, "
        f"{REQUESTS_PER_RESPONDENT * rate:.0f} requests/s, statistics "
        f"{run.seconds['statistics']:.1f} s)"
    )
    return "\n".join(lines)


def format_pooled(runs: Sequence[Run]) -> str:
    """Bias and MAE averaged over runs, coverage pooled over townships (percentage points)."""
    lines = [
        f"pooled over {len(runs)} runs (seeds {[r.seed for r in runs]}):",
        f"{'estimator':<10} {'bias':>6} {'MAE':>6} {'cover':>6} | {'county MAE':>10} "
        f"{'covered':>7}",
    ]
    for name in ESTIMATORS:
        metrics = [r.metrics[name] for r in runs]
        county = np.array([m.county_error for m in metrics])
        lines.append(
            f"{name:<10} {np.mean([100 * m.errors.mean() for m in metrics]):>6.2f} "
            f"{np.mean([100 * np.abs(m.errors).mean() for m in metrics]):>6.2f} "
            f"{np.concatenate([m.covered for m in metrics]).mean():>6.1%} | "
            f"{100 * np.abs(county).mean():>10.2f} "
            f"{sum(m.county_covered for m in metrics):>3d}/{len(metrics):<3d}"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    harness.stop_on_sigterm()
    runs: list[Run] = []
    # The H2 file store: a county's worth of attempts outgrows the memory store's heap.
    with harness.running("eval", durable=True) as services:
        for seed in range(args.seed, args.seed + args.runs):
            run = await run_once(services, seed, args.townships, args.scale, args.concurrency)
            runs.append(run)
            print(format_run(run), flush=True)
        if len(runs) > 1:
            print(format_pooled(runs))
    return 1 if any(run.mismatches for run in runs) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--townships", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--scale", type=float, default=0.2, help="fraction of respondents kept")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
