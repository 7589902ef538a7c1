"""Fault injection with two app processes on the same servers (`python -m scripts.chaos`).

The harness starts Redis (AOF, `appendfsync everysec`, as `make run` has it) and the durable
mongo-java-server (H2 file, commits before it acknowledges); a fake WeChat runs in this
process and two `python -m server serve --workers 1` processes share both servers, the
database name, the Redis prefix and the quiz signing key. Residents sign in and set their
profiles, and practice quizzes are started through the API; their right answers are worked
out from the published bank read directly from MongoDB.

Then the storm: concurrent clients submit the prepared quizzes (and start some quizzes
live) to the two apps alternately, each request retried with the same body on a connection
error, a timeout or a 5xx until it gets its 2xx or a final 4xx, every request with a 15 s
client timeout (a request that exceeds it is a hang). A few readers read the leaderboards
and sign residents in meanwhile. During the storm Redis is SIGKILLed and started again
after 1–3 s (every other time without its data, so the boards must be rebuilt), and the
database server is SIGKILLed and started again, `--kills` times each.

After recovery (both apps answer /readyz 200) the invariants are checked:
  - every acknowledged (200) submit is stored, once: lost = 0, duplicated = 0;
  - a replay of every acknowledged submit returns the first 200's body unchanged;
  - the county boards (all time, this week) and the townships' participation equal what the
    stored attempts add up to (polled for up to 30 s while a rebuild finishes);
  - no 5xx but 503 (and every 503 carries Retry-After), no request past the client
    timeout, no valid submit or sign-in refused, both apps alive, no traceback in their logs.

The figures are printed; the exit status is 0 only if every invariant held (1 if one did
not, 2 if setting up failed). App logs are kept under .services/ (their paths are printed).
`tests/test_chaos.py` runs a short version of the same core in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from scripts import services as harness
from scripts.bench_residents import make_residents
from scripts.bench_wrk import app_log_problems
from tests.fake_wechat import FakeWeChat

CLIENT_TIMEOUT_SECONDS = 15.0  # a request exceeding this is a hang
READY_TIMEOUT_SECONDS = 90.0
BOARD_SETTLE_SECONDS = 30.0
Print = Callable[[str], None]


class SetupError(RuntimeError):
    """Something the run depends on failed to start or to prepare."""


@dataclass
class Config:
    seconds: float = 120.0  # length of the storm
    kills: int = 3  # SIGKILLs of Redis, and as many of the database server
    residents: int = 80
    clients: int = 24  # concurrent submitting clients
    readers: int = 3  # concurrent leaderboard readers (who also sign residents in)
    rate: float = 40.0  # quizzes taken up per second at most, over all clients
    live_share: float = 0.2  # share of the storm's quizzes started during the storm
    redis_down: tuple[float, float] = (1.0, 3.0)  # seconds between SIGKILL and start
    db_down: tuple[float, float] = (1.0, 3.0)
    wipe_redis: str = "alternate"  # "never", "always", or "alternate" (kill 2, 4, … wipe)
    settle_seconds: float = 90.0  # after the storm, how long a submit may still be retried
    label: str = "chaos"
    seed: int = 1
    keep_logs: bool = True  # keep the app and server logs under .services/ after the run


# ---------------------------------------------------------------- processes


@dataclass
class App:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Rig:
    """Everything started for one run; `close` stops exactly these processes."""

    config: Config
    root: Path
    logs: Path
    env: dict[str, str]
    mongo: harness.Server
    redis: harness.Server
    wechat: FakeWeChat | None = None
    apps: list[App] = field(default_factory=list)

    def stop_processes(self) -> None:
        for app in reversed(self.apps):
            stop_process(app.process)
        self.redis.stop()
        self.mongo.stop()

    def keep_server_logs(self) -> list[Path]:
        kept = []
        for server in (self.mongo, self.redis):
            if server.data_dir and (server.data_dir / "server.log").exists():
                target = self.logs / f"{server.name}.log"
                shutil.copyfile(server.data_dir / "server.log", target)
                kept.append(target)
        return kept


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def start_servers(config: Config) -> Rig:
    """Redis and the durable database server of this run's own (never adopted from
    MONGODB_URI / REDIS_URL: they are killed), with data under .services/."""
    run_id = f"{config.label}-{uuid.uuid4().hex[:8]}"
    root = harness.SERVICES / run_id
    logs = harness.SERVICES / f"{run_id}-logs"
    root.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    mongo = harness.start_mongo(root / "mongo", durable=True)
    try:
        redis = harness.start_redis(root / "redis")
    except BaseException:
        mongo.stop()
        raise
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "MONGODB_URI": mongo.url,
        "MONGODB_DB": f"chaos_{tag}",
        "REDIS_URL": redis.url,
        "REDIS_PREFIX": f"chaos-{tag}:",
        "APP_ENV": "development",
        "HOST": "127.0.0.1",
        "WECHAT_APPID": "wx-chaos",
        "WECHAT_SECRET": "chaos-secret-not-real",
        "QUIZ_SIGNING_KEY": secrets.token_urlsafe(32),
        "RATE_LIMIT_REQUESTS": "1000000000",  # all load comes from one address
        "LOGIN_RATE_LIMIT_REQUESTS": "1000000000",
    }
    return Rig(config, root, logs, env, mongo, redis)


def seed(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "seed-demo", "--no-assessments"],
        env=env,
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SetupError(
            f"seed-demo exited with {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}"
        )


def start_app(rig: Rig, name: str) -> App:
    port = harness.free_port()
    log = rig.logs / f"app-{name}.log"
    env = {**rig.env, "PORT": str(port)}
    if rig.wechat is not None:
        env["WECHAT_API_BASE"] = rig.wechat.url
    with open(log, "wb") as out:
        # A session of its own: Ctrl-C reaches us only, and we stop it by pid.
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--workers", "1"],
            env=env,
            cwd=harness.ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    app = App(name, f"http://127.0.0.1:{port}", process, log)
    rig.apps.append(app)
    return app


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def readyz(session: aiohttp.ClientSession, app: App) -> tuple[int | None, str]:
    try:
        async with session.get(
            app.url + "/readyz", timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_SECONDS)
        ) as response:
            return response.status, error_code(await response.text())
    except (aiohttp.ClientError, TimeoutError) as error:
        return None, type(error).__name__


async def wait_ready(session: aiohttp.ClientSession, apps: list[App], within: float) -> float:
    """Seconds until every app answers /readyz 200; SetupError past `within`."""
    began = time.monotonic()
    pending = list(apps)
    while pending:
        for app in list(pending):
            if app.process.poll() is not None:
                raise SetupError(
                    f"app {app.name} exited with {app.process.returncode}:\n{tail(app.log)}"
                )
            status, _ = await readyz(session, app)
            if status == 200:
                pending.remove(app)
        if pending:
            if time.monotonic() - began > within:
                names = ", ".join(a.name for a in pending)
                raise SetupError(f"/readyz of app {names} not 200 within {within:.0f} s")
            await asyncio.sleep(0.2)
    return time.monotonic() - began


# ---------------------------------------------------------------- recording


def error_code(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return "non-json"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    if isinstance(body, dict) and "status" in body:
        return str(body["status"])
    return ""


@dataclass
class Reply:
    status: int | None  # None: no response (timeout or connection error)
    outcome: str  # "200", "503 storage_unavailable", "timeout", "connection error: …"
    body: Any = None
    text: str = ""
    seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    slowest: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    no_retry_after: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # first body per bad outcome
    events: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def event(self, text: str) -> None:
        self.events.append(f"{self.now():7.1f}s {text}")

    def record(self, kind: str, reply: Reply) -> None:
        self.outcomes[kind][reply.outcome] += 1
        self.slowest[kind] = max(self.slowest[kind], reply.seconds)
        if reply.status == 503 and not reply.retry_after:
            self.no_retry_after[kind] += 1
        bad = reply.status is None or reply.status >= 400
        key = f"{kind} {reply.outcome}"
        if bad and key not in self.examples:
            self.examples[key] = f"at {self.now():.1f}s: {reply.text[:300]}"

    def total(self, kinds: tuple[str, ...] | None = None) -> Counter[str]:
        summed: Counter[str] = Counter()
        for kind, counts in self.outcomes.items():
            if kinds is None or kind in kinds:
                summed.update(counts)
        return summed


async def call(
    session: aiohttp.ClientSession,
    recorder: Recorder,
    kind: str,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
) -> Reply:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    began = time.monotonic()
    try:
        async with session.request(
            method,
            url,
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_SECONDS),
        ) as response:
            text = await response.text()
            status = response.status
            retry_after = response.headers.get("Retry-After")
        parsed: Any = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(text)
        outcome = str(status) if status < 300 else f"{status} {error_code(text)}"
        reply = Reply(status, outcome, parsed, text, time.monotonic() - began, retry_after)
    except TimeoutError:
        reply = Reply(None, "timeout", text=f"no answer within {CLIENT_TIMEOUT_SECONDS:g} s")
        reply.seconds = time.monotonic() - began
    except aiohttp.ClientError as error:
        reply = Reply(None, f"connection error: {type(error).__name__}", text=repr(error)[:300])
        reply.seconds = time.monotonic() - began
    recorder.record(kind, reply)
    return reply


def retryable(reply: Reply) -> bool:
    return reply.status is None or reply.status >= 500 or reply.status == 429


# ---------------------------------------------------------------- preparing


@dataclass
class Resident:
    name: str
    token: str
    user_id: str
    township: str


@dataclass
class Quiz:
    index: int
    resident: Resident
    quiz_id: str
    body: dict[str, Any]
    live: bool = False
    ack: Any = None  # the first 200 body
    ack_app: str = ""
    refused: str = ""  # a final 4xx
    unresolved: str = ""  # still failing when retries stopped
    tries: int = 0
    replay: Any = None
    replay_outcome: str = ""


Bank = dict[str, tuple[dict[str, str], frozenset[str]]]  # id → (text → key, answer keys)


async def read_bank(mongo_url: str, db_name: str) -> Bank:
    """The published questions straight from MongoDB: option texts and the right keys."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=10_000
    )
    try:
        bank: Bank = {}
        cursor = client[db_name]["questions"].find(
            {"published": {"$ne": None}}, {"published": 1}, batch_size=500
        )
        async for doc in cursor:
            snapshot = doc.get("published")
            if not snapshot:
                continue
            texts = {o["text"]: o["key"] for o in snapshot["options"]}
            bank[str(doc["_id"])] = (texts, frozenset(snapshot["answer"]))
        return bank
    finally:
        await client.close()


