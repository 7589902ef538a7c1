"""Benchmarks (`make bench`): figures are printed, never asserted. Each latency is also given
as a ratio to GET /healthz measured in the same run, because these machines are shared."""

from __future__ import annotations

import asyncio
import io
import random
import time
from typing import Any

import openpyxl
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from question_bank.importing import COLUMNS
from question_bank.keys import BANK
from scripts import services as harness
from scripts.benchkit import percentile, report, timed
from server import seed
from server.accounts import service as users
from server.app import create_app
from server.kernel.keys import DB
from tests.conftest import make_settings

QUERIES = [
    "高血压",
    "电信网络诈骗",
    "测土配方施肥",
    "垃圾分类",
    "人工智能",
    "食品安全",
    "用电安全",
    "农药",
    "验证码",
    "碳中和",
]


def question_rows(count: int) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("题目")
    sheet.append(COLUMNS)
    rng = random.Random(1)
    words = [
        "高血压",
        "糖尿病",
        "农药",
        "施肥",
        "诈骗",
        "验证码",
        "地震",
        "火灾",
        "垃圾分类",
        "光伏",
        "北斗",
        "疫苗",
    ]
    for n in range(count):
        row = dict.fromkeys(COLUMNS, "")
        row.update(
            {
                "题型": "单选",
                "题干": f"关于{rng.choice(words)}和{rng.choice(words)}，下列说法正确的是？（{n}）",
                "选项A": f"说法甲{n}",
                "选项B": f"说法乙{n}",
                "选项C": f"说法丙{n}",
                "答案": "A",
                "解析": f"{rng.choice(words)}相关知识。",
                "维度": "科学知识",
                "主题": "健康",
                "适用人群": "公众",
                "难度": 3,
            }
        )
        sheet.append([row[c] for c in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def editor_tokens(client: TestClient[Any, Any]) -> tuple[str, str]:
    tokens = []
    for name in ("bench_editor_a", "bench_editor_b"):
        await users.create_staff(
            client.app[DB], username=name, password="bench-password", role="editor"
        )
        response = await client.post(
            "/api/v1/auth/staff", json={"username": name, "password": "bench-password"}
        )
        tokens.append((await response.json())["token"])
    return tokens[0], tokens[1]


async def question_bank(services: harness.Services) -> None:
    print("== question bank ==")
    settings = make_settings(services, rate_limit_requests=10**9, login_rate_limit_requests=10**9)
    client = TestClient(TestServer(create_app(settings)))
    other = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    await other.start_server()
    try:
        await seed.seed_demo(client.app[DB])
        author, reviewer = await editor_tokens(client)
        headers = {"Authorization": f"Bearer {author}"}
        healthz = await timed(lambda: client.get("/healthz"), 200)
        report("GET /healthz (baseline)", healthz)
        baseline = percentile(healthz, 0.5)

        data = question_rows(10_000)
        form = FormData()
        form.add_field("file", io.BytesIO(data), filename="bench.xlsx")
        started = time.perf_counter()
        response = await client.post("/api/v1/admin/questions/import", data=form, headers=headers)
        result = await response.json()
        seconds = time.perf_counter() - started
        print(
            f"import 10,000 xlsx rows ({len(data) / 1e6:.1f} MB)            {seconds:8.2f} s    "
            f"imported={result['imported']} errors={len(result['errors'])} ({10_000 / seconds:.0f} rows/s)"
        )

        bank_size = len(client.app[BANK].docs)
        queries = iter(QUERIES * 50)
        searches = await timed(
            lambda: client.get(f"/api/v1/admin/questions?q={next(queries)}", headers=headers), 300
        )
        report(f"search over {bank_size} questions (HTTP)", searches, baseline)

        await other.app[BANK].refresh(other.app[DB])
        delays, publishes = [], []
        for n in range(10):
            created = await client.post(
                "/api/v1/admin/questions",
                headers=headers,
                json={
                    "type": "true_false",
                    "stem": f"传播速度测试题 {n}：光在真空中的速度约为每秒30万千米。",
                    "options": [{"key": "A", "text": "对"}, {"key": "B", "text": "错"}],
                    "answer": ["A"],
                    "dimension": "knowledge",
                    "topic": "前沿科技",
                    "audiences": ["youth"],
                },
            )
            qid = (await created.json())["id"]
            started = time.perf_counter()
            await client.post(
                f"/api/v1/admin/questions/{qid}/publish",
                headers={"Authorization": f"Bearer {reviewer}"},
            )
            published = time.perf_counter()
            publishes.append((published - started) * 1000)
            while qid not in other.app[BANK].published:
                await asyncio.sleep(0.005)
            delays.append((time.perf_counter() - published) * 1000)
        report(f"POST publish ({bank_size} questions stored)", publishes, baseline)
        report("publish acknowledged → in another process's cache", delays)
    finally:
        await client.close()
        await other.close()
        await _drop(services, settings)


def articles(count: int = 50_000) -> None:
    """Search and recommendation over `count` published articles, in process (the resident
    routes read the same in-memory cache). Bodies are the 64 demo articles' tokens, repeated
    with a distinct title word each, so segmentation time is not what is measured."""
    import json
    from pathlib import Path

    from content import service as content_service
    from content.cache import ArticleCache
    from server.search.index import terms

    print(f"== articles ({count:,} published, in process) ==")
    demo = json.loads(
        (Path(__file__).resolve().parents[1] / "content/demo/articles.json").read_text()
    )
    tokens = [
        {"title": terms(a["title"]), "summary": terms(a["summary"]), "body": terms(a["body"])}
        for a in demo
    ]
    cache = ArticleCache()
    rng = random.Random(5)
    from datetime import UTC, datetime

    for n in range(count):
        source = demo[n % len(demo)]
        article_id = f"{n:024x}"
        doc_tokens = {
            **tokens[n % len(demo)],
            "title": [*tokens[n % len(demo)]["title"], f"编号{n}"],
        }
        cache.published[article_id] = {
            "_id": article_id,
            "published_tokens": doc_tokens,
            "status": "published",
            "views": rng.randint(0, 5000),
            "published_at": datetime.now(UTC),
            "published": {**source, "reading_minutes": 2, "cover_url": None, "media_url": None},
        }
    cache.replace(list(cache.published.values()))  # builds the search, topic and popularity indexes
    search_ms, recommend_ms = [], []
    for n in range(200):
        query = QUERIES[n % len(QUERIES)]
        started = time.perf_counter()
        found = content_service.list_published(
            cache, q=query, topic=None, audience="elderly", sort="newest"
        )
        _ = [content_service.resident_view(d) for d in found[:20]]
        search_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        content_service.recommend(
            cache, wrong={"防诈骗与数字生活": 2, "健康": 1}, group="elderly", read=set()
        )
        recommend_ms.append((time.perf_counter() - started) * 1000)
    hits = len(
        content_service.list_published(cache, q="诈骗", topic=None, audience=None, sort="newest")
    )
    report(f"search, first page of 20 ('诈骗' matches {hits:,})", search_ms)
    report("recommendations after a quiz", recommend_ms)


async def _drop(services: harness.Services, settings: Any) -> None:
    from pymongo import AsyncMongoClient

    mongo: AsyncMongoClient[Any] = AsyncMongoClient(services.mongo.url)
    await mongo.drop_database(settings.mongodb_db)
    await mongo.close()


def main() -> None:
    with harness.running("bench") as services:
        asyncio.run(question_bank(services))
    print(f"(backend: {services.mongo.name}; machine: shared 2-core)")
    articles()
    print("== statistics ==")
    from scripts import bench_stats

    bench_stats.main()


if __name__ == "__main__":
    main()
