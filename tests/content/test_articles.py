"""Articles through HTTP: sanitising, the editorial workflow, what residents can see,
search ranking, view counts, suggestions and recommendations after a quiz."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bson import ObjectId

from content.cache import fold_views
from content.keys import ARTICLES
from content.sanitize import sanitize_markdown
from question_bank.keys import BANK
from server.kernel.keys import DB, KV
from tests.factories import auth, resident

ADMIN = "/api/v1/admin/articles"
PUBLIC = "/api/v1/articles"


def article(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "冬季取暖谨防一氧化碳中毒",
        "summary": "燃煤取暖要通风，安装报警器。",
        "body": "## 为什么会中毒\n\n煤炭燃烧不充分会产生一氧化碳。\n\n- 保持通风\n- 安装报警器",
        "topics": ["安全应急"],
        "audiences": ["farmer", "elderly"],
        "dimensions": ["application"],
        "source": "县应急管理局供稿",
        "author": "县科协科普部",
    }
    body.update(overrides)
    return body


async def publish(client: Any, staff: Any, **overrides: Any) -> dict[str, Any]:
    created = await client.post(ADMIN, json=article(**overrides), headers=auth(staff.editor))
    assert created.status == 201, await created.text()
    article_id = (await created.json())["id"]
    published = await client.post(f"{ADMIN}/{article_id}/publish", headers=auth(staff.editor2))
    assert published.status == 200, await published.text()
    return dict(await published.json())


HOSTILE = [
    "<script>alert(1)</script>正文",
    "<SCRIPT src=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">图片',
    '<a href="javascript:alert(1)" onclick="steal()">链接</a>',
    "[点我](javascript:alert(document.cookie))",
    "[点我](jav&#x61;script:alert(1))",
    "[点我](  JaVaScRiPt:alert(1))",
    '<iframe src="https://evil.example"></iframe>',
    "<scr<script>ipt>alert(1)</script>",
    "<div onmouseover=alert(1)>悬停</div>",
    "[ref]: javascript:alert(1)",
    "![图](data:text/html;base64,PHNjcmlwdD4=)",
]


def assert_safe(text: str) -> None:
    lowered = text.lower()
    assert "<script" not in lowered and "<iframe" not in lowered
    assert not re.search(r"\bon\w+\s*=", lowered)
    assert "javascript:" not in lowered and "data:text/html" not in lowered


def test_sanitiser_defuses_hostile_markdown_and_keeps_plain_markdown() -> None:
    for hostile in HOSTILE:
        assert_safe(sanitize_markdown(hostile))
    kept = "## 小标题\n\n**加粗** 和 [链接](https://www.gov.cn/)\n\n- 列表"
    assert sanitize_markdown(kept) == kept


async def test_stored_article_never_contains_active_content(client: Any, staff: Any) -> None:
    response = await client.post(
        ADMIN, json=article(body="\n".join(HOSTILE) + "\n安全的正文"), headers=auth(staff.editor)
    )
    assert response.status == 201
    stored = await client.app[DB]["articles"].find_one({})
    assert_safe(stored["content"]["body"])
    assert "安全的正文" in stored["content"]["body"]
    bad_cover = await client.post(
        ADMIN, json=article(cover_url="javascript:alert(1)"), headers=auth(staff.editor)
    )
    assert bad_cover.status == 422


async def test_workflow_four_eyes_and_stale_versions(client: Any, staff: Any) -> None:
    created = await (await client.post(ADMIN, json=article(), headers=auth(staff.editor))).json()
    path = f"{ADMIN}/{created['id']}"
    assert (await client.post(f"{path}/publish", headers=auth(staff.editor))).status == 403
    assert (await client.post(ADMIN, json=article(), headers=auth(staff.analyst))).status == 403
    edited = await client.put(
        path, json={**article(title="新标题"), "version": 1}, headers=auth(staff.editor2)
    )
    assert edited.status == 200
    stale = await client.put(
        path, json={**article(title="另一个标题"), "version": 1}, headers=auth(staff.editor)
    )
    assert stale.status == 409
    # editor2 wrote last, so editor (not editor2) publishes.
    assert (await client.post(f"{path}/publish", headers=auth(staff.editor2))).status == 403
    assert (await client.post(f"{path}/publish", headers=auth(staff.editor))).status == 200
    trail = await client.app[DB]["audit_log"].find({"entity": "article"}).to_list()
    assert [t["action"] for t in trail] == ["create", "update", "publish"]


async def test_residents_never_see_drafts_or_retired_articles(
    resident_client: Any, staff_in: Any
) -> None:
    client, staff = resident_client, staff_in
    draft = await (
        await client.post(
            ADMIN, json=article(title="草稿：暴雨前后注意什么"), headers=auth(staff.editor)
        )
    ).json()
    retired = await publish(client, staff, title="已下线：雷雨天气防雷电")
    await client.post(f"{ADMIN}/{retired['id']}/retire", headers=auth(staff.editor))
    token = await resident(client, "reader")
    hidden = {draft["id"], retired["id"]}
    listed = await (await client.get(f"{PUBLIC}?page_size=100", headers=auth(token))).json()
    assert listed["total"] >= 60 and not hidden & {i["id"] for i in listed["items"]}
    for q in ("暴雨", "防雷电"):
        found = await (await client.get(f"{PUBLIC}?q={q}", headers=auth(token))).json()
        assert not hidden & {i["id"] for i in found["items"]}
    for article_id in hidden:
        assert (await client.get(f"{PUBLIC}/{article_id}", headers=auth(token))).status == 404
    mine = await (await client.get(f"{PUBLIC}/for-you", headers=auth(token))).json()
    assert not hidden & {i["id"] for i in mine["items"]}


async def test_search_puts_the_article_with_the_query_in_its_title_first(
    resident_client: Any,
) -> None:
    for query in ("电信网络诈骗", "测土配方施肥", "高血压", "垃圾分类"):
        found = await (await resident_client.get(f"{PUBLIC}?q={query}")).json()
        assert found["items"], query
        assert query in found["items"][0]["title"], (query, found["items"][0]["title"])
    nothing = await (await resident_client.get(f"{PUBLIC}?q=区块链")).json()
    assert nothing["items"] == []


async def test_views_are_counted_in_redis_and_folded_into_mongodb(resident_client: Any) -> None:
    some = next(iter(resident_client.app[ARTICLES].published))
    for _ in range(3):
        assert (await resident_client.get(f"{PUBLIC}/{some}")).status == 200
    assert await fold_views(resident_client.app[DB], resident_client.app[KV]) == 3
    stored = await resident_client.app[DB]["articles"].find_one({"views": 3})
    assert str(stored["_id"]) == some
    assert await fold_views(resident_client.app[DB], resident_client.app[KV]) == 0


async def test_views_folded_by_several_processes_at_once_are_counted_once(
    resident_client: Any,
) -> None:
    """Every worker folds (and all of them at shutdown): concurrent folds share the counts."""
    some = next(iter(resident_client.app[ARTICLES].published))
    for _ in range(40):
        assert (await resident_client.get(f"{PUBLIC}/{some}")).status == 200
    db, kv = resident_client.app[DB], resident_client.app[KV]
    folded = await asyncio.gather(*(fold_views(db, kv) for _ in range(8)))
    assert sum(folded) == 40
    stored = await db["articles"].find_one({"_id": ObjectId(some)})
    assert stored["views"] == 40


async def test_suggestions_come_from_popular_searches_that_find_something(
    resident_client: Any,
) -> None:
    for _ in range(3):
        await resident_client.get(f"{PUBLIC}?q=诈骗")
    await resident_client.get(f"{PUBLIC}?q=不存在的词语")
    suggestions = await (await resident_client.get(f"{PUBLIC}/suggestions?prefix=诈")).json()
    assert suggestions["items"][0] == "诈骗"
    assert "不存在的词语" not in suggestions["items"]


async def test_quiz_recommends_articles_on_missed_topics_for_the_group_and_unread(
    resident_client: Any,
) -> None:
    client = resident_client
    token = await resident(client, "learner", {"group": "elderly", "birth_year": 1952})
    fraud_articles = [
        a
        for a, d in client.app[ARTICLES].published.items()
        if "防诈骗与数字生活" in d["published"]["topics"]
    ]
    already_read = fraud_articles[0]
    await client.get(f"{PUBLIC}/{already_read}", headers=auth(token))
    quiz = await (
        await client.post(
            "/api/v1/quizzes",
            json={"mode": "practice", "topic": "防诈骗与数字生活"},
            headers=auth(token),
        )
    ).json()
    wrong = []
    for question in quiz["questions"]:
        truth = client.app[BANK].published[question["id"]]
        texts = {text: key for key, text in truth.options}
        wrong_keys = [o["key"] for o in question["options"] if texts[o["text"]] not in truth.answer]
        wrong.append({"question_id": question["id"], "choice": wrong_keys[:1]})
    result = await (
        await client.post(
            f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
            json={"answers": wrong},
            headers=auth(token),
        )
    ).json()
    recommended = result["recommended_articles"]
    assert recommended, "articles on the missed topic exist"
    first = recommended[0]
    assert "防诈骗与数字生活" in first["topics"]
    assert "elderly" in first["audiences"] or "general" in first["audiences"]
    assert first["reason"] == f"你在「防诈骗与数字生活」题目上答错了 {len(quiz['questions'])} 题"
    assert already_read not in {r["id"] for r in recommended}
    assert "body" not in first


async def test_concurrent_article_edits_exactly_one_wins(client: Any, staff: Any) -> None:
    import asyncio

    created = await (await client.post(ADMIN, json=article(), headers=auth(staff.editor))).json()
    path = f"{ADMIN}/{created['id']}"
    for version in range(1, 4):
        edits = [
            client.put(
                path,
                json={**article(title=f"标题{version}-{i}"), "version": version},
                headers=auth(staff.editor),
            )
            for i in range(6)
        ]
        statuses = sorted([r.status for r in await asyncio.gather(*edits)])
        assert statuses == [200] + [409] * 5, statuses
    assert (await client.app[DB]["articles"].find_one({}))["version"] == 4