def answers(bank: Bank, quiz: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Mostly right answers (so the boards fill), some wrong, in the keys as shown."""
    chosen = []
    for question in quiz["questions"]:
        texts, right = bank[question["id"]]
        shown = [o["key"] for o in question["options"]]
        correct = sorted(o["key"] for o in question["options"] if texts[o["text"]] in right)
        if rng.random() < 0.75:
            picked = correct
        else:
            wrong = [k for k in shown if k not in correct]
            picked = [rng.choice(wrong)] if wrong else correct
        chosen.append({"question_id": question["id"], "choice": picked})
    return chosen


async def prepared_call(
    session: aiohttp.ClientSession,
    recorder: Recorder,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    expect: tuple[int, ...] = (200, 201),
) -> Any:
    for attempt in range(5):
        reply = await call(session, recorder, "prepare", method, url, token=token, body=body)
        if reply.status in expect:
            return reply.body
        if not retryable(reply):
            raise SetupError(f"{method} {url}: {reply.outcome} {reply.text[:300]}")
        await asyncio.sleep(0.5 * (attempt + 1))
    raise SetupError(f"{method} {url} failed 5 times: {reply.outcome} {reply.text[:300]}")


async def bounded(count: int, concurrency: int, job: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * count
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            results[index] = await job(index)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return results


async def prepare_residents(
    session: aiohttp.ClientSession, recorder: Recorder, apps: list[App], count: int, run: str
) -> list[Resident]:
    base = apps[0].url
    codes: list[str] = []
    page = 1
    while True:
        listing = await prepared_call(
            session, recorder, "GET", f"{base}/api/v1/townships?page_size=100&page={page}"
        )
        codes += [item["code"] for item in listing["items"]]
        if not listing["items"] or len(codes) >= listing["total"]:
            break
        page += 1
    if not codes:
        raise SetupError("GET /api/v1/townships returned no township")
    profiles = make_residents(count, codes, seed=7)

    async def one(index: int) -> Resident:
        app = apps[index % len(apps)]
        name = f"chaos-{run}-{index}"
        login = await prepared_call(
            session, recorder, "POST", f"{app.url}/api/v1/auth/wechat", body={"code": f"ok-{name}"}
        )
        token = str(login["token"])
        profile = profiles[index].profile
        await prepared_call(
            session, recorder, "PUT", f"{app.url}/api/v1/me", token=token, body=profile
        )
        return Resident(name, token, str(login["user"]["id"]), str(profile["township_code"]))

    return list(await bounded(count, 16, one))


async def start_quiz(
    session: aiohttp.ClientSession, recorder: Recorder, app: App, resident: Resident
) -> Reply:
    return await call(
        session,
        recorder,
        "start",
        "POST",
        f"{app.url}/api/v1/quizzes",
        token=resident.token,
        body={"mode": "practice"},
    )


def submit_url(app: App, quiz: Quiz) -> str:
    return f"{app.url}/api/v1/quizzes/{urllib.parse.quote(quiz.quiz_id, safe='')}/submit"


# ---------------------------------------------------------------- the storm


@dataclass
class Kill:
    server: str  # "redis" or "db"
    at: float  # seconds into the storm
    down: float  # seconds between SIGKILL and the start
    wipe: bool = False  # Redis started without its data
    killed_at: float = 0.0
    back_at: float = 0.0  # the server answers again
    error: str = ""


def schedule(config: Config, rng: random.Random) -> list[Kill]:
    """Redis, database, Redis, database, …: one kill per slot, 15% into it."""
    kills: list[Kill] = []
    slots = 2 * config.kills
    for n in range(slots):
        server = "redis" if n % 2 == 0 else "db"
        low, high = config.redis_down if server == "redis" else config.db_down
        redis_kill = n // 2 + 1
        wipe = server == "redis" and (
            config.wipe_redis == "always"
            or (config.wipe_redis == "alternate" and redis_kill % 2 == 0)
        )
        kills.append(
            Kill(server, config.seconds * (n + 0.15) / slots, rng.uniform(low, high), wipe)
        )
    return kills


async def killer(rig: Rig, kills: list[Kill], recorder: Recorder, storm_began: float) -> None:
    for kill in kills:
        await asyncio.sleep(max(0.0, storm_began + kill.at - time.monotonic()))
        server = rig.redis if kill.server == "redis" else rig.mongo
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        kill.killed_at = recorder.now()
        recorder.event(f"SIGKILL {kill.server} (pid {server.process.pid})")
        await asyncio.sleep(kill.down)
        if kill.wipe and server.data_dir is not None:
            for entry in server.data_dir.iterdir():
                if entry.name != "server.log":
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        try:
            await asyncio.to_thread(server.restart)
        except harness.HarnessError as error:
            kill.error = str(error)[:500]
            recorder.event(f"{kill.server} did not start again: {kill.error}")
            raise
        kill.back_at = recorder.now()
        recorder.event(
            f"{kill.server} started again{' without its data' if kill.wipe else ''} "
            f"(pid {server.process.pid}), {kill.back_at - kill.killed_at:.1f} s after the kill"
        )


class Pacer:
    """At most `rate` quizzes taken up per second over all clients."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + self.gap
        await asyncio.sleep(slot - now)


@dataclass
class Storm:
    rig: Rig
    session: aiohttp.ClientSession
    recorder: Recorder
    bank: Bank
    residents: list[Resident]
    pool: list[Quiz]
    rng: random.Random
    quizzes: list[Quiz] = field(default_factory=list)
    stop_at: float = 0.0  # no new quiz after this (monotonic)
    give_up_at: float = 0.0  # no more retries after this
    live_failures: Counter[str] = field(default_factory=Counter)

    async def take(self, client: int) -> Quiz | None:
        """A prepared quiz, or one started now (a share of them live, so quiz start is
        exercised through the outages too)."""
        live = self.rng.random() < self.rig.config.live_share or not self.pool
        if not live:
            quiz = self.pool.pop()
            self.quizzes.append(quiz)
            return quiz
        resident = self.rng.choice(self.residents)
        index = len(self.quizzes) + len(self.pool) + 1_000_000
        tries = 0
        while time.monotonic() < self.give_up_at:
            app = self.rig.apps[(client + tries) % len(self.rig.apps)]
            tries += 1
            reply = await start_quiz(self.session, self.recorder, app, resident)
            if reply.status == 201:
                body = {"answers": answers(self.bank, reply.body, random.Random(index))}
                quiz = Quiz(index, resident, reply.body["quiz_id"], body, live=True)
                self.quizzes.append(quiz)
                return quiz
            if not retryable(reply):
                self.live_failures[reply.outcome] += 1
                return None
            await asyncio.sleep(backoff(reply, tries))
        self.live_failures["gave up"] += 1
        return None

    async def submit(self, quiz: Quiz) -> None:
        """Submit until a 200 or a final 4xx, the same body each time, alternating apps."""
        while True:
            app = self.rig.apps[(quiz.index + quiz.tries) % len(self.rig.apps)]
            quiz.tries += 1
            reply = await call(
                self.session,
                self.recorder,
                "submit",
                "POST",
                submit_url(app, quiz),
                token=quiz.resident.token,
                body=quiz.body,
            )
            if reply.status == 200:
                quiz.ack, quiz.ack_app = reply.body, app.name
                return
            if not retryable(reply):
                quiz.refused = reply.outcome
                return
            if time.monotonic() > self.give_up_at:
                quiz.unresolved = reply.outcome
                return
            await asyncio.sleep(backoff(reply, quiz.tries))

    async def client(self, number: int, pacer: Pacer) -> None:
        while True:
            await pacer.wait()
            if time.monotonic() >= self.stop_at:
                return
            quiz = await self.take(number)
            if quiz is not None:
                await self.submit(quiz)

    async def reader(self, number: int, stop: asyncio.Event, logins: Counter[str]) -> None:
        rng = random.Random(number)
        count = 0
        while not stop.is_set():
            count += 1
            app = self.rig.apps[count % len(self.rig.apps)]
            resident = rng.choice(self.residents)
            pick = rng.random()
            if pick < 0.1:  # a resident signs in (again) during the storm
                reply = await call(
                    self.session,
                    self.recorder,
                    "sign-in",
                    "POST",
                    f"{app.url}/api/v1/auth/wechat",
                    body={"code": f"ok-{resident.name}"},
                )
                if reply.status == 200 and reply.body["user"]["id"] != resident.user_id:
                    logins["signed in as someone else"] += 1
            else:
                path = (
                    "/api/v1/leaderboards/townships?period=all"
                    if pick < 0.3
                    else "/api/v1/leaderboards?scope=county&period="
                    + ("all" if pick < 0.65 else "week")
                )
                await call(
                    self.session, self.recorder, "read", "GET", app.url + path, token=resident.token
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


def backoff(reply: Reply, tries: int) -> float:
    """Retry-After honoured up to 2 s (a short run), else 0.2 s growing to 2 s; jittered."""
    wait = min(2.0, 0.2 * 2 ** min(tries, 4))
    if reply.retry_after:
        with contextlib.suppress(ValueError):
            wait = min(2.0, float(reply.retry_after))
    return wait * random.uniform(0.5, 1.0)


async def monitor(
    session: aiohttp.ClientSession, apps: list[App], recorder: Recorder, stop: asyncio.Event
) -> None:
    """Each app's /readyz twice a second; changes are recorded as events."""
    last: dict[str, str] = {}
    while not stop.is_set():
        for app in apps:
            status, code = await readyz(session, app)
            state = f"{status} {code}".strip()
            if last.get(app.name) != state:
                recorder.event(f"app {app.name} /readyz {state}")
                last[app.name] = state
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


# ---------------------------------------------------------------- checking


@dataclass
class Report:
    config: Config
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def violate(self, text: str) -> None:
        self.violations.append(text)

    def format(self) -> str:
        f = self.figures
        lines = [
            f"== chaos: two app processes, {f.get('storm_s', 0):.0f} s storm, "
            f"{self.config.kills} kill(s) of each server ==",
        ]
        order = [
            "requests",
            "submit_requests",
            "quizzes",
            "acknowledged",
            "lost",
            "duplicated",
            "replays",
            "replays_differing",
            "stored_not_acknowledged",
            "refused_4xx",
            "unresolved",
            "503s",
            "503_without_retry_after",
            "other_5xx",
            "hangs",
            "connection_errors",
            "kills_redis",
            "kills_db",
            "board_rows",
            "board_mismatch",
            "participation_mismatch",
            "kills",
        ]
        for key in order:
            if key in f:
                lines.append(f"  {key:<26} {f[key]}")
        lines.append("  durations (s): " + json.dumps(f.get("durations", {})))
        lines.append("  slowest reply (s): " + json.dumps(f.get("slowest", {})))
        for kind, counts in f.get("outcomes", {}).items():
            lines.append(f"  {kind:<8} {dict(sorted(counts.items()))}")
        if self.events:
            lines.append("events:")
            lines += [f"  {e}" for e in self.events]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in self.notes]
        if self.logs:
            lines.append("logs: " + ", ".join(self.logs))
        if self.violations:
            lines.append(f"VIOLATIONS ({len(self.violations)}):")
            lines += [f"  ✗ {v}" for v in self.violations]
        else:
            lines.append("every invariant held ✓")
        return "\n".join(lines)


async def stored_attempts(rig: Rig) -> list[dict[str, Any]]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        rig.mongo.url, serverSelectionTimeoutMS=10_000
    )
    try:
        fields = {"_id": 1, "quiz_id": 1, "user_id": 1, "points": 1, "score": 1, "profile": 1}
        cursor = client[rig.env["MONGODB_DB"]]["attempts"].find({}, fields, batch_size=1000)
        return [doc async for doc in cursor]
    finally:
        await client.close()


