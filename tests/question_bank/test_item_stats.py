"""Item statistics: the incremental sums reproduce the textbook formulas, and the flags."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np

from question_bank.item_stats import Response, increments, summarise
from scoring.quizzes.keys import ATTEMPT_WRITER
from server.kernel.clock import now
from server.kernel.keys import DB
from tests.factories import auth, fold_item_stats, publish_question


def accumulate(responses: list[Response]) -> dict[str, Any]:
    sums: dict[str, Any] = {"options": {}}
    for response in responses:
        for name, value in increments(response).items():
            if name.startswith("options."):
                _, key, field = name.split(".")
                sums["options"].setdefault(key, {}).setdefault(field, 0)
                sums["options"][key][field] += value
            else:
                sums[name] = sums.get(name, 0) + value
    return sums


def simulated(n: int, *, seed: int, backwards: bool = False) -> list[Response]:
    rng = random.Random(seed)
    responses = []
    for _ in range(n):
        ability = rng.random()
        rest = round(ability * 4 + rng.random())
        correct = rng.random() < 0.2 + 0.7 * ability
        if backwards:  # strong residents pick the distractor C
            chosen = ("C",) if ability > 0.6 else ("A",) if correct else ("B",)
            mark = 1.0 if chosen == ("A",) else 0.0
        else:
            chosen = ("A",) if correct else (rng.choice("BCD"),)
            mark = 1.0 if correct else 0.0
        responses.append(Response("q", 1, mark, float(rest), chosen))
    return responses


def test_facility_and_discrimination_match_numpy() -> None:
    responses = simulated(400, seed=7)
    stats = summarise(
        accumulate(responses), question_type="single", options=list("ABCD"), answer=["A"]
    )
    marks = np.array([r.mark for r in responses])
    rests = np.array([r.rest for r in responses])
    assert stats["attempts"] == 400
    assert abs(stats["facility"] - marks.mean()) < 1e-4
    assert abs(stats["discrimination"] - np.corrcoef(marks, rests)[0, 1]) < 1e-4
    shares = {o["key"]: o["share"] for o in stats["options"]}
    assert abs(sum(shares.values()) - 1) < 1e-3
    assert stats["flags"] == []


def test_flags_need_thirty_attempts_and_catch_bad_items() -> None:
    easy = [Response("q", 1, 1.0, float(i % 5), ("A",)) for i in range(29)]
    assert (
        summarise(accumulate(easy), question_type="single", options=list("ABCD"), answer=["A"])[
            "flags"
        ]
        == []
    )
    easy.append(Response("q", 1, 1.0, 3.0, ("A",)))
    assert (
        "too_easy"
        in summarise(accumulate(easy), question_type="single", options=list("ABCD"), answer=["A"])[
            "flags"
        ]
    )
    backwards = summarise(
        accumulate(simulated(300, seed=3, backwards=True)),
        question_type="single",
        options=list("ABCD"),
        answer=["A"],
    )
    assert "distractor_backwards" in backwards["flags"]
    assert "low_discrimination" in backwards["flags"]
    hard = [
        Response(
            "q", 1, 1.0 if i % 10 == 0 else 0.0, float(i % 5), ("A",) if i % 10 == 0 else ("B",)
        )
        for i in range(60)
    ]
    assert (
        "too_hard"
        in summarise(
            accumulate(hard), question_type="true_false", options=["A", "B"], answer=["A"]
        )["flags"]
    )


def attempt_with(response: Response, n: int) -> dict[str, Any]:
    """A stored attempt in which `response` is the answer to one item and five other items
    make up its rest score."""
    others = [
        {"question_id": f"other{k}", "version": 1, "chosen": [], "mark": float(k < response.rest)}
        for k in range(5)
    ]
    item = {
        "question_id": response.question_id,
        "version": response.version,
        "chosen": list(response.chosen),
        "mark": response.mark,
    }
    return {"_id": f"attempt-{n}", "submitted_at": now(), "items": [item, *others]}


async def test_stats_endpoint_reads_incremental_sums(client: Any, staff: Any) -> None:
    question = await publish_question(client, staff.editor, staff.editor2)
    responses = [
        Response(question["id"], 1, r.mark, r.rest, r.chosen) for r in simulated(120, seed=11)
    ]
    writer = client.app[ATTEMPT_WRITER]
    for start in range(0, len(responses), 5):  # as quizzes arrive, five at a time
        chunk = enumerate(responses[start : start + 5], start)
        assert all(await asyncio.gather(*(writer.insert(attempt_with(r, n)) for n, r in chunk)))
    await fold_item_stats(client.app[DB])
    body = await (
        await client.get(
            f"/api/v1/admin/questions/{question['id']}/stats", headers=auth(staff.analyst)
        )
    ).json()
    expected = summarise(
        accumulate(responses), question_type="single", options=list("ABCD"), answer=["A"]
    )
    assert body["versions"][0]["version"] == 1
    assert body["versions"][0]["attempts"] == 120
    assert body["versions"][0]["facility"] == expected["facility"]
    assert body["versions"][0]["discrimination"] == expected["discrimination"]
    stored = await client.app[DB]["item_stats"].count_documents({"question_id": question["id"]})
    assert stored == 1
