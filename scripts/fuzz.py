"""Fuzz the running service with schemathesis, once per role (`python -m scripts.fuzz`).

The harness starts its own MongoDB-protocol server and Redis, seeds the demo county, and runs
`python -m server serve --workers 1` beside a fake WeChat. It signs in a resident (with a
profile), an editor, an analyst and an admin, and for each of them (and for a caller with no
token) runs `schemathesis run` against the app's own `/api/v1/openapi.json`, cut down to the
operations that caller may use (anonymous: every operation, so each must answer 401/403).
Positive and negative cases, every check that judges a single response:

  not_a_server_error, status_code_conformance, content_type_conformance,
  response_headers_conformance, response_schema_conformance, negative_data_rejection

The app's access log is the count of requests and the tally of statuses per route: every
status seen must be declared by that route in the OpenAPI document, and no status may be 5xx
(a 503 from an overloaded machine would be declared, but is reported as a failure here: on
an idle server nothing should be unavailable).

Two operations are left out of the per-role runs because a generated request would end the
fuzzer's own session for the rest of the run: `POST /api/v1/auth/logout` and
`DELETE /api/v1/me` (the route × role walk and the PIPL tests drive both). They are still
fuzzed in the anonymous run.

Exit status 0 only if every run passed and at least `--min-requests` requests were made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from scripts import services as harness
from tests.fake_wechat import FakeWeChat

ROLES = ("resident", "editor", "analyst", "admin", "helper")
CLI_STAFF = ("editor", "analyst", "admin")  # a helper is created by an admin, with townships
ANONYMOUS = "anonymous"
# A generated call to these would revoke the fuzzer's own token for the rest of its run.
SESSION_ENDING = {("post", "/api/v1/auth/logout"), ("delete", "/api/v1/me")}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
READY_TIMEOUT_SECONDS = 60.0
Print = Callable[[str], None]


class SetupError(RuntimeError):
    """Something the run depends on failed to start or to prepare."""


@dataclass
class Config:
    examples: int = 40  # schemathesis --max-examples, per operation and role
    min_requests: int = 10_000
    seed: int = 1
    label: str = "fuzz"
    workers: int = (
        1  # schemathesis workers (2 hit a race inside hypothesis: a crash, not a finding)
    )


@dataclass
class RoleRun:
    caller: str
    operations: int
    requests: int
    seconds: float
    exit_code: int
    output: str


@dataclass
class Report:
    runs: list[RoleRun] = field(default_factory=list)
    # (method, route) → status → count, from the app's access log
    statuses: dict[tuple[str, str], Counter[int]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    undeclared: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)

    def violations(self, min_requests: int) -> list[str]:
        found = [
            f"schemathesis found problems as {run.caller} (exit {run.exit_code}):\n"
            f"{_failures_excerpt(run.output)}"
            for run in self.runs
            if run.exit_code != 0
        ]
        found += [f"status not declared in the OpenAPI document: {u}" for u in self.undeclared]
        found += [f"server error: {e}" for e in self.server_errors]
        found += [f"app log: {p}" for p in self.log_problems]
        if self.requests < min_requests:
            found.append(f"only {self.requests} requests made, fewer than {min_requests}")
        return found

    def format(self) -> str:
        lines = ["caller      operations  requests  seconds  result"]
        for run in self.runs:
            result = "passed" if run.exit_code == 0 else f"FAILED (exit {run.exit_code})"
            lines.append(
                f"{run.caller:<11} {run.operations:>10}  {run.requests:>8}  "
                f"{run.seconds:>7.1f}  {result}"
            )
        lines.append(f"{'all':<11} {'':>10}  {self.requests:>8}")
        tally: Counter[int] = Counter()
        for counts in self.statuses.values():
            tally.update(counts)
        lines.append("statuses seen: " + ", ".join(f"{s}×{n}" for s, n in sorted(tally.items())))
        return "\n".join(lines)


def _failures_excerpt(output: str, limit: int = 6000) -> str:
    marker = output.find("FAILURES")
    text = output[marker:] if marker >= 0 else output
    return text[:limit]


# ---------------------------------------------------------------- the service


def app_environment(services: harness.Services, port: int, wechat_url: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "MONGODB_URI": services.mongo.url,
        "MONGODB_DB": f"fuzz_{tag}",
        "REDIS_URL": services.redis.url,
        "REDIS_PREFIX": f"fuzz-{tag}:",
        "APP_ENV": "development",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WECHAT_APPID": "wx-fuzz",
        "WECHAT_SECRET": "fuzz-secret-not-real",
        "WECHAT_API_BASE": wechat_url,
        "QUIZ_SIGNING_KEY": secrets.token_urlsafe(32),
        # Every request comes from one address and one token per role.
        "RATE_LIMIT_REQUESTS": "1000000000",
        "LOGIN_RATE_LIMIT_REQUESTS": "1000000000",
    }


def cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
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
            f"python -m server {' '.join(args)} exited with {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def spawn_app(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--workers", "1"],
            env=env,
            cwd=harness.ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


async def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SetupError(f"the app exited with {process.returncode}:\n{tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise SetupError(f"/readyz not 200 within {READY_TIMEOUT_SECONDS:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def post_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any,
    token: str | None = None,
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with session.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        if response.status >= 300:
            raise SetupError(f"{method} {url} → {response.status}: {text[:500]}")
        return json.loads(text)


async def sign_in(base: str, env: dict[str, str]) -> dict[str, str]:
    """A token per role: a resident with a profile and consent, and one staff user each."""
    tokens: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        login = await post_json(
            session, "POST", f"{base}/api/v1/auth/wechat", {"code": "ok-fuzz-resident"}
        )
        tokens["resident"] = token = login["token"]
        townships = await post_json(session, "GET", f"{base}/api/v1/townships", None)
        profile = {
            "township_code": townships["items"][0]["code"],
            "birth_year": 1970,
            "gender": "female",
            "group": "farmer",
            "education": "junior",
            "consent_version": login["user"]["privacy"]["current_version"],
        }
        await post_json(session, "PUT", f"{base}/api/v1/me", profile, token)
        for role in CLI_STAFF:
            password = secrets.token_urlsafe(16)
            username = f"fuzz-{role}"
            cli(env, "create-user", "--username", username, "--role", role, stdin=password)
            tokens[role] = await staff_login(session, base, username, password)
        password = secrets.token_urlsafe(16)
        helper = {
            "username": "fuzz-helper",
            "password": password,
            "townships": [profile["township_code"]],
            "daily_limit": 5000,
        }
        await post_json(session, "POST", f"{base}/api/v1/admin/helpers", helper, tokens["admin"])
        tokens["helper"] = await staff_login(session, base, "fuzz-helper", password)
    return tokens


async def staff_login(
    session: aiohttp.ClientSession, base: str, username: str, password: str
) -> str:
    staff = await post_json(
        session, "POST", f"{base}/api/v1/auth/staff", {"username": username, "password": password}
    )
    return str(staff["token"])


# ---------------------------------------------------------------- the schema per caller


def schema_for(document: dict[str, Any], caller: str) -> tuple[dict[str, Any], int]:
    """The OpenAPI document cut down to what `caller` may call, and its operation count."""
    paths: dict[str, Any] = {}
    count = 0
    for path, operations in document["paths"].items():
        kept = {}
        for method, operation in operations.items():
            roles = operation.get("x-roles")
            if caller != ANONYMOUS:
                if (method, path) in SESSION_ENDING:
                    continue
                if roles != "public" and caller not in roles:
                    continue
            kept[method] = operation
        if kept:
            paths[path] = kept
            count += len(kept)
    return {**document, "paths": paths}, count


def declared_statuses(document: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    return {
        (method.upper(), path): set(operation["responses"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


# ---------------------------------------------------------------- running schemathesis


async def run_schemathesis(
    config: Config, caller: str, schema_file: Path, base: str, token: str | None, work: Path
) -> tuple[int, str]:
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(schema_file),
        "--url",
        base,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(config.examples),
        "--seed",
        str(config.seed),
        "--workers",
        str(config.workers),
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--request-timeout",
        "15",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--continue-on-failure",
        "--output-truncate",
        "true",
    ]
    if token is not None:
        argv += ["--header", f"Authorization: Bearer {token}"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=work,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


# ---------------------------------------------------------------- the app log


def read_access_log(log: Path, start: int) -> tuple[list[dict[str, Any]], list[str], int]:
    """Access entries and problem lines (errors, and lines that are not JSON) appended since
    `start`. Warnings are expected: a malformed request is one ("malformed request refused")."""
    with open(log, "rb") as handle:
        handle.seek(start)
        data = handle.read()
    entries, problems = [], []
    for line in data.decode(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(line[:2000])
            continue
        if entry.get("logger") == "server.access":
            entries.append(entry)
        elif entry.get("level") in ("error", "critical"):
            problems.append(line[:2000])
    return entries, problems, start + len(data)


def tally(report: Report, entries: list[dict[str, Any]], caller: str) -> None:
    for entry in entries:
        key = (str(entry.get("method")), str(entry.get("path")))
        status = int(entry.get("status", 0))
        report.statuses[key][status] += 1
        if status >= 500:
            report.server_errors.append(f"{caller}: {key[0]} {key[1]} → {status}")


def judge_statuses(report: Report, document: dict[str, Any]) -> None:
    declared = declared_statuses(document)
    for (method, path), counts in sorted(report.statuses.items()):
        statuses = declared.get((method, path))
        if statuses is None:
            continue  # not an API operation (dashboard files, unknown paths: 404)
        for status in counts:
            if str(status) not in statuses and status != 499:
                report.undeclared.append(f"{method} {path} → {status} ({counts[status]}×)")


# ---------------------------------------------------------------- the run


def run(config: Config, say: Print = print) -> Report:
    return asyncio.run(_run(config, say))


async def _run(config: Config, say: Print) -> Report:
    report = Report()
    wechat = FakeWeChat()
    await wechat.start()
    with harness.running(config.label) as services:
        work = services.root / "work"
        work.mkdir(parents=True, exist_ok=True)
        port = harness.free_port()
        env = app_environment(services, port, wechat.url)
        began = time.monotonic()
        cli(env, "seed-demo", "--no-assessments")
        log = work / "app.log"
        app = spawn_app(env, log)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base, app, log)
            tokens = await sign_in(base, env)
            async with (
                aiohttp.ClientSession() as session,
                session.get(base + "/api/v1/openapi.json") as response,
            ):
                document = await response.json()
            say(f"fuzz: service ready with the demo county in {time.monotonic() - began:.1f} s")
            _, _, position = read_access_log(log, 0)
            for caller in (*ROLES, ANONYMOUS):
                schema, operations = schema_for(document, caller)
                schema_file = work / f"openapi-{caller}.json"
                schema_file.write_text(json.dumps(schema, ensure_ascii=False))
                started = time.monotonic()
                code, output = await run_schemathesis(
                    config, caller, schema_file, base, tokens.get(caller), work
                )
                entries, problems, position = read_access_log(log, position)
                tally(report, entries, caller)
                report.log_problems += [f"{caller}: {p}" for p in problems]
                run_ = RoleRun(
                    caller, operations, len(entries), time.monotonic() - started, code, output
                )
                report.runs.append(run_)
                say(
                    f"fuzz: {caller}: {operations} operations, {len(entries)} requests in "
                    f"{run_.seconds:.1f} s, schemathesis exit {code}"
                )
            judge_statuses(report, document)
        finally:
            app.terminate()
            try:
                app.wait(20)
            except subprocess.TimeoutExpired:
                app.kill()
            await wechat.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=Config.examples)
    parser.add_argument("--min-requests", type=int, default=Config.min_requests)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args()
    config = Config(examples=args.examples, min_requests=args.min_requests, seed=args.seed)
    try:
        report = run(config)
    except (SetupError, harness.HarnessError) as error:
        print(f"fuzz: setting up failed: {error}", file=sys.stderr)
        return 2
    print(report.format())
    violations = report.violations(config.min_requests)
    for violation in violations:
        print(f"VIOLATION: {violation}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