def expected_attempt_id(rig: Rig, quiz_id: str) -> str | None:
    from scoring.quizzes import tickets

    try:
        return tickets.decode(quiz_id, rig.env["QUIZ_SIGNING_KEY"].encode()).attempt_id
    except tickets.InvalidTicket:
        return None


async def read_board(
    session: aiohttp.ClientSession, recorder: Recorder, app: App, token: str, period: str
) -> tuple[list[tuple[str, int]], int, str] | str:
    """(name, points) rows of a county board over every page, its total and period key."""
    rows: list[tuple[str, int]] = []
    page, total, key = 1, 0, ""
    while True:
        url = (
            f"{app.url}/api/v1/leaderboards?scope=county&period={period}&page_size=100&page={page}"
        )
        reply = await call(session, recorder, "check", "GET", url, token=token)
        if reply.status != 200:
            return f"GET {url}: {reply.outcome}"
        total, key = int(reply.body["total"]), str(reply.body["period_key"])
        rows += [(item["name"], int(item["points"])) for item in reply.body["items"]]
        if not reply.body["items"] or len(rows) >= total:
            return sorted(rows), total, key
        page += 1


def board_from(attempts: list[dict[str, Any]]) -> list[tuple[str, int]]:
    sums: Counter[str] = Counter()
    for doc in attempts:
        if doc.get("points"):
            sums[doc["user_id"]] += int(doc["points"])
    # The API shows a resident as 居民 and the last four characters of their id.
    return sorted((f"居民{user[-4:]}", points) for user, points in sums.items() if points)


