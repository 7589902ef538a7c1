"""Chinese search: jieba search-mode segmentation with the domain dictionary, BM25 ranking."""

from __future__ import annotations

from typing import Any

from server.search.index import SearchIndex, terms
from tests.factories import auth, create_question, publish_question

BASE = "/api/v1/admin/questions"


def test_search_mode_emits_sub_words_and_domain_words() -> None:
    assert {"高血压", "血压"} <= set(terms("高血压患者"))
    assert "血压" in terms("血压偏高的老人")
    assert "电信网络诈骗" in terms("警惕电信网络诈骗")
    assert "测土配方施肥" in terms("推广测土配方施肥技术")
    assert "科普e站" in terms("到科普e站看看")
    assert "的" not in terms("血压偏高的老人"), "stopwords are dropped"
    assert terms("？！，。") == []


def test_bm25_prefers_the_weighted_field_and_rarer_terms() -> None:
    index = SearchIndex(weights={"title": 3.0, "body": 1.0})
    index.put("in_title", {"title": ["诈骗"], "body": ["电话", "转账"]})
    index.put("in_body", {"title": ["电话"], "body": ["诈骗", "转账"]})
    index.put("other", {"title": ["施肥"], "body": ["农业"]})
    ranked = index.search(["诈骗"])
    assert [doc for doc, _ in ranked] == ["in_title", "in_body"]
    assert index.search(["不存在的词"]) == []
    index.remove("in_title")
    assert [doc for doc, _ in index.search(["诈骗"])] == ["in_body"]


async def test_search_ranks_and_is_honest_about_what_segmentation_connects(
    client: Any, staff: Any
) -> None:
    direct = await create_question(
        client, staff.editor, n=1, stem="高血压患者每天食盐摄入应控制在多少克以内？"
    )
    indirect = await create_question(
        client, staff.editor, n=2, stem="血压偏高的老人早晨起床时应注意什么？"
    )
    unrelated = await create_question(
        client,
        staff.editor,
        n=3,
        stem="接到自称客服的电话要求提供验证码，这是电信网络诈骗吗？",
        explanation="凡是索要验证码的都是诈骗。",
    )
    found = await (await client.get(f"{BASE}?q=高血压", headers=auth(staff.analyst))).json()
    ids = [item["id"] for item in found["items"]]
    # 高血压 is segmented to 高血压 + 血压, so the stem that only says 血压偏高 is found too,
    # ranked below the one that says 高血压.
    assert ids[:2] == [direct["id"], indirect["id"]]
    assert unrelated["id"] not in ids
    assert found["items"][0]["score"] > found["items"][1]["score"]
    fraud = await (await client.get(f"{BASE}?q=电信网络诈骗", headers=auth(staff.analyst))).json()
    assert [item["id"] for item in fraud["items"]] == [unrelated["id"]]
    nothing = await (await client.get(f"{BASE}?q=量子纠缠", headers=auth(staff.analyst))).json()
    assert nothing["items"] == [] and nothing["total"] == 0


async def test_search_respects_filters(client: Any, staff: Any) -> None:
    draft = await create_question(client, staff.editor, n=1, stem="高血压患者应当按时服药吗？")
    published = await publish_question(
        client, staff.editor, staff.editor2, n=2, stem="高血压需要长期管理吗？"
    )
    only_published = await (
        await client.get(f"{BASE}?q=高血压&status=published", headers=auth(staff.editor))
    ).json()
    assert [item["id"] for item in only_published["items"]] == [published["id"]]
    by_topic = await (
        await client.get(f"{BASE}?q=高血压&topic=农业", headers=auth(staff.editor))
    ).json()
    assert by_topic["total"] == 0
    assert draft["id"] in [
        i["id"]
        for i in (await (await client.get(f"{BASE}?q=高血压", headers=auth(staff.editor))).json())[
            "items"
        ]
    ]


async def test_search_sees_edits_and_deletes(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor, n=1, stem="秸秆焚烧会造成什么危害？")
    await client.put(
        f"{BASE}/{created['id']}",
        json={
            **{
                k: v
                for k, v in created.items()
                if k in ("type", "options", "answer", "dimension", "topic", "audiences")
            },
            "stem": "秸秆综合利用有哪些方式？",
            "version": 1,
        },
        headers=auth(staff.editor),
    )
    assert (await (await client.get(f"{BASE}?q=焚烧", headers=auth(staff.editor))).json())[
        "total"
    ] == 0
    assert (await (await client.get(f"{BASE}?q=秸秆综合利用", headers=auth(staff.editor))).json())[
        "total"
    ] == 1
    await client.delete(f"{BASE}/{created['id']}", headers=auth(staff.editor))
    assert (await (await client.get(f"{BASE}?q=秸秆综合利用", headers=auth(staff.editor))).json())[
        "total"
    ] == 0
