"""The running service under an outside load generator (`python -m scripts.bench_wrk`).

`wrk` (Debian's package, installed like the other tools) drives, in one run and one process
each: the bare aiohttp handler (scripts/baseline_server.py), `GET /healthz`, quiz start,
durable submit, the county leaderboard and article search of `python -m server serve`, at 64
and 256 connections. Lua scripts in scripts/wrk/ rotate many residents' tokens and send
prepared submits, each quiz once. For every run: req/s, p50, p99 and errors (any non-2xx or
socket error), each as a ratio to the bare handler at the same connection count, and CPU ms
per request of the app, the database server, Redis and wrk itself, read from /proc.

Figures are printed, never asserted (the targets are shown with ✓/✗ beside them); the
machine is shared, so its load average is printed too. Results also go to
.artifacts/bench_wrk.json. Exit status: 0 when the run completed, 1 when setting up failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from scripts import services as harness
from scripts.bench_residents import answers_for, make_residents, tree_cpu_seconds
from tests.fake_wechat import FakeWeChat

WRK_DIR = Path(__file__).resolve().parent / "wrk"
ARTIFACT = harness.ROOT / ".artifacts" / "bench_wrk.json"
APP_LOG = harness.SERVICES / "bench-wrk-app.log"  # kept after the run (the data dir is not)
BARE_LOG = harness.SERVICES / "bench-wrk-bare.log"
THREADS = 2
WARMUP_SECONDS = 1
# Failed requests while preparing (retried, so they don't stop the run, but they are shown).
PREPARE_FAILURES: dict[str, int] = {}
PREPARE_CONCURRENCY = 32
BARE = "bare aiohttp handler"
SUBMIT = "durable submit"


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    target: str  # "bare" or "app"
    data: str | None = None  # "tokens" or "submits"
    min_ratio: float | None = None  # the req/s target as a share of the bare handler


SCENARIOS = (
    Scenario(BARE, "bare.lua", "bare"),
    Scenario("GET /healthz", "healthz.lua", "app", min_ratio=0.80),
    Scenario("quiz start (practice)", "quiz_start.lua", "app", "tokens", min_ratio=0.50),
    Scenario(SUBMIT, "submit.lua", "app", "submits", min_ratio=0.25),
    Scenario("leaderboard (county, week)", "leaderboard.lua", "app", "tokens"),
    Scenario("article search", "article_search.lua", "app"),
)
P99_TARGET_CONNECTIONS = 256
P99_MAX_RATIO = 2.0


class SetupError(RuntimeError):
    """Something the run depends on failed (servers, seeding, the app, preparation)."""


# ---------------------------------------------------------------- processes


@dataclass
class Processes:
    """Every process started here (besides the harness's servers), stopped in reverse."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            # A session of its own: Ctrl-C reaches us only, and we stop it by pid.
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=harness.ROOT,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            stop(process)


def stop(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        cwd=harness.ROOT,
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


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_ready(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"{url}: the server exited with {process.returncode}:\n{tail(log)}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SetupError(f"GET {url} was not 200 within 90 s:\n{tail(log)}")


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- preparing through the API


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: dict[str, Any] | None = None,
    expect: tuple[int, ...] = (200, 201),
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    for attempt in range(3):
        try:
            async with session.request(method, url, json=body, headers=headers) as response:
                text = await response.text()
                if response.status in expect:
                    return json.loads(text)
                if response.status < 500:
                    raise SetupError(f"{method} {url}: {response.status} {text[:500]}")
                problem = f"{response.status} {text[:500]}"
        except (aiohttp.ClientError, TimeoutError) as error:
            problem = repr(error)
        key = f"{method} {url.split('?')[0].split('/api/v1/')[-1]}: {problem[:80]}"
        PREPARE_FAILURES[key] = PREPARE_FAILURES.get(key, 0) + 1
        await asyncio.sleep(0.5 * (attempt + 1))
    raise SetupError(f"{method} {url} failed 3 times: {problem}")


async def bounded(count: int, concurrency: int, job: Any) -> list[Any]:
    """job(i) for i in range(count), at most `concurrency` at a time, results in order."""
    results: list[Any] = [None] * count
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            results[index] = await job(index)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return results


async def township_codes(session: aiohttp.ClientSession, base: str) -> list[str]:
    codes: list[str] = []
    page = 1
    while True:
        body = await request_json(
            session, "GET", f"{base}/api/v1/townships?page_size=100&page={page}"
        )
        codes.extend(item["code"] for item in body["items"])
        if not body["items"] or len(codes) >= body["total"]:
            break
        page += 1
    if not codes:
        raise SetupError("GET /api/v1/townships returned no township")
    return codes


async def prepare_residents(base: str, count: int, run_id: str) -> list[str]:
    """Log `count` residents in through the fake WeChat and give each a profile."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        residents = make_residents(count, await township_codes(session, base), seed=1)

        async def one(index: int) -> str:
            login = await request_json(
                session,
                "POST",
                f"{base}/api/v1/auth/wechat",
                body={"code": f"ok-wrk-{run_id}-{index}"},
            )
            token = str(login["token"])
            profile = residents[index].profile
            await request_json(session, "PUT", f"{base}/api/v1/me", token=token, body=profile)
            return token

        return await bounded(count, PREPARE_CONCURRENCY, one)


async def prepare_submits(base: str, tokens: list[str], count: int, offset: int) -> list[str]:
    """`count` practice quizzes started through the API, round-robin over the residents, each
    with its answers: lines of `token TAB path TAB body` for submit.lua."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def one(index: int) -> str:
            token = tokens[(offset + index) % len(tokens)]
            quiz = await request_json(
                session,
                "POST",
                f"{base}/api/v1/quizzes",
                token=token,
                body={"mode": "practice"},
                expect=(201,),
            )
            answers = answers_for(quiz["questions"], random.Random(offset + index))
            path = f"/api/v1/quizzes/{urllib.parse.quote(quiz['quiz_id'], safe='')}/submit"
            body = json.dumps({"answers": answers}, separators=(",", ":"))
            return f"{token}\t{path}\t{body}"

        return await bounded(count, PREPARE_CONCURRENCY, one)


# ---------------------------------------------------------------- measuring


@dataclass
class Cpu:
    """CPU seconds so far of the server under load (the app, or the bare handler for its own
    rows), the database server, Redis and wrk (this process's finished children)."""

    app: int
    bare: int
    db: int | None
    redis: int | None

    def read(self, target: str) -> dict[str, float | None]:
        return {
            "server": tree_cpu_seconds(self.app if target == "app" else self.bare),
            "db": tree_cpu_seconds(self.db) if self.db else None,
            "redis": tree_cpu_seconds(self.redis) if self.redis else None,
            "wrk": children_cpu(),
        }


@dataclass
class Row:
    scenario: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    cpu_ms_per_request: dict[str, float | None]
    distinct: int
    prepared: int | None = None
    warmup_errors: int = 0
    warmup_statuses: dict[str, int] = field(default_factory=dict)
    rps_ratio: float | None = None
    p99_ratio: float | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)


def run_wrk(
    url: str, script: str, connections: int, duration: float, args: list[str]
) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
        "--",
        str(THREADS),
        *args,
    ]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=duration + 120)
    finally:
        stop(process, 5)
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            return dict(json.loads(line.removeprefix("WRKJSON ")))
    raise SetupError(f"wrk printed no result ({' '.join(argv)}):\n{text}\n{err.decode()[-2000:]}")