def diff(expected: list[tuple[str, int]], got: list[tuple[str, int]]) -> str:
    missing = Counter(expected) - Counter(got)
    extra = Counter(got) - Counter(expected)
    return (
        f"{len(expected)} rows expected, {len(got)} served; missing "
        f"{sorted(missing.elements())[:8]}, unexpected {sorted(extra.elements())[:8]}"
    )


async def check_boards(
    rig: Rig,
    session: aiohttp.ClientSession,
    recorder: Recorder,
    report: Report,
    attempts: list[dict[str, Any]],
    token: str,
    week_ids: set[str],
) -> None:
    """The county boards and townships' participation against the stored attempts, polled
    until equal or BOARD_SETTLE_SECONDS (a rebuild may still be running)."""
    expected_all = board_from(attempts)
    week = [a for a in attempts if a["_id"] in week_ids]
    expected_week = board_from(week)
    participants: dict[str, set[str]] = defaultdict(set)
    for doc in attempts:
        township = (doc.get("profile") or {}).get("township_code")
        if township:
            participants[township].add(doc["user_id"])
    expected_part = {code: len(users) for code, users in participants.items()}
    began = time.monotonic()
    problems: list[str] = []
    while True:
        problems = []
        for n, app in enumerate(rig.apps):
            for period, expected in (("all", expected_all), ("week", expected_week)):
                got = await read_board(session, recorder, app, token, period)
                if isinstance(got, str):
                    problems.append(f"app {app.name} county/{period}: {got}")
                    continue
                rows, total, _ = got
                if rows != expected or total != len(expected):
                    problems.append(
                        f"app {app.name} county/{period} board (total {total}): "
                        f"{diff(expected, rows)}"
                    )
            url = f"{app.url}/api/v1/leaderboards/townships?period=all"
            reply = await call(session, recorder, "check", "GET", url, token=token)
            if reply.status != 200:
                problems.append(f"app {app.name} townships: {reply.outcome}")
            else:
                served = {i["code"]: int(i["participants"]) for i in reply.body["items"]}
                wrong = {
                    code: (expected_part.get(code, 0), served.get(code, 0))
                    for code in set(served) | set(expected_part)
                    if expected_part.get(code, 0) != served.get(code, 0)
                }
                if wrong:
                    problems.append(
                        f"app {app.name} township participation (expected, served): "
                        f"{dict(sorted(wrong.items())[:8])}"
                        + (f" and {len(wrong) - 8} more" if len(wrong) > 8 else "")
                    )
            if n == 0 and problems:
                break  # the first app is not there yet; poll again
        if not problems or time.monotonic() - began > BOARD_SETTLE_SECONDS:
            break
        await asyncio.sleep(1.0)
    report.figures["durations"]["boards_settled"] = round(time.monotonic() - began, 1)
    report.figures["board_mismatch"] = sum("board" in p for p in problems)
    report.figures["participation_mismatch"] = sum("participation" in p for p in problems)
    report.figures["board_rows"] = {"all": len(expected_all), "week": len(expected_week)}
    for problem in problems:
        report.violate(
            f"boards differ from the stored attempts after {BOARD_SETTLE_SECONDS:.0f} s: " + problem
        )


