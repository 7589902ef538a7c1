"""`python -m server serve --workers 2` as a real master and worker processes against the test
servers: both workers serve, a killed worker is replaced while requests go on, and SIGTERM
lets an in-flight request finish before the master exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import MongoClient
from redis import Redis

from scripts import services as harness
from server.kernel.settings import REPO_ROOT, Settings
from tests.conftest import make_settings

WORKERS = 2
READY_WITHIN = 40.0


@dataclass
class Master:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def events(self, message: str) -> list[dict[str, Any]]:
        """The master's and workers' JSON log lines with this message."""
        found = []
        for line in self.log.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                if isinstance(entry, dict) and entry.get("message") == message:
                    found.append(entry)
        return found

    def serving(self) -> set[int]:
        """Pids of the master's children that have said they serve."""
        said = {entry["pid"] for entry in self.events("worker serving")}
        return said & children(self.process.pid)

    def describe(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def children(pid: int) -> set[int]:
    """The live children of a process, from /proc (no psutil)."""
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError):
                found |= {
                    int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                }
    return found


def server_env(settings: Settings, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "WEB_CONCURRENCY"}
    env.update(
        {
            "APP_ENV": settings.app_env,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "MONGODB_URI": settings.mongodb_uri,
            "MONGODB_DB": settings.mongodb_db,
            "REDIS_URL": settings.redis_url,
            "REDIS_PREFIX": settings.redis_prefix,
            "WECHAT_APPID": settings.wechat_appid,
            "WECHAT_SECRET": settings.wechat_secret.get_secret_value(),
            "WECHAT_API_BASE": settings.wechat_api_base,
            "QUIZ_SIGNING_KEY": settings.quiz_signing_key.get_secret_value(),
            "RATE_LIMIT_REQUESTS": str(settings.rate_limit_requests),
            "LOGIN_RATE_LIMIT_REQUESTS": str(settings.login_rate_limit_requests),
        }
    )
    return env


