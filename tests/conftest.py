"""Fixtures: real mongo-java-server (or MONGODB_URI) and Redis (or REDIS_URL) started once per session
by the harness; each test gets its own database name and Redis key prefix, and an aiohttp
test client for the real app."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from scripts import services as harness
from server.app import create_app
from server.kernel import openapi
from server.kernel.settings import Settings
from tests import factories
from tests.fake_wechat import FakeWeChat


@pytest.fixture(scope="session")
def services() -> Iterator[harness.Services]:
    harness.stop_on_sigterm()
    with harness.running("test") as started:
        yield started


@pytest.fixture
def private_services() -> Iterator[harness.Services]:
    """A MongoDB-protocol server (file-backed, so a restart keeps its data) and a Redis of the
    test's own, for tests that stop or wipe servers."""
    root = harness.SERVICES / f"private-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True, exist_ok=True)
    mongo = harness.start_mongo(root / "mongo", durable=True)
    try:
        redis = harness.start_redis(root / "redis")
    except BaseException:
        mongo.stop()
        raise
    yield harness.Services(mongo, redis, root)
    redis.stop()
    mongo.stop()
    shutil.rmtree(root, ignore_errors=True)


def make_settings(services: harness.Services, **overrides: Any) -> Settings:
    unique = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "app_env": "production",
        "mongodb_uri": services.mongo.url,
        "mongodb_db": f"test_{unique}",
        "redis_url": services.redis.url,
        "redis_prefix": f"test:{unique}:",
        "wechat_appid": "wx-test-appid",
        "wechat_secret": "test-wechat-secret-not-real",
        "wechat_api_base": "http://127.0.0.1:9",
        "quiz_signing_key": "test-quiz-signing-key-0123456789abcdef",
        "rate_limit_requests": 10_000,
        "login_rate_limit_requests": 10_000,  # many residents sign in from one address
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(services: harness.Services) -> Settings:
    return make_settings(services)


@pytest.fixture
async def cleanup(services: harness.Services) -> AsyncIterator[Callable[[Settings], None]]:
    """Drop the databases and Redis keys that a test's settings name, after the test."""
    used: list[Settings] = []
    yield used.append
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(services.mongo.url)
    redis = Redis.from_url(services.redis.url)
    try:
        for item in used:
            await mongo.drop_database(item.mongodb_db)
            keys = [key async for key in redis.scan_iter(match=item.redis_prefix + "*", count=1000)]
            if keys:
                await redis.delete(*keys)
    finally:
        await mongo.close()
        await redis.aclose()


@pytest.fixture
async def client_for(
    cleanup: Callable[[Settings], None],
) -> AsyncIterator[Callable[[Settings], Any]]:
    """Build test clients for the real app with given settings; all closed after the test."""
    clients: list[TestClient[Any, Any]] = []

    async def build(app_settings: Settings) -> TestClient[Any, Any]:
        cleanup(app_settings)
        test_client = TestClient(TestServer(create_app(app_settings)))
        await test_client.start_server()
        clients.append(test_client)
        return test_client

    yield build
    for test_client in clients:
        await test_client.close()


@pytest.fixture
async def client(client_for: Callable[[Settings], Any], settings: Settings) -> TestClient[Any, Any]:
    return await client_for(settings)


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def resident_client(
    client_for: Callable[[Settings], Any], services: harness.Services, wechat: FakeWeChat
) -> TestClient[Any, Any]:
    """The real app with WeChat pointed at the local fake and the demo bank published."""
    app_client = await client_for(
        make_settings(services, wechat_api_base=wechat.url, wechat_timeout_seconds=1)
    )
    from content.keys import ARTICLES
    from question_bank.keys import BANK
    from server import seed
    from server.kernel.keys import DB

    await seed.seed_demo(app_client.app[DB])
    await app_client.app[BANK].load(app_client.app[DB])
    await app_client.app[ARTICLES].load(app_client.app[DB])
    return app_client


@pytest.fixture
async def staff(client: TestClient[Any, Any]) -> factories.StaffTokens:
    """Tokens for one editor, a second editor, an analyst and an admin."""
    return await factories.staff_tokens(client)


@pytest.fixture
async def staff_in(resident_client: TestClient[Any, Any]) -> factories.StaffTokens:
    """Staff tokens on the resident-facing app (the one with the demo county seeded)."""
    return await factories.staff_tokens(resident_client)


# ---------------------------------------------------------------- statuses against the contract
# Every status any test sees from an API route must be one that route declares in the OpenAPI
# document (the fuzzer checks the same from outside; the tests reach states it can't, such as
# a contest already taken or a stale version). Collected from the access log of every app the
# tests run; checked once at the end of the session.


class _StatusRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: dict[tuple[str, str], set[int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = (str(getattr(record, "method", "")), str(getattr(record, "path", "")))
        self.seen.setdefault(key, set()).add(int(getattr(record, "status", 0)))


_STATUSES = _StatusRecorder()


def pytest_configure(config: pytest.Config) -> None:
    access = logging.getLogger("server.access")
    access.addHandler(_STATUSES)
    # Else the records stop at the root's default WARNING before any handler sees them.
    access.setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    undeclared = undeclared_statuses(_STATUSES.seen)
    if undeclared and exitstatus == 0:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n".join(f"  {u}" for u in undeclared)
        message = f"statuses seen but not declared in the OpenAPI document:\n{lines}\n"
        if reporter is not None:
            reporter.write_line(message, red=True)


def undeclared_statuses(seen: dict[tuple[str, str], set[int]]) -> list[str]:
    settings = Settings(_env_file=None, app_env="development")  # type: ignore[call-arg]
    document = openapi.build(create_app(settings))
    declared = {
        (method.upper(), path): {int(status) for status in operation["responses"]}
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    found = []
    for (method, path), statuses in sorted(seen.items()):
        if (method, path) not in declared:
            continue  # a route a test added for itself, or no route at all
        for status in sorted(statuses - declared[(method, path)]):
            # 499: the client left (nobody reads it); a 500 is a failure the test provoked.
            if status not in (499, 500):
                found.append(f"{method} {path} → {status}")
    return found