async def replay(storm: Storm, quiz: Quiz) -> None:
    """Submit an acknowledged quiz once more (to the other app than its first 200)."""
    apps = storm.rig.apps
    app = next((a for a in apps if a.name != quiz.ack_app), apps[0])
    for attempt in range(6):
        reply = await call(
            storm.session,
            storm.recorder,
            "replay",
            "POST",
            submit_url(app, quiz),
            token=quiz.resident.token,
            body=quiz.body,
        )
        quiz.replay_outcome = reply.outcome
        if reply.status == 200:
            quiz.replay = reply.body
            return
        if not retryable(reply):
            return
        await asyncio.sleep(0.5 * (attempt + 1))


def judge(rig: Rig, storm: Storm, attempts: list[dict[str, Any]], report: Report) -> None:
    """Stored exactly once, replays identical, status codes."""
    f = report.figures
    quizzes = storm.quizzes
    acked = [q for q in quizzes if q.ack is not None]
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_quiz: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in attempts:
        by_id[str(doc["_id"])].append(doc)
        by_quiz[str(doc.get("quiz_id"))].append(doc)
    lost, duplicated, differing, wrong_id = [], [], [], []
    for quiz in acked:
        stored = by_quiz.get(quiz.quiz_id, [])
        expected_id = expected_attempt_id(rig, quiz.quiz_id)
        if not stored:
            lost.append(quiz.quiz_id)
        elif len(stored) > 1:
            duplicated.append(quiz.quiz_id)
        elif expected_id is not None and stored[0]["_id"] != expected_id:
            wrong_id.append(quiz.quiz_id)
        if stored and (
            stored[0].get("score") != quiz.ack.get("score")
            or stored[0].get("points") != quiz.ack.get("points", stored[0].get("points"))
        ):
            differing.append(f"{quiz.quiz_id[:16]}… stored score/points differ from its 200")
        if quiz.replay is None:
            differing.append(f"{quiz.quiz_id[:16]}… replay answered {quiz.replay_outcome}")
        elif quiz.replay != quiz.ack:
            changed = sorted(
                k for k in set(quiz.ack) | set(quiz.replay) if quiz.ack.get(k) != quiz.replay.get(k)
            )
            differing.append(f"{quiz.quiz_id[:16]}… replay differs in {changed}")
    duplicate_ids = [i for i, docs in by_id.items() if len(docs) > 1]
    duplicate_quizzes = [q for q, docs in by_quiz.items() if len(docs) > 1]
    known = {q.quiz_id for q in quizzes}
    stored_unacked = [q.quiz_id for q in quizzes if q.ack is None and q.quiz_id in by_quiz]
    strangers = [q for q in by_quiz if q not in known]
    refused = Counter(q.refused for q in quizzes if q.refused)
    unresolved = Counter(q.unresolved for q in quizzes if q.unresolved)

    outcomes = storm.recorder.total()
    storm_kinds = ("submit", "start", "read", "sign-in", "replay")
    in_storm = storm.recorder.total(storm_kinds)
    n503 = sum(n for o, n in outcomes.items() if o.startswith("503"))
    other_5xx = {o: n for o, n in outcomes.items() if o[:1] == "5" and not o.startswith("503")}
    hangs = outcomes.get("timeout", 0)
    connection = sum(n for o, n in outcomes.items() if o.startswith("connection error"))
    f.update(
        requests=sum(in_storm.values()),
        submit_requests=sum(storm.recorder.outcomes["submit"].values()),
        quizzes=f"{len(quizzes)} ({sum(q.live for q in quizzes)} started during the storm)",
        acknowledged=len(acked),
        lost=len(lost),
        duplicated=len(set(duplicated) | set(duplicate_quizzes)) + len(duplicate_ids),
        replays=sum(q.replay is not None for q in acked),
        replays_differing=len(differing),
        stored_not_acknowledged=len(stored_unacked),
        refused_4xx=dict(refused),
        unresolved=dict(unresolved),
        **{"503s": n503},
        **{"503_without_retry_after": dict(storm.recorder.no_retry_after)},
        other_5xx=other_5xx,
        hangs=hangs,
        connection_errors=connection,
        outcomes={k: dict(v) for k, v in storm.recorder.outcomes.items()},
        slowest={k: round(v, 2) for k, v in storm.recorder.slowest.items()},
    )
    if lost:
        report.violate(f"lost: {len(lost)} acknowledged submits not stored, e.g. {lost[:3]}")
    if duplicated or duplicate_ids or duplicate_quizzes:
        report.violate(
            f"duplicated: {len(duplicated)} acknowledged quizzes stored more than once; "
            f"attempt ids stored twice {duplicate_ids[:3]}, quiz ids stored twice "
            f"{duplicate_quizzes[:3]}"
        )
    if wrong_id:
        report.violate(f"{len(wrong_id)} attempts not stored under their ticket's attempt id")
    if differing:
        report.violate(f"replays differing: {len(differing)}, e.g. {differing[:3]}")
    if strangers:
        report.violate(f"{len(strangers)} stored attempts of quizzes nobody submitted")
    if refused:
        report.violate(f"valid submits finally refused with a 4xx: {dict(refused)}")
    if unresolved:
        report.violate(
            f"submits still failing {storm.rig.config.settle_seconds:.0f} s after the storm: "
            f"{dict(unresolved)}"
        )
    if storm.live_failures:
        report.violate(f"quiz starts that never got their 201: {dict(storm.live_failures)}")
    if other_5xx:
        report.violate(f"5xx other than 503: {other_5xx}")
    if storm.recorder.no_retry_after:
        report.violate(f"503 without Retry-After: {dict(storm.recorder.no_retry_after)}")
    if hangs:
        report.violate(
            f"hangs: {hangs} requests got no answer within {CLIENT_TIMEOUT_SECONDS:g} s "
            f"(slowest per kind {dict(f['slowest'])})"
        )
    refused_logins = {
        o: n
        for o, n in storm.recorder.outcomes["sign-in"].items()
        if o[:1] == "4" or (o[:1] == "5" and not o.startswith("503"))
    }
    if refused_logins:
        report.violate(f"sign-ins refused: {refused_logins}")
    refused_reads = {o: n for o, n in storm.recorder.outcomes["read"].items() if o[:1] == "4"}
    if refused_reads:
        report.violate(f"leaderboard reads refused with a 4xx: {refused_reads}")
    for key, example in sorted(storm.recorder.examples.items()):
        if not key.startswith("check"):
            report.notes.append(f"first {key}: {example}")