def measure(
    scenario: Scenario,
    connections: int,
    url: str,
    duration: float,
    data_args: list[str],
    cpu: Cpu,
) -> Row:
    before = cpu.read(scenario.target)
    result = run_wrk(url, scenario.script, connections, duration, data_args)
    after = cpu.read(scenario.target)
    requests = int(result["requests"])
    socket_errors = {k: int(v) for k, v in result["errors"].items() if k != "status"}
    latency = result["latency_us"]
    per_request: dict[str, float | None] = {}
    for name, start in before.items():
        end = after[name]
        per_request[name] = (
            (end - start) * 1000 / requests
            if start is not None and end is not None and requests
            else None
        )
    return Row(
        scenario=scenario.name,
        connections=connections,
        duration_s=result["duration_us"] / 1e6,
        requests=requests,
        rps=requests / (result["duration_us"] / 1e6),
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=int(result["non2xx"]) + sum(socket_errors.values()),
        statuses={str(k): int(v) for k, v in result["statuses"].items()},
        socket_errors=socket_errors,
        cpu_ms_per_request=per_request,
        distinct=int(result["distinct_sent"]),
    )


def judge(row: Row, scenario: Scenario, bare: Row | None) -> None:
    if bare is None or scenario.target == "bare":
        return
    row.rps_ratio = row.rps / bare.rps if bare.rps else None
    row.p99_ratio = row.p99_ms / bare.p99_ms if bare.p99_ms else None
    if scenario.min_ratio is not None and row.rps_ratio is not None:
        row.targets.append(
            {
                "target": f"req/s ≥ {scenario.min_ratio:.0%} of bare",
                "met": row.rps_ratio >= scenario.min_ratio,
            }
        )
    if row.connections == P99_TARGET_CONNECTIONS and row.p99_ratio is not None:
        row.targets.append(
            {
                "target": f"p99 ≤ {P99_MAX_RATIO:g}× bare p99",
                "met": row.p99_ratio <= P99_MAX_RATIO,
            }
        )


