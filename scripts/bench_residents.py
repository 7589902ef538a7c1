"""A county of residents through the real HTTP API (`python -m scripts.bench_residents`).

Acceptance criterion, printed (never asserted): 3,000 residents (WeChat login, profile, start
an assessment, submit it) go through the HTTP API with 16 concurrent clients in under 5 minutes,
with no request failing.

Everything runs the way production does, over HTTP and the command line only: the harness
starts MongoDB (mongo-java-server, in memory; `--durable` for its H2 file) and Redis, a fake
WeChat jscode2session runs in this process, and the app is `python -m server serve` in a
subprocess after `seed-demo --no-assessments`. Afterwards an admin (made with `create-user`)
reads the participation and literacy statistics back and they are compared with what was
submitted. CPU seconds of the app, the database server and Redis are read from /proc.

Exit status: 0 when the run completed (whatever the figures), 1 when setting up failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from scripts import services as harness

LIMIT_SECONDS = 300.0
COUNTY_TZ = ZoneInfo("Asia/Shanghai")
HEADLINE_AGES = (18, 69)  # the literacy headline covers residents aged 18–69
WECHAT_APPID = "wx-bench"
WECHAT_SECRET = "bench-secret-not-real"  # noqa: S105 - the fake WeChat's, not a credential
GENDERS = ("male", "female")
GROUPS = ("farmer", "worker", "elderly", "youth", "official", "other")
EDUCATIONS = ("primary_or_less", "junior", "senior", "college_plus")
STEPS = ("login", "profile", "start", "submit")
ERRORS_SHOWN = 5
APP_LOG = harness.SERVICES / "bench-residents-app.log"


class SetupError(RuntimeError):
    """Something the run depends on failed (servers, seeding, the app, the township list)."""


# ---------------------------------------------------------------- measuring


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


@dataclass
class Step:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    errors: list[str] = field(default_factory=list)

    def ok(self, elapsed: float, status: int) -> None:
        self.latencies_ms.append(elapsed * 1000)
        self.statuses[str(status)] += 1

    def fail(self, elapsed: float, status: str, detail: str) -> None:
        self.latencies_ms.append(elapsed * 1000)
        self.statuses[status] += 1
        self.failures += 1
        self.note(f"{status}: {detail[:400]}")

    def malformed(self, detail: str) -> None:
        """A 2xx response the next step can't use (counted as a failure, timed already)."""
        self.statuses["malformed"] += 1
        self.failures += 1
        self.note(f"malformed: {detail[:400]}")

    def note(self, error: str) -> None:
        if len(self.errors) < ERRORS_SHOWN:
            self.errors.append(error)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU of a process and its live descendants (in case the app forks workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    if cpu_seconds(pid) is None:
        return None
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += cpu_seconds(current) or 0.0
        pending.extend(parents.get(current, []))
    return total


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


# ---------------------------------------------------------------- the fake WeChat


@dataclass
class FakeWeChat:
    """jscode2session: code `c` → openid `oid-c`; wrong credentials → errcode 40013."""

    calls: int = 0
    runner: web.AppRunner | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        query = request.query
        if query.get("appid") != WECHAT_APPID or query.get("secret") != WECHAT_SECRET:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if query.get("grant_type") != "authorization_code" or not query.get("js_code"):
            return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
        code = query["js_code"]
        return web.json_response(
            {"openid": f"oid-{code}", "session_key": secrets.token_urlsafe(16)}
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/sns/jscode2session", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


# ---------------------------------------------------------------- the app as a subprocess


def app_environment(services: harness.Services) -> dict[str, str]:
    return {
        **os.environ,
        "MONGODB_URI": services.mongo.url,
        "MONGODB_DB": f"bench_residents_{uuid.uuid4().hex[:8]}",
        "REDIS_URL": services.redis.url,
        "REDIS_PREFIX": f"bench-residents-{uuid.uuid4().hex[:8]}:",
        "APP_ENV": "development",
        "HOST": "127.0.0.1",
        "PORT": str(harness.free_port()),
        "WECHAT_APPID": WECHAT_APPID,
        "WECHAT_SECRET": WECHAT_SECRET,
        "RATE_LIMIT_REQUESTS": "100000000",  # all load comes from one address
        "LOGIN_RATE_LIMIT_REQUESTS": "100000000",
    }


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        cwd=harness.ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SetupError(
            f"`python -m server {' '.join(args)}` exited with {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    return result.stdout.strip()


def log_tail(lines: int = 30) -> str:
    try:
        return "\n".join(APP_LOG.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_app(env: dict[str, str]) -> subprocess.Popen[bytes]:
    APP_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(APP_LOG, "wb") as log:
        # A session of its own: Ctrl-C reaches us only, and we stop the app first.
        return subprocess.Popen(
            [sys.executable, "-m", "server", "serve"],
            env=env,
            cwd=harness.ROOT,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def stop_app(app: subprocess.Popen[bytes]) -> None:
    if app.poll() is not None:
        return
    app.terminate()
    try:
        app.wait(20)
    except subprocess.TimeoutExpired:
        app.kill()
        app.wait(10)


async def wait_ready(
    session: aiohttp.ClientSession, base: str, app: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise SetupError(f"the app exited with {app.returncode}:\n{log_tail()}")
        try:
            async with session.get(base + "/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SetupError(f"GET /readyz was not 200 within 90 s:\n{log_tail()}")


def step_of(method: str, path: str) -> str | None:
    if method == "POST" and path == "/api/v1/auth/wechat":
        return "login"
    if method == "PUT" and path == "/api/v1/me":
        return "profile"
    if method == "POST" and path == "/api/v1/quizzes":
        return "start"
    if method == "POST" and path.startswith("/api/v1/quizzes/") and path.endswith("/submit"):
        return "submit"
    return None


@dataclass
class AppLog:
    """What the app's log says: error/warning lines, 5xx, and its own handling times."""

    problems: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    durations_ms: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def read(cls) -> AppLog:
        log = cls()
        try:
            lines = APP_LOG.read_text(errors="replace").splitlines()
        except OSError:
            return log
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            kind = None
            if isinstance(record, dict):
                status, level = record.get("status"), str(record.get("level", "")).lower()
                step = step_of(str(record.get("method")), str(record.get("path")))
                if step and isinstance(record.get("duration_ms"), int | float):
                    log.durations_ms.setdefault(step, []).append(float(record["duration_ms"]))
                if isinstance(status, int) and status >= 500:
                    kind = f"access {status}"
                elif level in ("warning", "error", "critical"):
                    kind = f"{level} ({record.get('logger')})"
            elif "Traceback" in line:
                kind = "traceback"
            if kind:
                log.problems[kind] += 1
                if len(log.examples) < ERRORS_SHOWN:
                    log.examples.append(line[:500])
        return log


# ---------------------------------------------------------------- residents


@dataclass(frozen=True)
class Resident:
    index: int
    profile: dict[str, Any]


@dataclass
class Outcome:
    submitted: bool = False
    year: int = 0  # the county-time year when the assessment was started
    tier: str | None = None


def make_residents(count: int, townships: list[str], seed: int) -> list[Resident]:
    rng = random.Random(seed)
    return [
        Resident(
            index,
            {
                "township_code": rng.choice(townships),
                "birth_year": rng.randint(1950, 2005),
                "gender": rng.choice(GENDERS),
                "group": rng.choice(GROUPS),
                "education": rng.choice(EDUCATIONS),
            },
        )
        for index in range(count)
    ]


def answers_for(questions: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    answers = []
    for question in questions:
        keys = [option["key"] for option in question["options"]]
        picked = (
            rng.sample(keys, rng.randint(1, min(3, len(keys))))
            if question["type"] == "multiple"
            else [rng.choice(keys)]
        )
        answers.append({"question_id": question["id"], "choice": sorted(picked)})
    return answers


@dataclass
class Load:
    session: aiohttp.ClientSession
    base: str
    seed: int
    steps: dict[str, Step] = field(default_factory=lambda: {s: Step(s) for s in STEPS})

    async def call(
        self,
        step: str,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        token: str | None = None,
        required: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """One request; None (recorded as a failure) unless 2xx JSON with `required` keys."""
        stats = self.steps[step]
        headers = {"Authorization": f"Bearer {token}"} if token else None
        started = time.perf_counter()
        try:
            async with self.session.request(
                method, self.base + path, json=body, headers=headers
            ) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            stats.fail(time.perf_counter() - started, type(error).__name__, repr(error))
            return None
        elapsed = time.perf_counter() - started
        if not 200 <= status < 300:
            stats.fail(elapsed, str(status), text)
            return None
        try:
            data = json.loads(text)
        except ValueError:
            stats.fail(elapsed, f"{status} not JSON", text)
            return None
        missing = [key for key in required if key not in data]
        if missing:
            stats.fail(elapsed, f"{status} missing {','.join(missing)}", text)
            return None
        stats.ok(elapsed, status)
        return data if isinstance(data, dict) else None

    async def resident(self, resident: Resident) -> Outcome:
        outcome = Outcome()
        rng = random.Random(self.seed * 1_000_003 + resident.index)
        login = await self.call(
            "login",
            "POST",
            "/api/v1/auth/wechat",
            {"code": f"r{resident.index}"},
            required=("token",),
        )
        if login is None:
            return outcome
        token = login["token"]
        if await self.call("profile", "PUT", "/api/v1/me", resident.profile, token=token) is None:
            return outcome
        outcome.year = datetime.now(COUNTY_TZ).year
        quiz = await self.call(
            "start",
            "POST",
            "/api/v1/quizzes",
            {"mode": "assessment"},
            token=token,
            required=("quiz_id", "questions"),
        )
        if quiz is None:
            return outcome
        try:
            answers = answers_for(quiz["questions"], rng)
        except (KeyError, TypeError, ValueError) as error:
            self.steps["start"].malformed(f"questions unusable ({error!r}): {quiz}")
            return outcome
        result = await self.call(
            "submit",
            "POST",
            f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
            {"answers": answers},
            token=token,
            required=("total", "tier"),
        )
        if result is not None:
            outcome.submitted, outcome.tier = True, result["tier"]
        return outcome


async def townships(session: aiohttp.ClientSession, base: str) -> list[str]:
    codes: list[str] = []
    page = 1
    while True:
        async with session.get(
            base + "/api/v1/townships", params={"page_size": "100", "page": str(page)}
        ) as response:
            if response.status != 200:
                raise SetupError(
                    f"GET /api/v1/townships: {response.status} {await response.text()}"
                )
            body = await response.json()
        codes.extend(item["code"] for item in body["items"])
        if not body["items"] or len(codes) >= body["total"]:
            break
        page += 1
    if not codes:
        raise SetupError("GET /api/v1/townships returned no township")
    return codes


async def run_load(
    load: Load, residents: list[Resident], clients: int
) -> tuple[float, list[Outcome]]:
    outcomes: list[Outcome] = [Outcome() for _ in residents]
    queue: Iterator[Resident] = iter(residents)
    done = 0
    started = time.perf_counter()
    report_every = max(1, len(residents) // 10)

    async def client() -> None:
        nonlocal done
        for resident in queue:
            outcomes[resident.index] = await load.resident(resident)
            done += 1
            if done % report_every == 0:
                elapsed = time.perf_counter() - started
                failed = sum(step.failures for step in load.steps.values())
                print(
                    f"  {done:>6} residents  {elapsed:7.1f} s  {done / elapsed:6.1f}/s  "
                    f"failed requests {failed}  ({load_note()})",
                    flush=True,
                )

    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, outcomes


# ---------------------------------------------------------------- checking what was stored


async def admin_token(session: aiohttp.ClientSession, base: str, password: str) -> str:
    async with session.post(
        base + "/api/v1/auth/staff", json={"username": "bench_admin", "password": password}
    ) as response:
        if response.status != 200:
            raise SetupError(f"admin login: {response.status} {await response.text()}")
        return str((await response.json())["token"])


async def get_json(
    session: aiohttp.ClientSession, url: str, token: str, params: dict[str, str]
) -> tuple[int, Any, float]:
    started = time.perf_counter()
    async with session.get(
        url, params=params, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        text = await response.text()
        elapsed = time.perf_counter() - started
        try:
            return response.status, json.loads(text), elapsed
        except ValueError:
            return response.status, text, elapsed


async def verify(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    residents: list[Resident],
    outcomes: list[Outcome],
) -> list[str]:
    """Compare the statistics read over HTTP with what was submitted; return the problems."""
    problems: list[str] = []
    low, high = HEADLINE_AGES
    submitted = [(r, o) for r, o in zip(residents, outcomes, strict=True) if o.submitted]
    in_headline = [(r, o) for r, o in submitted if low <= o.year - r.profile["birth_year"] <= high]
    years = sorted({o.year for _, o in submitted}) or [datetime.now(COUNTY_TZ).year]
    period = str(years[-1])
    by_township = Counter(r.profile["township_code"] for r, _ in submitted)
    literate = sum(o.tier in ("advanced", "literate") for _, o in in_headline)
    print(
        f"submitted {len(submitted)}: {len(in_headline)} aged {low}–{high} in {period}, "
        f"{len(submitted) - len(in_headline)} outside (reported separately)"
    )
    if len(years) > 1:
        problems.append(f"assessments were started in more than one year: {years}")

    # Participation (all ages) by township; statistics may be cached briefly, so retry.
    url = base + "/api/v1/stats/participation"
    stored: Counter[str] = Counter()
    county_participation: Any = None
    for attempt in range(6):
        stored.clear()
        page = 1
        while True:
            params = {"by": "township", "period": period, "page": str(page), "page_size": "100"}
            status, body, elapsed = await get_json(session, url, token, params)
            if status != 200:
                problems.append(f"GET /stats/participation: {status} {str(body)[:400]}")
                break
            stored.update({item["key"]: item["respondents"] for item in body["items"]})
            county_participation = body.get("county", {}).get("respondents")
            if not body["items"] or page * 100 >= body["total"]:
                break
            page += 1
        if county_participation == len(submitted) or attempt == 5:
            break
        await asyncio.sleep(2)
    print(
        f"participation {period} (all ages): county respondents {county_participation} "
        f"(expected {len(submitted)}), read in {elapsed * 1000:.0f} ms"
    )
    if county_participation != len(submitted):
        problems.append(
            f"participation county respondents {county_participation} != {len(submitted)}"
        )
    wrong = {
        code: (stored.get(code, 0), by_township.get(code, 0))
        for code in set(by_township) | set(stored)
        if stored.get(code, 0) != by_township.get(code, 0)
    }
    print(
        f"participation by township: {len(by_township)} townships with respondents, "
        f"{len(wrong)} differ from what was submitted"
    )
    if wrong:
        problems.append(
            f"participation differs in {len(wrong)} townships: {dict(list(wrong.items())[:5])}"
        )

    # Literacy, county, for the year (ages 18–69 only).
    url = base + "/api/v1/stats/literacy"
    county: dict[str, Any] = {}
    first_read = float("nan")
    for attempt in range(6):
        status, body, elapsed = await get_json(
            session, url, token, {"by": "county", "period": period}
        )
        if status != 200:
            problems.append(f"GET /stats/literacy: {status} {str(body)[:400]}")
            break
        county = body.get("county") or {}
        first_read = first_read if attempt else elapsed
        if county.get("respondents") == len(in_headline) or attempt == 5:
            break
        await asyncio.sleep(2)
    if county:
        respondents = county.get("respondents")
        print(
            f"literacy {period}, county: respondents {respondents} (expected {len(in_headline)}), "
            f"raw share {county.get('raw_share')} (from the submit responses: "
            f"{literate / max(1, len(in_headline)):.4f}), weighted {county.get('weighted_share')}, "
            f"95% interval {county.get('ci_low')}–{county.get('ci_high')}, "
            f"tiers {county.get('tiers')}; first read {first_read * 1000:.0f} ms"
        )
        if respondents != len(in_headline):
            problems.append(
                f"literacy county respondents {respondents} != {len(in_headline)} "
                f"(residents aged {low}–{high} whose submit succeeded)"
            )
    return problems


# ---------------------------------------------------------------- the run


@dataclass
class Cpu:
    name: str
    pid: int | None
    before: float | None = None
    after: float | None = None

    def read(self) -> float | None:
        if self.pid is None:
            return None
        return tree_cpu_seconds(self.pid)

    def line(self, residents: int) -> str:
        if self.before is None or self.after is None:
            return f"  {self.name:<32} not measured (not started here)"
        used = self.after - self.before
        per = used / residents * 1000 if residents else float("nan")
        return f"  {self.name:<32} {used:7.1f} s CPU   {per:6.2f} ms per resident"


def print_steps(load: Load, wall: float) -> int:
    total_requests = sum(len(step.latencies_ms) for step in load.steps.values())
    print(
        f"{'step':<8} {'requests':>8} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses"
    )
    for step in load.steps.values():
        samples = step.latencies_ms
        print(
            f"{step.name:<8} {len(samples):>8} {step.failures:>7} "
            f"{percentile(samples, 0.5):>8.1f} {percentile(samples, 0.99):>8.1f} "
            f"{max(samples, default=float('nan')):>8.1f}  {dict(step.statuses)}"
        )
        for error in step.errors:
            print(f"         ! {error}")
    print(f"requests: {total_requests} in {wall:.1f} s = {total_requests / wall:.1f} per second")
    return total_requests


async def run(
    args: argparse.Namespace, services: harness.Services, env: dict[str, str], password: str
) -> None:
    base = f"http://127.0.0.1:{env['PORT']}"
    wechat = FakeWeChat()
    backend = "durable H2" if args.durable else "in-memory"
    await wechat.start()
    app: subprocess.Popen[bytes] | None = None
    connector = aiohttp.TCPConnector(limit=max(100, args.clients * 2))
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        app = start_app({**env, "WECHAT_API_BASE": wechat.url})
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await wait_ready(session, base, app)
            codes = await townships(session, base)
            residents = make_residents(args.residents, codes, args.seed)
            print(
                f"app pid {app.pid} on {base} (log {APP_LOG}), fake WeChat on {wechat.url}, "
                f"{len(codes)} townships"
            )
            cpus = [
                Cpu("app (python -m server serve)", app.pid),
                Cpu("database (mongo-java-server)", _pid(services.mongo)),
                Cpu("redis", _pid(services.redis)),
            ]
            for cpu in cpus:
                cpu.before = cpu.read()
            own_before = _own_cpu()
            print(f"-- {args.residents} residents, {args.clients} clients ({load_note()}) --")
            load = Load(session, base, args.seed)
            wall, outcomes = await run_load(load, residents, args.clients)
            for cpu in cpus:
                cpu.after = cpu.read()
            own_used = _own_cpu() - own_before
            after_note = load_note()

            print(f"\n== results ({after_note} at the end) ==")
            completed = sum(o.submitted for o in outcomes)
            total_requests = print_steps(load, wall)
            failed = sum(step.failures for step in load.steps.values())
            print(
                f"residents: {completed} of {args.residents} completed in {wall:.1f} s = "
                f"{completed / wall:.1f} per second; fake WeChat answered {wechat.calls} calls"
            )
            print("CPU during the load:")
            for cpu in cpus:
                print(cpu.line(args.residents))
            per = own_used / args.residents * 1000 if args.residents else float("nan")
            print(
                f"  {'bench (load + fake WeChat)':<32} {own_used:7.1f} s CPU   {per:6.2f} ms per resident"
            )
            app_log = AppLog.read()
            print("handling time in the app (its access log):")
            for name in STEPS:
                samples = app_log.durations_ms.get(name, [])
                print(
                    f"  {name:<8} {len(samples):>6} logged  p50 {percentile(samples, 0.5):7.1f} ms"
                    f"  p99 {percentile(samples, 0.99):7.1f} ms"
                )
            if app_log.problems:
                print(f"app log: {dict(app_log.problems)}")
                for example in app_log.examples:
                    print(f"         ! {example}")
            else:
                print("app log: no warning, error or 5xx lines")
            reasons = []
            if wall >= LIMIT_SECONDS:
                reasons.append(f"took {wall:.1f} s")
            if failed:
                reasons.append(f"{failed} requests failed")
            if completed < args.residents:
                reasons.append(f"{args.residents - completed} residents did not finish")
            verdict = "OK" if not reasons else "NOT MET (" + "; ".join(reasons) + ")"
            print(f"[{total_requests} requests; {after_note}; {backend} MongoDB]")

            print("\n== stored, read back over HTTP as an admin ==")
            try:
                token = await admin_token(session, base, password)
                problems = await verify(session, base, token, residents, outcomes)
            except (SetupError, aiohttp.ClientError, TimeoutError, KeyError) as error:
                problems = [f"could not read the statistics: {error!r}"]
            for problem in problems:
                print(f"!!! MISMATCH: {problem}")
            print(
                "stored counts match what was submitted"
                if not problems
                else f"!!! {len(problems)} MISMATCH(ES) between what was stored and submitted"
            )
            print(
                f"\n{args.residents} residents, {args.clients} clients: {wall:.1f} s "
                f"(limit {LIMIT_SECONDS:.0f} s), {failed} failed requests — {verdict}"
            )
    finally:
        if app is not None:
            stop_app(app)
        await wechat.close()


def _pid(server: harness.Server) -> int | None:
    return server.process.pid if server.process is not None else None


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--durable", action="store_true", help="MongoDB in an H2 file instead of in memory"
    )
    args = parser.parse_args()
    if args.residents < 1 or args.clients < 1:
        parser.error("--residents and --clients must be positive")
    harness.stop_on_sigterm()
    # Ctrl-C must unwind too, even when started as a background job (which ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        services = harness.start("bench-residents", durable=args.durable)
    except harness.HarnessError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    try:
        print(
            f"MongoDB {services.mongo.url} ({'durable' if args.durable else 'in memory'}), "
            f"Redis {services.redis.url}; {load_note()}"
        )
        env = app_environment(services)
        started = time.perf_counter()
        cli(env, "seed-demo", "--no-assessments")
        password = secrets.token_urlsafe(18)
        cli(
            env,
            "create-user",
            "--username",
            "bench_admin",
            "--role",
            "admin",
            stdin=password + "\n",
        )
        print(
            f"seeded {env['MONGODB_DB']} and created the admin in {time.perf_counter() - started:.1f} s"
        )
        asyncio.run(run(args, services, env, password))
        return 0
    except SetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        services.stop()
        services.remove_data()


if __name__ == "__main__":
    sys.exit(main())
