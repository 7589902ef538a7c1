"""Local services harness: mongo-java-server (MongoDB wire protocol, run on OpenJDK) and Redis.

Used by `make run` (`python scripts/services.py run`) and by the test fixtures (imported).
It fetches mongo-java-server's jars once from Maven, installs Debian's OpenJDK and
redis-server if missing,
starts both on free loopback ports with data under `.services/`, waits until they answer,
and stops exactly the processes it started. If MONGODB_URI / REDIS_URL are set in the
environment, those servers are used instead and nothing is started for them."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
SERVICES = ROOT / ".services"
MONGO_DIR = ROOT / "scripts" / "mongo"  # Launcher.java and the pom naming the server's jars
MONGO_JARS = TOOLS / "mongo-java-server"


class HarnessError(RuntimeError):
    pass


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes] | None = None  # None: an external server we don't own
    data_dir: Path | None = None
    argv: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 10) -> None:
        """Stop the process this harness started (by pid); external servers are left alone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def restart(self) -> None:
        """Start the same server again on the same port and data (used by resilience tests)."""
        if not self.argv:
            raise HarnessError(f"{self.name} was not started by this harness; can't restart it")
        self.stop()
        self.process = _spawn(self.argv, self.data_dir or SERVICES)
        _wait_until_ready(self)


# ---------------------------------------------------------------- building and installing


def ensure_mongo_java_server() -> Path:
    """The embedded server's jars, fetched once from the configured Maven registry into
    .tools/ (Debian's maven runs `dependency:copy-dependencies` on scripts/mongo/pom.xml),
    and a JDK to run the launcher as a single source file."""
    ensure_debian_program(
        "javac",  # the source launcher compiles Launcher.java, which a bare JRE cannot
        ["openjdk-17-jdk-headless"],
        "install OpenJDK 17 (e.g. `apt-get install openjdk-17-jdk-headless`) or set MONGODB_URI "
        "to a MongoDB 7+ server and run again.",
    )
    stamp = MONGO_JARS / f".complete-{_pom_digest()}"
    if stamp.exists():
        return MONGO_JARS
    mvn = ensure_debian_program(
        "mvn", ["maven"], "install Maven (e.g. `apt-get install maven`) and run again."
    )
    print("harness: fetching mongo-java-server (once)", file=sys.stderr)
    shutil.rmtree(MONGO_JARS, ignore_errors=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(MONGO_DIR / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={MONGO_JARS}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not any(MONGO_JARS.glob("mongo-java-server-*.jar")):
        raise HarnessError(
            f"fetching mongo-java-server failed:\n{(result.stdout + result.stderr)[-3000:]}"
        )
    stamp.touch()
    return MONGO_JARS


def _pom_digest() -> str:
    import hashlib

    return hashlib.sha256((MONGO_DIR / "pom.xml").read_bytes()).hexdigest()[:12]


def ensure_redis() -> str:
    """Find redis-server, installing Debian's package when we are root on Debian."""
    return ensure_debian_program(
        "redis-server",
        ["redis-server"],
        "install Redis 7 (e.g. `apt-get install redis-server`) or set REDIS_URL to a running "
        "Redis and run again.",
    )


def ensure_chromium() -> str:
    """Debian's Chromium for the dashboard's browser test, with CJK fonts so Chinese text
    renders (and screenshots can be read)."""
    return ensure_debian_program(
        "chromium",
        ["chromium", "fonts-noto-cjk"],
        "install Chromium (e.g. `apt-get install chromium fonts-noto-cjk`) and run again.",
    )


CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def ensure_cjk_fonts() -> str:
    """Debian's Noto CJK fonts, embedded in the paper forms' PDF (scoring/assisted/paper.py)."""
    if not CJK_FONT.exists():
        _install_debian(["fonts-noto-cjk"])
    if not CJK_FONT.exists():
        raise HarnessError(f"{CJK_FONT} not found: install Debian's fonts-noto-cjk and run again.")
    return str(CJK_FONT)


def _install_debian(packages: list[str]) -> None:
    """Install Debian packages when we are root on Debian (else the caller says what to do)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    print(f"harness: installing Debian's {' '.join(packages)}", file=sys.stderr)
    quiet = {"stdout": subprocess.DEVNULL}
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *packages],
        check=True,
        **quiet,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def ensure_debian_program(binary: str, packages: list[str], advice: str) -> str:
    found = shutil.which(binary)
    if found:
        return found
    _install_debian(packages)
    found = shutil.which(binary)
    if not found:
        raise HarnessError(f"{binary} not found: {advice}")
    return found


# ---------------------------------------------------------------- starting and waiting


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(argv: list[str], data_dir: Path) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C in the terminal reaches us, and we stop the child by pid.
    with open(data_dir / "server.log", "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)


def start_mongo(data_dir: Path, *, durable: bool = False) -> Server:
    """mongo-java-server on a free port: in memory (fast; for tests), or with `durable` in an
    H2 file under data_dir that survives restarts and commits before acknowledging."""
    jars = ensure_mongo_java_server()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    heap = os.environ.get("MONGO_JAVA_HEAP", "1g")
    argv = [
        "java",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-Xss512k",
        "-cp",
        f"{jars}/*",
        str(MONGO_DIR / "Launcher.java"),
        "127.0.0.1",
        str(port),
    ]
    if durable:
        argv.append(str(data_dir / "mongo.mv"))
    server = Server(
        "mongodb", f"mongodb://127.0.0.1:{port}/", _spawn(argv, data_dir), data_dir, argv
    )
    _wait_until_ready(server)
    return server


def start_redis(data_dir: Path) -> Server:
    binary = ensure_redis()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        "",
    ]
    server = Server("redis", f"redis://127.0.0.1:{port}/0", _spawn(argv, data_dir), data_dir, argv)
    _wait_until_ready(server)
    return server


def _wait_until_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            log = (
                (server.data_dir / "server.log").read_text(errors="replace")[-2000:]
                if server.data_dir
                else ""
            )
            raise HarnessError(f"{server.name} exited with {server.process.returncode}:\n{log}")
        if _answers(server.name, host, int(port)):
            return
        time.sleep(0.1)
    raise HarnessError(f"{server.name} did not answer on {host}:{port} within {timeout:.0f}s")


def _answers(name: str, host: str, port: int) -> bool:
    try:
        if name == "redis":
            with socket.create_connection((host, port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        from pymongo import MongoClient

        with MongoClient(host, port, serverSelectionTimeoutMS=1000) as client:
            client.admin.command("ping")
            return True
    except Exception:
        return False


@dataclass
class Services:
    mongo: Server
    redis: Server
    root: Path

    def stop(self) -> None:
        self.redis.stop()
        self.mongo.stop()

    def remove_data(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def start(label: str, *, root: Path | None = None, durable: bool = False) -> Services:
    """Start (or adopt, from MONGODB_URI / REDIS_URL in the environment) both servers; with
    `durable`, MongoDB keeps its data in a file under `root` (else in memory)."""
    root = root or SERVICES / f"{label}-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True, exist_ok=True)
    mongo_uri, redis_url = os.environ.get("MONGODB_URI"), os.environ.get("REDIS_URL")
    mongo = (
        Server("mongodb", mongo_uri) if mongo_uri else start_mongo(root / "mongo", durable=durable)
    )
    try:
        redis = Server("redis", redis_url) if redis_url else start_redis(root / "redis")
    except BaseException:
        mongo.stop()
        raise
    started = Services(mongo, redis, root)
    # Stop them even if the caller never reaches its own clean-up (an exception in start-up
    # code, sys.exit, or SIGTERM turned into SystemExit by `stop_on_sigterm`).
    atexit.register(started.stop)
    return started


@contextlib.contextmanager
def running(label: str, *, durable: bool = False) -> Iterator[Services]:
    """Both servers for the length of a block, stopped and their data removed after it; with
    `durable`, MongoDB keeps its data in a file (a bounded heap however much is stored)."""
    services = start(label, durable=durable)
    try:
        yield services
    finally:
        services.stop()
        services.remove_data()


def stop_on_sigterm() -> None:
    """Make SIGTERM (a CI timeout, `kill`) unwind normally so `finally` and atexit run."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


# ---------------------------------------------------------------- make run


def _write_env(services: Services) -> Path:
    """Record the servers (and the app's environment, so a command run beside `make run`,
    such as create-user, gets the same development settings) in `.env`."""
    env_file = ROOT / ".env"
    written = {
        "MONGODB_URI": services.mongo.url,
        "REDIS_URL": services.redis.url,
        "APP_ENV": os.environ.get("APP_ENV", "development"),
    }
    kept = []
    if env_file.exists():
        kept = [
            line
            for line in env_file.read_text().splitlines()
            if line.split("=", 1)[0] not in written
        ]
    env_file.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in written.items())]) + "\n")
    return env_file


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signum)


