"""The service runs unchanged on a Redis Cluster (REDIS_CLUSTER=true): a local cluster of
three masters from Debian's redis-server, the normal test MongoDB, and the real flows over
HTTP. Besides the responses, the tests check that the keys really are spread over the nodes
and that a resident's quiz state shares one slot (its hash-tag group)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis, RedisCluster

from question_bank.keys import BANK
from scripts import redis_cluster
from scripts import services as harness
from server.kernel.keys import KV
from server.kernel.settings import Settings
from tests.conftest import make_settings
from tests.factories import (
    auth,
    correct_answers,
    publish_question,
    question_payload,
    resident,
    staff_tokens,
)
from tests.fake_wechat import FakeWeChat
from tests.question_bank.test_cache import eventually

QUIZZES = "/api/v1/quizzes"
ARTICLES = "/api/v1/articles"

Client = TestClient[Any, Any]


@pytest.fixture(scope="module")
def cluster() -> Iterator[redis_cluster.Cluster]:
    # No skip: a cluster that can't start is a failure (HarnessError), like a missing server.
    with redis_cluster.running(masters=3) as started:
        yield started


def cluster_settings(
    services: harness.Services, cluster: redis_cluster.Cluster, **overrides: Any
) -> Settings:
    return make_settings(services, redis_url=cluster.url, redis_cluster=True, **overrides)


@pytest.fixture
async def app(
    client_for: Callable[[Settings], Any],
    services: harness.Services,
    cluster: redis_cluster.Cluster,
    wechat: FakeWeChat,
) -> Client:
    """The real app on the cluster, WeChat faked, the demo county seeded and published."""
    from content.keys import ARTICLES as ARTICLE_CACHE
    from server import seed
    from server.kernel.keys import DB

    client: Client = await client_for(
        cluster_settings(services, cluster, wechat_api_base=wechat.url, wechat_timeout_seconds=1)
    )
    assert isinstance(client.app[KV].redis, RedisCluster)
    await seed.seed_demo(client.app[DB])
    await client.app[BANK].load(client.app[DB])
    await client.app[ARTICLE_CACHE].load(client.app[DB])
    return client


async def keys_per_node(cluster: redis_cluster.Cluster, prefix: str) -> list[list[str]]:
    """This test's keys (the prefix is inside a hash tag or at the start) on each node."""
    found = []
    for host, port in cluster.addresses:
        async with Redis(host=host, port=port) as node:
            keys = [key.decode() async for key in node.scan_iter(match=f"*{prefix}*", count=1000)]
            found.append(sorted(keys))
    return found


async def submit(client: Client, token: str, quiz: dict[str, Any], **body: Any) -> Any:
    answers = body.get("answers", correct_answers(client, quiz))
    return await client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
    )