def wait_until(check: Callable[[], bool], within: float, what: str, master: Master) -> None:
    """Poll (blocking: the servers are other processes) until `check` holds."""
    deadline = time.monotonic() + within
    while not check():
        if master.process.poll() is not None and what != "master exit":
            pytest.fail(f"master exited ({master.process.returncode}):\n{master.describe()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {within:.0f}s:\n{master.describe()}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_master(services: harness.Services, log: Path) -> Iterator[Master]:
    """`serve --workers 2` on a free port with a database and key prefix of its own (dropped
    afterwards), once both workers say they serve; stopped (SIGTERM) afterwards."""
    settings = make_settings(services, app_env="development")
    port = harness.free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "server", "serve", "--workers", str(WORKERS)],
            env=server_env(settings, port),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Master(process, port, log)
    try:
        wait_until(lambda: len(running.serving()) == WORKERS, READY_WITHIN, "workers up", running)
        yield running
    finally:
        workers = children(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in workers:  # only if the master failed to stop them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        drop_data(settings)


def drop_data(settings: Settings) -> None:
    mongo: MongoClient[dict[str, Any]]
    with MongoClient(settings.mongodb_uri) as mongo:
        mongo.drop_database(settings.mongodb_db)
    redis = Redis.from_url(settings.redis_url)
    try:
        keys = list(redis.scan_iter(match=settings.redis_prefix + "*", count=1000))
        if keys:
            redis.delete(*keys)
    finally:
        redis.close()


class Masters:
    """Starting a master takes seconds (each worker imports the app and loads jieba), so the
    tests share one; a test that stopped it gets a new one."""

    def __init__(self, services: harness.Services, root: Path) -> None:
        self.services = services
        self.root = root
        self.stack = contextlib.ExitStack()
        self.current: Master | None = None

    def get(self) -> Master:
        if self.current is None or self.current.process.poll() is not None:
            log = self.root / f"server-{len(list(self.root.iterdir()))}.log"
            self.current = self.stack.enter_context(running_master(self.services, log))
        return self.current


@pytest.fixture(scope="module")
def masters(
    services: harness.Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Masters]:
    pool = Masters(services, tmp_path_factory.mktemp("workers"))
    with pool.stack:
        yield pool


# ---------------------------------------------------------------- raw HTTP


async def get_healthz(port: int) -> tuple[int, asyncio.StreamWriter]:
    """GET /healthz on a new connection, left open; the status and the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    status = await read_response(reader)
    return status, writer


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=15)
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    await asyncio.wait_for(reader.readexactly(length), timeout=15)
    return int(lines[0].split()[1])


def serving_pid(writer: asyncio.StreamWriter, port: int, candidates: set[int]) -> int | None:
    """Which process holds the server side of this (accepted, answered) connection: its socket
    inode from /proc/net/tcp, then the process with a descriptor on that inode."""
    client_port = writer.get_extra_info("sockname")[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in candidates:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(FileNotFoundError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    return None


async def healthz_once_retried(port: int) -> int:
    """A request on a new connection; a failed connection is retried once."""
    for attempt in range(2):
        try:
            status, writer = await get_healthz(port)
            writer.close()
            return status
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            if attempt == 1:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- tests


async def test_two_workers_both_serve(masters: Masters) -> None:
    master = masters.get()
    workers = master.serving()
    seen: set[int] = set()
    open_connections = []
    try:
        # Each new connection is accepted by whichever worker takes it first; keep them open
        # so one worker cannot answer them all one after another.
        for _ in range(60):
            status, writer = await get_healthz(master.port)
            assert status == 200
            open_connections.append(writer)
            pid = serving_pid(writer, master.port, workers)
            assert pid is not None
            seen.add(pid)
            if seen == workers:
                break
            await asyncio.sleep(0.01)
    finally:
        for writer in open_connections:
            writer.close()
    assert seen == workers, f"served by {seen}, workers {workers}"


async def test_a_killed_worker_is_replaced_while_requests_go_on(masters: Masters) -> None:
    master = masters.get()
    before = master.serving()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    replaced_at = None
    started = time.monotonic()
    requests = 0
    while time.monotonic() - started < 20:
        assert await healthz_once_retried(master.port) == 200
        requests += 1
        now_serving = master.serving()
        if len(now_serving) == WORKERS and victim not in now_serving:
            replaced_at = time.monotonic() - started
            break
        await asyncio.sleep(0.02)
    assert replaced_at is not None, f"no replacement worker:\n{master.describe()}"
    assert replaced_at < 15
    assert requests > 10
    (exited,) = master.events("worker exited unexpectedly; restarting")
    assert exited["pid"] == victim and exited["exit"] == "SIGKILL"
    assert master.process.poll() is None


async def test_sigterm_drains_an_in_flight_request_then_exits_zero(masters: Masters) -> None:
    master = masters.get()
    body = orjson.dumps({"openid": "drain-test"})
    reader, writer = await asyncio.open_connection("127.0.0.1", master.port)
    writer.write(
        b"POST /api/v1/auth/dev HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    await writer.drain()
    await asyncio.sleep(0.5)  # the worker has the headers and waits in the handler for the body

    master.process.send_signal(signal.SIGTERM)
    wait_until(
        lambda: len(master.events("worker stopping; draining in-flight requests")) == WORKERS,
        10,
        "workers draining",
        master,
    )
    await asyncio.sleep(0.5)
    assert master.process.poll() is None  # still waiting for the request

    writer.write(body[5:])
    await writer.drain()
    assert await read_response(reader) == 200
    writer.close()

    wait_until(lambda: master.process.poll() is not None, 15, "master exit", master)
    assert master.process.returncode == 0, master.describe()
    assert len(master.events("worker stopped")) == WORKERS
    assert {e["exit"] for e in master.events("worker exited")} == {"code 0"}
    assert not master.events("worker did not stop in time; killed")