def run_demo() -> int:
    """Start services, seed the demo county, serve on PORT (default 8080) until Ctrl-C or
    SIGTERM; then stop the app and exactly the servers started here."""
    # Explicit handlers: a background job may inherit SIGINT as ignored, and SIGTERM from a
    # supervisor must clean up too.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    # Data lives in a fixed folder and survives a restart (`make clean` removes it).
    services = start("run", root=SERVICES / "run", durable=True)
    app: subprocess.Popen[bytes] | None = None
    env = {**os.environ, "MONGODB_URI": services.mongo.url, "REDIS_URL": services.redis.url}
    env.setdefault("APP_ENV", "development")
    env.setdefault("WEB_CONCURRENCY", "1")  # the demo: one process, one log, quick to start
    print(f"harness: MongoDB at {services.mongo.url}, Redis at {services.redis.url}")
    try:
        seeded = subprocess.run([sys.executable, "-m", "server", "seed-demo"], env=env, cwd=ROOT)
        if seeded.returncode:
            # The command said why (e.g. settings refused in production); no traceback here.
            print("harness: seeding the demo county failed; stopping", file=sys.stderr)
            return seeded.returncode
        print(f"harness: settings for commands run beside this one in {_write_env(services)}")
        print(f"harness: serving on http://127.0.0.1:{env.get('PORT', '8080')} (Ctrl-C stops all)")
        app = subprocess.Popen([sys.executable, "-m", "server", "serve"], env=env, cwd=ROOT)
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if app is not None and app.poll() is None:
            app.terminate()
            app.wait(15)
        services.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run", "build"])
    args = parser.parse_args()
    try:
        if args.command == "build":
            print(ensure_mongo_java_server())
            print(ensure_redis())
            print(ensure_chromium())
            print(ensure_cjk_fonts())
            return 0
        return run_demo()
    except HarnessError as error:
        print(f"harness: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
