"""Quiz start and durable submit throughput and latency at 64 and 256 concurrent clients, as
ratios to a minimal aiohttp JSON handler measured in the same run. The app and the baseline
run as separate processes (one worker each); the load comes from this process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import aiohttp

from scripts import services as harness
from scripts.benchkit import percentile

DURATION = 4.0
CONCURRENCY = (64, 256)


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def load(
    make_request: Any, concurrency: int, *, total: int | None = None
) -> tuple[float, list[float], int]:
    """Run `concurrency` workers for DURATION seconds (or until `total` requests)."""
    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    counter = iter(range(10**9))

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() - started < DURATION:
            index = next(counter)
            if total is not None and index >= total:
                return
            t0 = time.perf_counter()
            status = await make_request(index)
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += status >= 400
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        print(f"   statuses: {statuses}")
    return time.perf_counter() - started, latencies, errors


def line(
    name: str, elapsed: float, latencies: list[float], errors: int, base_rps: float | None
) -> float:
    rps = len(latencies) / elapsed
    ratio = f"{rps / base_rps:6.1%} of baseline" if base_rps else "baseline"
    print(
        f"{name:<34} {rps:8.0f} req/s  p50 {percentile(latencies, 0.5):7.1f} ms  p99 {percentile(latencies, 0.99):7.1f} ms"
        f"  errors {errors:<4} {ratio}"
    )
    return rps


async def run(services: harness.Services) -> None:
    app_port, base_port = harness.free_port(), harness.free_port()
    env = {
        **os.environ,
        "APP_ENV": "development",
        "PORT": str(app_port),
        "HOST": "127.0.0.1",
        "MONGODB_URI": services.mongo.url,
        "MONGODB_DB": "bench_quiz",
        "REDIS_URL": services.redis.url,
        "REDIS_PREFIX": "bench:",
        "RATE_LIMIT_REQUESTS": "1000000000",
    }
    subprocess.run(
        [sys.executable, "-m", "server", "seed-demo"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    app_log = open(harness.SERVICES / "bench-app.log", "wb")  # noqa: ASYNC230 - set-up, not load
    app = subprocess.Popen(
        [sys.executable, "-m", "server", "serve"], env=env, stdout=app_log, stderr=app_log
    )
    base = subprocess.Popen(
        [sys.executable, "-m", "scripts.baseline_server", str(base_port)], **quiet
    )
    app_url, base_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{base_port}"
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, app_url + "/readyz")
            await wait_ready(session, base_url + "/")
            tokens = await residents(session, app_url, max(CONCURRENCY))
            for concurrency in CONCURRENCY:
                print(f"-- {concurrency} concurrent clients, {DURATION:.0f} s each --")
                await scenario(session, app_url, base_url, tokens, concurrency)
    finally:
        for process in (app, base):
            process.terminate()
            process.wait(10)


async def residents(session: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    tokens = []
    for n in range(count):
        async with session.post(url + "/api/v1/auth/dev", json={"openid": f"bench{n}"}) as response:
            token = (await response.json())["token"]
        profile = {
            "township_code": "450223101",
            "birth_year": 1970 + n % 40,
            "gender": "male",
            "group": "farmer",
            "education": "junior",
        }
        async with session.put(
            url + "/api/v1/me", json=profile, headers={"Authorization": f"Bearer {token}"}
        ):
            pass
        tokens.append(token)
    return tokens


async def scenario(
    session: aiohttp.ClientSession, app_url: str, base_url: str, tokens: list[str], concurrency: int
) -> None:
    async def baseline(_: int) -> int:
        async with session.post(base_url + "/quizzes", json={"mode": "practice"}) as response:
            await response.read()
            return response.status

    base_rps = line("baseline JSON handler", *await load(baseline, concurrency), None)
    issued: list[tuple[str, str, dict[str, Any]]] = []

    async def start(index: int) -> int:
        token = tokens[index % concurrency]
        async with session.post(
            app_url + "/api/v1/quizzes",
            json={"mode": "practice"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            body = await response.json()
            if response.status == 201:
                issued.append((token, body["quiz_id"], body))
            return response.status

    line("start quiz (practice, 10 questions)", *await load(start, concurrency), base_rps)

    async def submit(index: int) -> int:
        token, quiz_id, quiz = issued[index]
        answers = [{"question_id": q["id"], "choice": ["A"]} for q in quiz["questions"]]
        async with session.post(
            app_url + f"/api/v1/quizzes/{quiz_id}/submit",
            json={"answers": answers},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            await response.read()
            return response.status

    line(
        "durable submit (group commit)",
        *await load(submit, concurrency, total=len(issued)),
        base_rps,
    )


def main() -> None:
    with harness.running("bench-quiz") as services:
        asyncio.run(run(services))


if __name__ == "__main__":
    main()
