"""Exact and near-duplicate detection."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from question_bank.duplicates import NearDuplicateIndex, content_hash, jaccard
from tests.factories import auth, create_question, question_payload


def test_content_hash_ignores_option_order_punctuation_and_width() -> None:
    a = question_payload()
    b = question_payload(
        stem=a["stem"].replace("？", "?") + " ", options=list(reversed(a["options"]))
    )
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(question_payload(n=1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.frozensets(st.sampled_from("abcdefghij"), min_size=1, max_size=8),
        min_size=2,
        max_size=25,
    ),
    st.sampled_from([0.5, 0.6, 0.8, 1.0]),
)
def test_prefix_filtered_pairs_equal_brute_force(
    sets: list[frozenset[str]], threshold: float
) -> None:
    index = NearDuplicateIndex()
    for i, tokens in enumerate(sets):
        index.put(f"d{i:02d}", tokens)
    expected = {
        (f"d{i:02d}", f"d{j:02d}")
        for i, j in itertools.combinations(range(len(sets)), 2)
        if jaccard(sets[i], sets[j]) >= threshold
    }
    assert {(a, b) for a, b, _ in index.all_pairs(threshold=threshold)} == expected


async def test_near_duplicate_is_flagged_on_create_and_listed(client: Any, staff: Any) -> None:
    first = await create_question(
        client, staff.editor, stem="高血压患者每天食盐摄入量不宜超过多少克？"
    )
    second = await create_question(
        client, staff.editor2, stem="高血压患者每天的食盐摄入量最好不超过多少克？"
    )
    assert second["near_duplicates"] and second["near_duplicates"][0]["id"] == first["id"]
    assert second["near_duplicates"][0]["similarity"] >= 0.8
    unrelated = await create_question(
        client, staff.editor, n=7, stem="家用电器着火时首先应该怎么做？"
    )
    assert unrelated["near_duplicates"] == []
    pairs = await (
        await client.get("/api/v1/admin/questions/duplicates", headers=auth(staff.analyst))
    ).json()
    assert pairs["total"] == 1
    pair = pairs["items"][0]
    assert {pair["a"], pair["b"]} == {first["id"], second["id"]} and 0.8 <= pair["similarity"] <= 1