def log_problems(rig: Rig, report: Report) -> None:
    """The apps' logs: 5xx, warnings and errors are noted; an exception logged while serving
    a request (a record with a request id), an "unhandled" record, a 500, or a traceback
    printed outside the JSON log is a violation. A background loop logging its failure
    while a server is away (it retries) is only noted."""
    for app in rig.apps:
        problems, examples = app_log_problems(app.log, shown=6)
        if problems:
            report.notes.append(f"app {app.name} log: {problems}")
            report.notes += [f"  app {app.name}: {e[:300]}" for e in examples]
        try:
            lines = app.log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        bad: list[str] = []
        background: Counter[str] = Counter()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                if "Traceback" in line or "unhandled" in line.lower():
                    bad.append(line[:300])
                continue
            level = str(record.get("level", "")).lower()
            message = str(record.get("message", ""))
            exception = str(record.get("exception") or "")
            if record.get("status") == 500 or "unhandled" in message.lower():
                bad.append(line[:400])
            elif exception and level in ("error", "critical"):
                last = (exception.strip().splitlines() or [""])[-1][:120]
                if record.get("request_id"):
                    bad.append(f"{record.get('logger')}: {message}: {last}")
                else:
                    background[f"{record.get('logger')}: {message}: {last}"] += 1
        if background:
            # Storage away is a warning line in the background loops (log_background_failure):
            # a traceback there is a defect.
            report.violate(
                f"app {app.name} background errors with tracebacks (not requests): "
                f"{dict(background)}"
            )
        if bad:
            report.violate(
                f"app {app.name} log: {len(bad)} unhandled error(s) or 500(s) while serving "
                f"requests, e.g. {bad[:2]} ({app.log})"
            )