# ---------------------------------------------------------------- printing


def fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'scenario':<27} {'conn':>4} {'req/s':>8} {'×bare':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99×bare':>8} {'errors':>6}  {'CPU ms/req: server':>18} {'db':>6} {'redis':>6} "
        f"{'wrk':>6}  target"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        cpu = row.cpu_ms_per_request
        targets = "; ".join(f"{t['target']} {'✓' if t['met'] else '✗'}" for t in row.targets)
        print(
            f"{row.scenario:<27} {row.connections:>4} {row.rps:>8.0f} "
            f"{fmt(row.rps_ratio, '6.0%'):>6} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f} "
            f"{fmt(row.p99_ratio, '7.1f') + ('×' if row.p99_ratio else ''):>8} "
            f"{row.errors:>6}  {fmt(cpu['server'], '18.3f'):>18} {fmt(cpu['db'], '6.3f'):>6} "
            f"{fmt(cpu['redis'], '6.3f'):>6} {fmt(cpu['wrk'], '6.3f'):>6}  {targets}"
        )


def print_notes(rows: list[Row]) -> None:
    for row in rows:
        if row.errors:
            print(
                f"  ! {row.scenario} at {row.connections}: statuses {row.statuses}, "
                f"socket errors {row.socket_errors}"
            )
        if row.warmup_errors:
            print(
                f"  ! {row.scenario} at {row.connections}, {WARMUP_SECONDS} s warm-up (not "
                f"measured): {row.warmup_errors} errors, statuses {row.warmup_statuses}"
            )
        if row.prepared is not None:
            replays = max(0, row.requests - row.distinct)
            note = (
                f"all {row.requests} distinct"
                if not replays
                else f"{row.distinct} distinct, {replays} REPLAYS (the idempotent path; "
                f"prepare more with --quizzes)"
            )
            print(f"  {row.scenario} at {row.connections}: {row.prepared} quizzes prepared, {note}")


def app_workers(log: Path) -> str:
    """How many processes serve the app, from its log (`server.workers` says so)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "?"
    for line in lines:
        if '"master started"' in line:
            with contextlib.suppress(ValueError):
                return f"{json.loads(line).get('workers')} workers"
    return "1 process"


def app_log_problems(log: Path, shown: int = 5) -> tuple[dict[str, int], list[str]]:
    """5xx, warning/error records and tracebacks in the app's log. A request whose client
    went away (wrk closes its connections at the end of each run, some requests still in
    flight) is counted apart from other failures."""
    problems: dict[str, int] = {}
    examples: list[str] = []
    gone: set[str] = set()
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return problems, examples
    for line in lines:
        kind, example = None, line[:400]
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            status, level = record.get("status"), str(record.get("level", "")).lower()
            request_id = str(record.get("request_id"))
            last = (str(record.get("exception") or "").strip().splitlines() or [""])[-1]
            if "Connection lost" in last or last.startswith("ConnectionResetError"):
                gone.add(request_id)
            if isinstance(status, int) and status >= 500:
                path = re.sub(r"/[^/]{24,}", "/{id}", str(record.get("path")))
                kind = f"access {status} {record.get('method')} {path}"
                if request_id in gone:
                    kind += " (client went away)"
            elif level in ("warning", "error", "critical"):
                kind = f"{level} {record.get('logger')}: {last or record.get('message')}"[:120]
                example = f"{record.get('time')} {kind}"
        elif "Traceback" in line:
            kind = "traceback"
        if kind:
            problems[kind] = problems.get(kind, 0) + 1
            if len(examples) < shown and "went away" not in kind and "Connection lost" not in kind:
                examples.append(example)
    return problems, examples


# ---------------------------------------------------------------- the run


def app_environment(services: harness.Services, port: int) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "MONGODB_URI": services.mongo.url,
        "MONGODB_DB": f"bench_wrk_{tag}",
        "REDIS_URL": services.redis.url,
        "REDIS_PREFIX": f"bench-wrk-{tag}:",
        "APP_ENV": "development",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WECHAT_APPID": "wx-bench-wrk",
        "WECHAT_SECRET": "bench-wrk-secret-not-real",
        "QUIZ_SIGNING_KEY": secrets.token_urlsafe(32),
        "RATE_LIMIT_REQUESTS": "1000000000",  # all load comes from one address
        "LOGIN_RATE_LIMIT_REQUESTS": "1000000000",
    }


async def start_servers(
    processes: Processes, env: dict[str, str], workers: int | None, work: Path
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], str, str, FakeWeChat]:
    """The fake WeChat (in this process), the app and the bare handler; wait for both."""
    wechat = FakeWeChat()
    await wechat.start()
    app_env = {**env, "WECHAT_API_BASE": wechat.url}
    serve = [sys.executable, "-m", "server", "serve"]
    if workers is not None:
        serve += ["--workers", str(workers)]
    app = processes.spawn(serve, app_env, APP_LOG)
    bare_port = harness.free_port()
    bare = processes.spawn(
        [sys.executable, "-m", "scripts.baseline_server", str(bare_port)], env, BARE_LOG
    )
    app_url, bare_url = f"http://127.0.0.1:{env['PORT']}", f"http://127.0.0.1:{bare_port}"
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, app_url + "/readyz", app, APP_LOG)
        await wait_ready(session, bare_url + "/", bare, BARE_LOG)
    return app, bare, app_url, bare_url, wechat


def submit_count(args: argparse.Namespace, start_rps: float | None, submit_rps: float) -> int:
    """Quizzes to prepare for one submit run: --quizzes, or enough for the faster of quiz
    start (just measured) and twice the previous submit run's rate, with a margin."""
    if args.quizzes:
        return int(args.quizzes)
    rate = max(start_rps or 500.0, 2 * submit_rps)
    return int(min(args.max_quizzes, max(2000, rate * args.duration * 1.25 + 1000)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--connections", default="64,256", help="comma-separated, e.g. 64,256")
    parser.add_argument(
        "--workers", type=int, help="passed on to `python -m server serve --workers N`"
    )
    parser.add_argument("--residents", type=int, default=2000, help="logged-in residents")
    parser.add_argument(
        "--quizzes",
        type=int,
        help="prepared quizzes per submit run (default: from the measured quiz-start rate)",
    )
    parser.add_argument("--max-quizzes", type=int, default=40_000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--durable", action="store_true", help="MongoDB in an H2 file instead of in memory"
    )
    args = parser.parse_args()
    try:
        connections = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        parser.error("--connections: comma-separated integers")
    if not connections or min(connections) < THREADS or args.residents < 1 or args.duration < 1:
        parser.error(f"--connections ≥ {THREADS}, --residents ≥ 1 and --duration ≥ 1 required")
    try:
        harness.ensure_debian_program(
            "wrk", ["wrk"], "install wrk (e.g. `apt-get install wrk`) and run again."
        )
    except (harness.HarnessError, subprocess.CalledProcessError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1

    harness.stop_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    processes = Processes()
    try:
        services = harness.start("bench-wrk", durable=args.durable)
    except harness.HarnessError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    try:
        return run(args, connections, services, processes)
    except (SetupError, harness.HarnessError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        services.stop()
        services.remove_data()


def run(
    args: argparse.Namespace,
    connections: list[int],
    services: harness.Services,
    processes: Processes,
) -> int:
    load_start = load_average()
    backend = "durable H2" if args.durable else "in-memory"
    work = services.root / "wrk"
    work.mkdir(parents=True, exist_ok=True)
    env = app_environment(services, harness.free_port())
    print(
        f"bench_wrk: MongoDB {services.mongo.url} ({backend}), Redis {services.redis.url}; "
        f"load average {load_start} on {os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    cli(env, "seed-demo", "--no-assessments")
    print(f"seeded {env['MONGODB_DB']} in {time.perf_counter() - started:.1f} s")

    async def setup() -> tuple[
        subprocess.Popen[bytes], subprocess.Popen[bytes], str, str, list[str]
    ]:
        app, bare, app_url, bare_url, wechat = await start_servers(
            processes, env, args.workers, work
        )
        try:
            began = time.perf_counter()
            tokens = await prepare_residents(app_url, args.residents, uuid.uuid4().hex[:6])
            print(
                f"{len(tokens)} residents logged in (fake WeChat) with profiles in "
                f"{time.perf_counter() - began:.1f} s"
            )
        finally:
            await wechat.close()
        return app, bare, app_url, bare_url, tokens

    app, bare, app_url, bare_url, tokens = asyncio.run(setup())
    tokens_file = work / "tokens.tsv"
    tokens_file.write_text("".join(f"{t}\n" for t in tokens))
    cpu = Cpu(app.pid, bare.pid, _pid(services.mongo), _pid(services.redis))
    serving = app_workers(APP_LOG) + ("" if args.workers else " by default")
    print(
        f"app pid {app.pid} ({app_url}, {serving}), bare handler "
        f"{bare_url}; wrk {THREADS} threads, {args.duration:g} s per run"
    )

    rows: list[Row] = []
    submitted = 0
    submit_rps = 0.0
    for conns in connections:
        bare_row: Row | None = None
        start_rps: float | None = None
        for scenario in SCENARIOS:
            url = bare_url if scenario.target == "bare" else app_url
            data_args: list[str] = []
            prepared = None
            warmup: dict[str, Any] | None = None
            if scenario.data == "tokens":
                data_args = [str(tokens_file)]
            if scenario.data == "submits":
                prepared = submit_count(args, start_rps, submit_rps)
                began = time.perf_counter()
                lines = asyncio.run(prepare_submits(app_url, tokens, prepared, submitted))
                submitted += prepared
                data_file = work / f"submits-{conns}.tsv"
                data_file.write_text("".join(f"{line}\n" for line in lines))
                data_args = [str(data_file)]
                print(
                    f"  prepared {prepared} practice quizzes for {conns} connections in "
                    f"{time.perf_counter() - began:.1f} s",
                    flush=True,
                )
            elif WARMUP_SECONDS:
                warmup = run_wrk(url, scenario.script, conns, WARMUP_SECONDS, data_args)
            if app.poll() is not None:
                raise SetupError(f"the app exited with {app.returncode}:\n{tail(APP_LOG)}")
            row = measure(scenario, conns, url, args.duration, data_args, cpu)
            row.prepared = prepared
            if warmup is not None:
                row.warmup_errors = int(warmup["non2xx"]) + sum(
                    int(v) for k, v in warmup["errors"].items() if k != "status"
                )
                row.warmup_statuses = {str(k): int(v) for k, v in warmup["statuses"].items()}
            if scenario.target == "bare":
                bare_row = row
            judge(row, scenario, bare_row)
            if scenario.data == "tokens" and scenario.min_ratio is not None:
                start_rps = row.rps
            if scenario.data == "submits":
                submit_rps = max(submit_rps, row.rps)
            rows.append(row)
            print(
                f"  {row.scenario:<27} {conns:>4} conns: {row.rps:8.0f} req/s  "
                f"p50 {row.p50_ms:7.2f} ms  p99 {row.p99_ms:8.2f} ms  errors {row.errors}",
                flush=True,
            )

    load_end = load_average()
    problems, examples = app_log_problems(APP_LOG)
    print(
        f"\n== wrk against `python -m server serve` ({backend} MongoDB, {serving}), "
        f"{args.duration:g} s per run, {THREADS} wrk threads; "
        f"ratios are to the bare aiohttp handler at the same connection count =="
    )
    print_table(rows)
    print_notes(rows)
    print(
        "errors = non-2xx responses + socket errors/timeouts; CPU ms/req = CPU time of the "
        "process (and its children) during the run / requests completed"
    )
    print(f"load average at start {load_start}, at end {load_end} ({os.cpu_count()} CPUs)")
    if PREPARE_FAILURES:
        print(f"preparation (not measured; retried): {PREPARE_FAILURES}")
    if problems:
        print(f"app log ({APP_LOG.relative_to(harness.ROOT)}): {problems}")
        for example in examples:
            print(f"  ! {example}")
    else:
        print("app log: no warning, error or 5xx lines")

    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        json.dumps(
            {
                "command": " ".join(sys.argv),
                "backend": backend,
                "workers_option": args.workers,
                "app_processes": serving,
                "duration_s": args.duration,
                "wrk_threads": THREADS,
                "residents": args.residents,
                "cpus": os.cpu_count(),
                "load_average": {"start": load_start, "end": load_end},
                "app_log_problems": problems,
                "preparation_failures": PREPARE_FAILURES,
                "rows": [asdict(row) for row in rows],
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"results written to {ARTIFACT.relative_to(harness.ROOT)}")
    return 0


def _pid(server: harness.Server) -> int | None:
    return server.process.pid if server.process is not None else None


if __name__ == "__main__":
    sys.exit(main())
