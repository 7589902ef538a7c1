"""The published-bank cache: a publish or retire in one process reaches another process's
cache within a few seconds, and the cache loads what is stored at start-up."""

from __future__ import annotations

import asyncio
from typing import Any

from question_bank.keys import BANK
from tests.factories import auth, publish_question


async def eventually(predicate: Any, within: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        assert loop.time() - started < within, "not visible in time"
        await asyncio.sleep(0.05)
    return loop.time() - started


async def test_publish_and_retire_reach_another_process(
    client: Any, staff: Any, client_for: Any, settings: Any
) -> None:
    other = await client_for(settings)  # a second app process on the same servers
    question = await publish_question(client, staff.editor, staff.editor2)
    qid = question["id"]
    await eventually(lambda: qid in other.app[BANK].published)
    served = other.app[BANK].published[qid]
    assert served.answer == ("A",) and served.version == 1
    await client.post(f"/api/v1/admin/questions/{qid}/retire", headers=auth(staff.editor))
    await eventually(lambda: qid not in other.app[BANK].published)


async def test_a_new_process_loads_the_published_bank(
    client: Any, staff: Any, client_for: Any, settings: Any
) -> None:
    question = await publish_question(client, staff.editor, staff.editor2)
    later = await client_for(settings)
    assert question["id"] in later.app[BANK].published