# ---------------------------------------------------------------- the run


async def exercise(rig: Rig, report: Report, say: Print) -> None:
    config = rig.config
    rng = random.Random(config.seed)
    recorder = Recorder()
    durations: dict[str, float] = {}
    report.figures["durations"] = durations
    rig.wechat = FakeWeChat()
    await rig.wechat.start()
    connector = aiohttp.TCPConnector(limit=config.clients + config.readers + 32)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.monotonic()
        apps = [start_app(rig, "a"), start_app(rig, "b")]
        await wait_ready(session, apps, READY_TIMEOUT_SECONDS)
        durations["apps_ready"] = round(time.monotonic() - began, 1)
        say(
            f"apps {apps[0].url} (pid {apps[0].process.pid}), {apps[1].url} "
            f"(pid {apps[1].process.pid}) ready in {durations['apps_ready']} s"
        )

        began = time.monotonic()
        run = uuid.uuid4().hex[:6]
        residents = await prepare_residents(session, recorder, apps, config.residents, run)
        bank = await read_bank(rig.mongo.url, rig.env["MONGODB_DB"])
        prepared = max(
            config.clients, round(config.rate * config.seconds * (1 - config.live_share) * 1.1)
        )

        async def one(index: int) -> Quiz:
            resident = residents[index % len(residents)]
            app = apps[index % len(apps)]
            quiz = await prepared_call(
                session,
                recorder,
                "POST",
                f"{app.url}/api/v1/quizzes",
                token=resident.token,
                body={"mode": "practice"},
                expect=(201,),
            )
            body = {"answers": answers(bank, quiz, random.Random(index))}
            return Quiz(index, resident, quiz["quiz_id"], body)

        pool = list(await bounded(prepared, 16, one))
        pool.reverse()  # popped from the end: in order
        durations["prepare"] = round(time.monotonic() - began, 1)
        say(
            f"{len(residents)} residents signed in with profiles, {len(pool)} quizzes prepared "
            f"({len(bank)} published questions read from MongoDB) in {durations['prepare']} s"
        )

        storm = Storm(rig, session, recorder, bank, residents, pool, rng)
        kills = schedule(config, rng)
        recorder.started = time.monotonic()
        storm.stop_at = recorder.started + config.seconds
        storm.give_up_at = storm.stop_at + config.settle_seconds
        stop_readers = asyncio.Event()
        logins: Counter[str] = Counter()
        pacer = Pacer(config.rate)
        say(
            f"storm: {config.clients} clients, {config.readers} readers, ≤{config.rate:g} "
            f"quizzes/s for {config.seconds:g} s; kills at "
            + ", ".join(f"{k.server}@{k.at:.0f}s" for k in kills)
        )
        readers = [
            asyncio.create_task(storm.reader(n, stop_readers, logins))
            for n in range(config.readers)
        ]
        watcher = asyncio.create_task(monitor(session, apps, recorder, stop_readers))
        kill_task = asyncio.create_task(killer(rig, kills, recorder, recorder.started))
        clients = [asyncio.create_task(storm.client(n, pacer)) for n in range(config.clients)]
        try:
            await asyncio.gather(*clients)
            durations["storm_and_retries"] = round(recorder.now(), 1)
            await kill_task
        finally:
            stop_readers.set()
            for task in [*clients, kill_task]:
                task.cancel()
            await asyncio.gather(*readers, watcher, *clients, kill_task, return_exceptions=True)
        report.figures["storm_s"] = config.seconds
        report.figures["kills_redis"] = sum(1 for k in kills if k.server == "redis" and k.killed_at)
        report.figures["kills_db"] = sum(1 for k in kills if k.server == "db" and k.killed_at)
        report.figures["kills"] = [
            {
                "server": k.server,
                "at": round(k.killed_at, 1),
                "down": round(k.down, 1),
                "back_after": round(k.back_at - k.killed_at, 1),
                "without_data": k.wipe,
            }
            for k in kills
        ]
        if logins:
            report.violate(f"sign-ins: {dict(logins)}")

        began = time.monotonic()
        try:
            await wait_ready(session, apps, READY_TIMEOUT_SECONDS)
        except SetupError as error:
            report.violate(f"not recovered: {error}")
        durations["recovery"] = round(time.monotonic() - began, 1)
        recorder.event("both apps ready after the storm")

        began = time.monotonic()
        acked = [q for q in storm.quizzes if q.ack is not None]

        async def replay_one(index: int) -> None:
            await replay(storm, acked[index])

        await bounded(len(acked), 16, replay_one)
        durations["replays"] = round(time.monotonic() - began, 1)

        began = time.monotonic()
        attempts = await stored_attempts(rig)
        # This week's attempts: those whose `periods.week` is the board's current key.
        week_key = await current_week(session, recorder, apps[0], residents[0].token)
        week_ids = await week_attempt_ids(rig, week_key)
        judge(rig, storm, attempts, report)
        await check_boards(rig, session, recorder, report, attempts, residents[0].token, week_ids)
        durations["checks"] = round(time.monotonic() - began, 1)
        for app in apps:
            if app.process.poll() is not None:
                report.violate(f"app {app.name} exited with {app.process.returncode}")
        report.events = recorder.events


