"""seed-demo loads the demo county and bank, idempotently, and the bank covers the plan."""

from __future__ import annotations

from typing import Any

from question_bank.keys import BANK
from server import seed
from server.county.vocab import AUDIENCE_LABELS, DIMENSION_LABELS, TOPICS
from server.kernel.keys import DB


async def test_seed_demo_is_idempotent_and_covers_every_dimension_topic_and_audience(
    client: Any,
) -> None:
    db = client.app[DB]
    first = await seed.seed_demo(db)
    assert first["townships"] == 9 and first["questions"] >= 300
    second = await seed.seed_demo(db)
    assert second["questions"] == 0
    assert await db["questions"].count_documents({}) == first["questions"]
    contents = [doc["content"] async for doc in db["questions"].find({"status": "published"})]
    assert {c["dimension"] for c in contents} == set(DIMENSION_LABELS)
    assert {c["topic"] for c in contents} == set(TOPICS)
    assert {a for c in contents for a in c["audiences"]} == set(AUDIENCE_LABELS)
    await client.app[BANK].refresh(db)
    assert len(client.app[BANK].published) == first["questions"]
    townships = await (await client.get("/api/v1/townships?page_size=100")).json()
    assert townships["total"] == 9 and townships["items"][0] == {
        "code": "450223101",
        "name": "鹿寨镇",
    }
