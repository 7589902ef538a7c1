"""`python -m server serve --workers N`: one process, or a master and N worker processes.

With one worker the app runs in this process, as it always has (no master). With more, a small master
binds the listening socket once (SO_REUSEADDR; no race and no "port in use" between workers)
and starts N workers as fresh interpreters (`python -m server.workers FD`) that serve the
app on that inherited socket. The master holds no client of any kind: each worker creates
the app, and with it its own MongoDB and Redis clients, after it starts.

Why fresh interpreters and not `fork()`: PyMongo clients must not cross a fork, and modules
compute per-process identities at import (the item-statistics fold's lease owner is the pid
and a random suffix, taken at import); a forked copy of a master that had imported the app
would share them. A new interpreter costs ~2 s of imports per (re)start, which is fine.

Why one shared accepting socket and not SO_REUSEPORT (one socket per worker): under
SO_REUSEPORT the kernel assigns each connection to a socket by a hash of its addresses,
whatever that worker is doing; a worker stuck on a slow request still gets its share of
new connections, and the connections queued on a worker's socket are reset when that
worker dies or stops listening to drain. With one socket, only a worker that is waiting in
its event loop accepts, the queue outlives any one worker (a crashed worker loses only the
connections it had accepted), and a draining worker simply stops taking new ones while the
others go on. Measured with wrk on GET /healthz (2 cores, 64 keep-alive connections) the
two were alike within a noisy machine's spread, so the failure cases decided.

The master restarts a worker that exits (after a backoff that grows while workers die
young, so a crash loop does not spin), and on SIGTERM or SIGINT sends SIGTERM to every
worker, waits for them to drain their in-flight requests (a worker stops accepting and
lets running requests finish, bodies still arriving included, for up to SHUTDOWN_TIMEOUT,
then closes; see `_Drain`), kills any worker still alive
after KILL_AFTER, and exits (0 if every worker stopped by itself). Workers ignore SIGINT
(a Ctrl-C reaches the whole process group; the master coordinates) and stop by themselves
if the master disappears.

All state the workers share lives in MongoDB or Redis; per-process caches are refreshed from
there in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from server.app import create_app
from server.kernel.keys import SETTINGS
from server.kernel.logs import configure_logging, protocol_log
from server.kernel.settings import Settings

# Named, not __name__: a worker runs this module as __main__.
log = logging.getLogger("server.workers")

# How long a stopping process waits for in-flight requests before cancelling them.
SHUTDOWN_TIMEOUT = 30.0
# The master's deadline for a worker to exit after SIGTERM: the drain, then the app's own
# cleanup (background loops get up to 10 s to stop), then SIGKILL.
KILL_AFTER = SHUTDOWN_TIMEOUT + 15.0
BACKLOG = 1024
# The HTTP parser's bounds (aiohttp's defaults, fixed here so an upgrade can't loosen them):
# a request line (path and query) or a header line over 8190 bytes, or more than 128
# headers, is refused with 400 and the connection closed. A body still arriving after its
# response (a refused upload) is read and dropped for at most LINGERING_SECONDS.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128
LINGERING_SECONDS = 5.0
# Restart backoff: the first restart comes after BACKOFF_FIRST, doubling (up to BACKOFF_MAX)
# while workers keep dying within STABLE_AFTER of their start.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0
PARENT_CHECK_SECONDS = 1.0

_MASTER_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


# ---------------------------------------------------------------- how many workers


def default_count() -> int:
    """WEB_CONCURRENCY if set, else the CPUs this process may use (see `usable_cpus`)."""
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(f"WEB_CONCURRENCY must be a positive integer, not {configured!r}")
        return int(configured)
    return usable_cpus()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not all the machine's), capped by a
    cgroup v2 CPU quota (`docker run --cpus`, a Kubernetes CPU limit): os.cpu_count() sees
    neither. A cgroup v1 quota is not read; set WEB_CONCURRENCY there."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(count, quota) if quota else count)


def _cgroup_cpu_quota(path: Path = _CGROUP_CPU_MAX) -> int | None:
    try:
        fields = path.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or not fields[0].isdigit() or not fields[1].isdigit():
        return None  # "max <period>": no quota
    return max(1, math.ceil(int(fields[0]) / int(fields[1])))


# ---------------------------------------------------------------- entry point


def serve(settings: Settings, workers: int) -> int:
    """Serve until stopped; the exit status."""
    if workers <= 1:  # in this process, no master; SIGTERM or Ctrl-C drains and stops
        asyncio.run(
            _serve(
                create_app(settings),
                lambda runner: web.TCPSite(runner, settings.host, settings.port, backlog=BACKLOG),
                stop_on=(signal.SIGTERM, signal.SIGINT),
                role="server",
            )
        )
        return 0
    return Master(listen(settings.host, settings.port), workers).run()


def listen(host: str, port: int) -> socket.socket:
    """The one listening socket of all workers."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    # create_server sets SO_REUSEADDR (a restart binds while old connections are in TIME_WAIT).
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