async def test_resident_flows_run_on_the_cluster_and_spread_its_keys(
    app: Client, cluster: redis_cluster.Cluster
) -> None:
    assert (await app.get("/readyz")).status == 200
    tokens = [await resident(app, f"cluster-{n}") for n in range(4)]
    token = tokens[0]
    me = await (await app.get("/api/v1/me", headers=auth(token))).json()
    assert me["profile"]["township_code"] == "450223102"

    # Daily: a second tap gets the same quiz; after submitting, it is done for today.
    first = await app.post(QUIZZES, json={"mode": "daily"}, headers=auth(token))
    assert first.status == 201
    daily = await first.json()
    again = await (await app.post(QUIZZES, json={"mode": "daily"}, headers=auth(token))).json()
    assert again == daily
    scored = await submit(app, token, daily)
    assert scored.status == 200, await scored.text()
    assert (await scored.json())["correct_count"] == len(daily["questions"])
    done = await app.post(QUIZZES, json={"mode": "daily"}, headers=auth(token))
    assert done.status == 409 and (await done.json())["error"]["code"] == "already_done"

    # Practice, submitted and replayed: the replay answers the first result unchanged.
    for other in tokens:
        started = await app.post(QUIZZES, json={"mode": "practice"}, headers=auth(other))
        assert started.status == 201
        practice = await started.json()
        result = await submit(app, other, practice)
        assert result.status == 200, await result.text()
        replay = await submit(app, other, practice, answers=[])
        assert replay.status == 200 and await replay.json() == await result.json()

    attempts = await (await app.get("/api/v1/me/attempts", headers=auth(token))).json()
    assert attempts["total"] == 2 and {a["mode"] for a in attempts["items"]} == {
        "daily",
        "practice",
    }

    # Articles: listing, reading (a view and the resident's read set), searching.
    listed = await (await app.get(f"{ARTICLES}?page_size=5", headers=auth(token))).json()
    assert listed["total"] > 0 and len(listed["items"]) == 5
    for item in listed["items"][:3]:
        read = await app.get(f"{ARTICLES}/{item['id']}", headers=auth(token))
        assert read.status == 200
    found = await (await app.get(f"{ARTICLES}?q=诈骗", headers=auth(token))).json()
    assert found["items"]

    prefix = app.app[KV].prefix
    per_node = await keys_per_node(cluster, prefix)
    assert sum(1 for keys in per_node if keys) >= 2, per_node
    # One resident's quiz state lives in one slot (one hash-tag group), so on one node.
    user_id = me["id"]
    holders = [n for n, keys in enumerate(per_node) if any(f"u:{user_id}}}" in k for k in keys)]
    assert len(holders) == 1, per_node

    # Logout revokes the token on whichever node holds it; account deletion revokes all.
    assert (await app.post("/api/v1/auth/logout", headers=auth(token))).status == 200
    assert (await app.get("/api/v1/me", headers=auth(token))).status == 401
    assert (await app.delete("/api/v1/me", headers=auth(tokens[1]))).status == 204
    assert (await app.get("/api/v1/me", headers=auth(tokens[1]))).status == 401


async def test_leaderboards_work_on_the_cluster(app: Client) -> None:
    tokens = [await resident(app, f"board-{n}") for n in range(3)]
    for token in tokens:
        practice = await (
            await app.post(QUIZZES, json={"mode": "practice"}, headers=auth(token))
        ).json()
        result = await submit(app, token, practice)
        assert result.status == 200, await result.text()
    for scope in ("county", "township"):
        response = await app.get(
            f"/api/v1/leaderboards?scope={scope}&period=week", headers=auth(tokens[0])
        )
        assert response.status == 200, await response.text()
        board = await response.json()
        assert len(board["items"]) == 3 and board["items"][0]["points"] > 0, board
        assert board["me"]["rank"] in (1, 2, 3), board


async def test_rate_limit_answers_429_on_the_cluster(
    client_for: Callable[[Settings], Any],
    services: harness.Services,
    cluster: redis_cluster.Cluster,
) -> None:
    client: Client = await client_for(
        cluster_settings(services, cluster, rate_limit_requests=3, rate_limit_window_seconds=60)
    )
    statuses = [(await client.get("/api/v1/townships")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    other = await client.get("/api/v1/townships", headers=auth("someone-else"))
    assert other.status == 200


async def test_a_question_edit_reaches_another_process_through_the_stream(
    client_for: Callable[[Settings], Any],
    services: harness.Services,
    cluster: redis_cluster.Cluster,
) -> None:
    settings = cluster_settings(services, cluster)
    client: Client = await client_for(settings)
    other: Client = await client_for(settings)  # a second app process on the same servers
    staff = await staff_tokens(client)
    question = await publish_question(client, staff.editor, staff.editor2)
    qid = question["id"]
    await eventually(lambda: qid in other.app[BANK].published)
    stem = "修改后的题干：成年人每天食盐摄入量的建议上限是多少？"
    edited = await client.put(
        f"/api/v1/admin/questions/{qid}",
        json={**question_payload(n=7, stem=stem), "version": question["version"]},
        headers=auth(staff.editor),
    )
    assert edited.status == 200, await edited.text()
    published = await client.post(
        f"/api/v1/admin/questions/{qid}/publish", headers=auth(staff.editor2)
    )
    assert published.status == 200, await published.text()
    await eventually(lambda: other.app[BANK].published[qid].stem == stem)
    assert other.app[BANK].published[qid].version == 2