async def current_week(
    session: aiohttp.ClientSession, recorder: Recorder, app: App, token: str
) -> str:
    url = f"{app.url}/api/v1/leaderboards?scope=county&period=week&page_size=1"
    reply = await call(session, recorder, "check", "GET", url, token=token)
    return str(reply.body["period_key"]) if reply.status == 200 else ""


async def week_attempt_ids(rig: Rig, week_key: str) -> set[str]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        rig.mongo.url, serverSelectionTimeoutMS=10_000
    )
    try:
        cursor = client[rig.env["MONGODB_DB"]]["attempts"].find(
            {"periods.week": week_key}, {"_id": 1}, batch_size=1000
        )
        return {str(doc["_id"]) async for doc in cursor}
    finally:
        await client.close()


def run(config: Config, say: Print = print) -> Report:
    """One whole run: start, seed, prepare, storm with kills, recover, check; every process
    started here is stopped before returning (also on an error or Ctrl-C)."""
    report = Report(config)
    began = time.monotonic()
    rig = start_servers(config)
    report.figures["durations"] = {}
    try:
        say(
            f"chaos: durable MongoDB {rig.mongo.url} (pid {rig.mongo.process and rig.mongo.process.pid}), "
            f"Redis {rig.redis.url} (AOF everysec), database {rig.env['MONGODB_DB']}"
        )
        seeded = time.monotonic()
        seed(rig.env)
        say(f"seeded the demo county in {time.monotonic() - seeded:.1f} s")

        async def main() -> None:
            try:
                await exercise(rig, report, say)
            finally:
                if rig.wechat is not None:
                    await rig.wechat.close()

        asyncio.run(main())
        log_problems(rig, report)
    finally:
        rig.stop_processes()
        report.logs = [str(a.log) for a in rig.apps] + [str(p) for p in rig.keep_server_logs()]
        shutil.rmtree(rig.root, ignore_errors=True)
        if not config.keep_logs and not report.violations:
            shutil.rmtree(rig.logs, ignore_errors=True)
            report.logs = []
    report.figures.setdefault("durations", {})["total"] = round(time.monotonic() - began, 1)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="length of the storm")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of each server")
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--rate", type=float, default=40, help="quizzes per second at most")
    parser.add_argument("--residents", type=int, default=80)
    parser.add_argument(
        "--wipe-redis", choices=["never", "always", "alternate"], default="alternate"
    )
    args = parser.parse_args()
    if args.seconds < 10 or args.kills < 1 or args.clients < 1 or args.rate <= 0:
        parser.error("--seconds ≥ 10, --kills ≥ 1, --clients ≥ 1 and --rate > 0 required")
    config = Config(
        seconds=args.seconds,
        kills=args.kills,
        clients=args.clients,
        rate=args.rate,
        residents=args.residents,
        wipe_redis=args.wipe_redis,
    )
    harness.stop_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = run(config)
    except (SetupError, harness.HarnessError) as error:
        print(f"chaos: setting up failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chaos: interrupted; every process started here was stopped", file=sys.stderr)
        return 130
    print(report.format())
    artifact = harness.ROOT / ".artifacts" / "chaos.json"
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "command": " ".join(sys.argv),
                "figures": report.figures,
                "violations": report.violations,
                "events": report.events,
                "notes": report.notes,
                "logs": report.logs,
            },
            ensure_ascii=False,
            indent=2,
            default=str,
        )
    )
    print(f"results written to {artifact.relative_to(harness.ROOT)}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