# ---------------------------------------------------------------- master


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive early deaths
    restart_at: float | None = None


@dataclass
class Master:
    sock: socket.socket
    count: int
    slots: list[_Slot] = field(default_factory=list)

    def run(self) -> int:
        # Signals are taken synchronously (sigtimedwait); each worker unblocks them first thing.
        signal.pthread_sigmask(signal.SIG_BLOCK, _MASTER_SIGNALS)
        address = self.sock.getsockname()
        log.info(
            "master started",
            extra={
                "pid": os.getpid(),
                "workers": self.count,
                "address": f"{address[0]}:{address[1]}",
            },
        )
        self.slots = [_Slot(index) for index in range(self.count)]
        try:
            for slot in self.slots:
                self._start(slot)
            while True:
                received = signal.sigtimedwait(_MASTER_SIGNALS, 0.5)
                self._reap()
                if received is not None and received.si_signo != signal.SIGCHLD:
                    return self._stop(signal.Signals(received.si_signo).name)
                self._restart_due()
        finally:
            # Only reached with workers alive if the master itself failed: leave no orphans.
            for process in self._alive():
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
            self.sock.close()

    def _start(self, slot: _Slot) -> None:
        fd = self.sock.fileno()
        slot.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "server.workers", str(fd)], pass_fds=(fd,)
        )
        slot.started_at = time.monotonic()
        slot.restart_at = None
        log.info("worker started", extra={"pid": slot.process.pid, "worker": slot.index})

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None or slot.process.poll() is None:
                continue
            lived = now - slot.started_at
            slot.failures = 0 if lived >= STABLE_AFTER else slot.failures + 1
            delay = 0.0 if slot.failures == 0 else BACKOFF_FIRST * 2 ** (slot.failures - 1)
            delay = min(BACKOFF_MAX, delay)
            log.warning(
                "worker exited unexpectedly; restarting",
                extra={
                    "pid": slot.process.pid,
                    "worker": slot.index,
                    "exit": _describe(slot.process.returncode),
                    "lived_seconds": round(lived, 1),
                    "restart_in_seconds": delay,
                },
            )
            slot.process = None
            slot.restart_at = now + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None and slot.restart_at is not None and slot.restart_at <= now:
                self._start(slot)

    def _alive(self) -> list[subprocess.Popen[bytes]]:
        return [s.process for s in self.slots if s.process is not None and s.process.poll() is None]

    def _stop(self, reason: str) -> int:
        log.info("master stopping; workers drain in-flight requests", extra={"signal": reason})
        for process in self._alive():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        # The workers hold the socket while they drain; once the last one has closed it, new
        # connections are refused rather than left waiting.
        self.sock.close()
        deadline = time.monotonic() + KILL_AFTER
        while (alive := self._alive()) and time.monotonic() < deadline:
            received = signal.sigtimedwait(_MASTER_SIGNALS, 0.2)
            if received is not None and received.si_signo != signal.SIGCHLD:
                log.info("already stopping; waiting for the workers to drain")
        for process in alive:
            log.error("worker did not stop in time; killed", extra={"pid": process.pid})
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
        for slot in self.slots:
            if slot.process is not None:
                log.info(
                    "worker exited",
                    extra={"pid": slot.process.pid, "exit": _describe(slot.process.returncode)},
                )
                slot.process = None
        log.info("master stopped", extra={"pid": os.getpid()})
        return 1 if alive else 0


def _describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return signal.Signals(-returncode).name
    return f"code {returncode}"


# ---------------------------------------------------------------- worker


def worker_main(fd: int) -> int:
    """A worker: serve the app on the inherited listening socket until SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _MASTER_SIGNALS)  # blocked in the master
    configure_logging()
    master = os.getppid()
    sock = socket.socket(fileno=fd)
    try:
        app = create_app(Settings())
        asyncio.run(
            _serve(
                app,
                lambda runner: web.SockSite(runner, sock, backlog=BACKLOG),
                stop_on=(signal.SIGTERM,),
                role="worker",
                master=master,
            )
        )
    except Exception:
        log.exception("worker failed", extra={"pid": os.getpid()})
        return 1
    return 0


async def _serve(
    app: web.Application,
    site: Callable[[web.AppRunner], web.BaseSite],
    *,
    stop_on: tuple[signal.Signals, ...],
    role: str,
    master: int | None = None,
) -> None:
    """Serve until one of `stop_on` arrives (or the master is gone), then drain and stop."""
    stop = asyncio.Event()
    for signum in stop_on:
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    drain = _Drain(app)
    runner = make_runner(app, app[SETTINGS])
    await runner.setup()  # opens the clients, loads the caches, starts the background loops
    try:
        await site(runner).start()
        log.info(f"{role} serving", extra={"pid": os.getpid()})
        if master is None:
            await stop.wait()
        else:
            await _stop_without(master, stop)  # returns once `stop` is set
        log.info(f"{role} stopping; draining in-flight requests", extra={"pid": os.getpid()})
        await drain.run(runner)
    finally:
        await runner.cleanup()  # closes idle connections, cancels what is left, closes clients
    log.info(f"{role} stopped", extra={"pid": os.getpid()})


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The app's runner with the server's slow-client and header bounds. Slow bodies are
    bounded by each route's deadline (`server.kernel.http.endpoint`)."""
    return web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=settings.keepalive_timeout_seconds,
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
        lingering_time=LINGERING_SECONDS,
        logger=protocol_log(),
    )


class _Drain:
    """Stop accepting, then let the requests in flight finish, bodies included.

    aiohttp's own shutdown (runner.cleanup) marks every connection closing first, and from
    then on a connection ignores the bytes it receives (aio-libs/aiohttp#2298): a request
    whose body is still arriving would wait, unanswerable, until the shutdown timeout and
    then be cancelled. So cleanup is called only once no handler runs (or SHUTDOWN_TIMEOUT
    has passed); meanwhile every response closes its connection, so that keep-alive clients
    do not start new requests here."""

    def __init__(self, app: web.Application) -> None:
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.draining = False
        app.middlewares.insert(0, self._count)  # outermost: sees every request
        app.on_response_prepare.append(self._close_when_draining)

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.in_flight += 1
        self.idle.clear()
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    async def _close_when_draining(
        self, _request: web.Request, response: web.StreamResponse
    ) -> None:
        if self.draining:
            response.force_close()

    async def run(self, runner: web.AppRunner) -> None:
        self.draining = True
        for site in list(runner.sites):
            await site.stop()  # stop accepting; other workers go on accepting
        try:
            await asyncio.wait_for(self.idle.wait(), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.warning(
                "requests still running at the shutdown timeout; cancelling them",
                extra={"pid": os.getpid(), "requests": self.in_flight},
            )


async def _stop_without(master: int, stop: asyncio.Event) -> None:
    """Stop if the master is gone (this process was re-parented): nobody would stop it."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
        if os.getppid() != master:
            log.warning("master is gone; stopping", extra={"pid": os.getpid(), "master": master})
            stop.set()


if __name__ == "__main__":
    sys.exit(worker_main(int(sys.argv[1])))
