"""The literacy assessment through HTTP: the standard form, 100-point scoring, one per
month, the profile snapshot, and the cells that feed the estimates (and only assessments)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from question_bank.assembly import ASSESSMENT_BLUEPRINT
from question_bank.keys import BANK
from scoring.assessment import service as assessment_service
from scoring.assessment import storage as cell_storage
from scoring.quizzes import service as quiz_service
from server.kernel.keys import DB, KV
from tests.factories import auth, correct_answers, resident

QUIZZES = "/api/v1/quizzes"


async def start(client: Any, token: str, **body: Any) -> Any:
    return await client.post(QUIZZES, json={"mode": "assessment", **body}, headers=auth(token))


async def submit(client: Any, token: str, quiz: dict[str, Any], answers: Any) -> Any:
    return await client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
    )


def answers_with(client: Any, quiz: dict[str, Any], right: dict[str, int]) -> list[Any]:
    """Right answers for the first `right[dimension]` items of each dimension, wrong after."""
    bank, taken = client.app[BANK].published, dict.fromkeys(right, 0)
    answers = []
    for question, correct in zip(quiz["questions"], correct_answers(client, quiz), strict=True):
        dimension = bank[question["id"]].dimension
        if taken[dimension] < right[dimension]:
            answers.append(correct)
        else:
            wrong = [o["key"] for o in question["options"] if o["key"] not in correct["choice"]]
            answers.append({"question_id": question["id"], "choice": wrong[:1]})
        taken[dimension] += 1
    return answers


async def cell_docs(client: Any) -> list[dict[str, Any]]:
    """The stored cells, with the ids applied to each in a fixed order (a rebuild adds them in
    another order than the residents submitted)."""
    docs = await client.app[DB][cell_storage.CELLS].find({}).to_list()
    for doc in docs:
        doc.pop("rebuild", None)  # the tag of the rebuild that wrote it, not a sum
        assert len(doc["applied"]) == len(set(doc["applied"])) == doc["n"]
        doc["applied"] = sorted(doc["applied"])
    return sorted(docs, key=lambda d: d["_id"])


async def test_assessment_is_a_standard_form_without_answers(resident_client: Any) -> None:
    token = await resident(resident_client, "form")
    response = await start(resident_client, token)
    assert response.status == 201, await response.text()
    quiz, raw = await response.json(), await response.text()
    assert quiz["mode"] == "assessment" and len(quiz["questions"]) == 30
    bank = resident_client.app[BANK].published
    counts = {d: 0 for d in ASSESSMENT_BLUEPRINT}
    for question in quiz["questions"]:
        assert set(question) == {"id", "type", "stem", "options"}
        counts[bank[question["id"]].dimension] += 1
        assert bank[question["id"]].explanation not in raw or not bank[question["id"]].explanation
    assert counts == ASSESSMENT_BLUEPRINT
    for forbidden in ('"answer"', '"explanation"', '"dimension"'):
        assert forbidden not in raw


async def test_scores_to_100_in_four_dimensions_with_an_inclusive_tier(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "score")
    quiz = await (await start(resident_client, token)).json()
    # 9/12 knowledge = 30 points, 4/6 in the others = 13.33 each: exactly 70, literate.
    right = {"knowledge": 9, "method": 4, "spirit": 4, "application": 4}
    response = await submit(
        resident_client, token, quiz, answers_with(resident_client, quiz, right)
    )
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["total"] == 70.0 and result["tier"] == "literate"
    assert result["dimension_scores"] == {
        "knowledge": 30.0,
        "method": 13.33,
        "spirit": 13.33,
        "application": 13.33,
    }
    assert result["correct_count"] == 21 and result["points"] == 0
    assert all(r["explanation"] is not None for r in result["results"])
    stored = await resident_client.app[DB]["attempts"].find_one({"mode": "assessment"})
    assert stored["assessment"]["literate"] is True
    assert stored["assessment"]["total_hundredths"] == 7000


async def test_one_item_below_the_cut_off_is_basic(resident_client: Any) -> None:
    token = await resident(resident_client, "basic")
    quiz = await (await start(resident_client, token)).json()
    # 20 of 30: 200/3 = 66.666…, shown rounded down so it never looks like 70.
    right = {"knowledge": 8, "method": 4, "spirit": 4, "application": 4}
    result = await (
        await submit(resident_client, token, quiz, answers_with(resident_client, quiz, right))
    ).json()
    assert result["total"] == 66.66 and result["tier"] == "basic"


async def test_a_second_assessment_in_the_month_is_refused(resident_client: Any) -> None:
    token = await resident(resident_client, "twice")
    first = await (await start(resident_client, token)).json()
    again = await (await start(resident_client, token)).json()
    assert again == first, "a second tap before submitting resumes the same assessment"
    assert (await submit(resident_client, token, first, [])).status == 200
    refused = await start(resident_client, token)
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "assessment_already_taken" and "每月只能测评一次" in error["message"]


async def test_concurrent_starts_share_one_assessment(resident_client: Any) -> None:
    token = await resident(resident_client, "race")
    responses = await asyncio.gather(*(start(resident_client, token) for _ in range(6)))
    quizzes = {(await r.json())["quiz_id"] for r in responses}
    assert len(quizzes) == 1


async def test_an_assessment_needs_a_complete_profile(resident_client: Any) -> None:
    response = await resident_client.post("/api/v1/auth/wechat", json={"code": "ok-bare"})
    token = (await response.json())["token"]
    refused = await start(resident_client, token)
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "profile_incomplete"


async def test_retried_submit_counts_once_in_the_cells(resident_client: Any) -> None:
    token = await resident(resident_client, "retry")
    quiz = await (await start(resident_client, token)).json()
    answers = correct_answers(resident_client, quiz)
    results = await asyncio.gather(
        *(submit(resident_client, token, quiz, answers) for _ in range(5))
    )
    bodies = [await r.json() for r in results]
    assert all(r.status == 200 for r in results) and all(b == bodies[0] for b in bodies)
    assert bodies[0]["total"] == 100.0 and bodies[0]["tier"] == "advanced"
    docs = await cell_docs(resident_client)
    assert sorted(d["period"] for d in docs) == sorted(
        [docs[0]["period"][:4], docs[0]["period"][:7]]
    )
    assert all(d["n"] == 1 and d["literate"] == 1 and d["tiers"] == {"advanced": 1} for d in docs)
    assert all(d["dims"]["knowledge"] == {"s": 4000, "ss": 16_000_000} for d in docs)


async def test_the_profile_snapshot_keeps_history_when_the_profile_changes(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "moves", {"township_code": "450223104"})
    quiz = await (await start(resident_client, token)).json()
    await submit(resident_client, token, quiz, [])
    moved = await resident_client.put(
        "/api/v1/me",
        json={
            "township_code": "450223105",
            "birth_year": 1980,
            "gender": "female",
            "group": "farmer",
            "education": "junior",
        },
        headers=auth(token),
    )
    assert moved.status == 200
    stored = await resident_client.app[DB]["attempts"].find_one({"mode": "assessment"})
    assert stored["profile"]["township_code"] == "450223104"
    assert {d["township_code"] for d in await cell_docs(resident_client)} == {"450223104"}


async def test_only_assessments_feed_the_cells(resident_client: Any) -> None:
    token = await resident(resident_client, "daily")
    for mode, extra in (("daily", {}), ("practice", {"topic": "健康"}), ("contest", {})):
        quiz = await (await start(resident_client, token, mode=mode, **extra)).json()
        response = await submit(
            resident_client, token, quiz, correct_answers(resident_client, quiz)
        )
        assert response.status == 200
        assert "tier" not in await response.json()
    assert await cell_docs(resident_client) == []


async def test_only_the_first_assessment_of_a_year_counts_in_the_year(
    resident_client: Any,
) -> None:
    """A resident who already took one earlier this year counts in this month only."""
    token = await resident(resident_client, "returning")
    me = await (await resident_client.get("/api/v1/me", headers=auth(token))).json()
    quiz = await (await start(resident_client, token)).json()
    year = quiz["deadline"][:4]
    db = resident_client.app[DB]
    await db["assessment_firsts"].insert_one(
        {"_id": f"{me['id']}:{year}", "attempt_id": "an-earlier-one"}
    )
    await db["attempts"].insert_one({"_id": "an-earlier-one", "user_id": me["id"]})
    await submit(resident_client, token, quiz, [])
    assert [len(d["period"]) for d in await cell_docs(resident_client)] == [7]


async def test_a_first_of_year_marker_for_an_attempt_never_stored_is_taken_over(
    resident_client: Any,
) -> None:
    """An earlier submit claimed the year but failed to store and expired: not a first."""
    token = await resident(resident_client, "unlucky")
    me = await (await resident_client.get("/api/v1/me", headers=auth(token))).json()
    quiz = await (await start(resident_client, token)).json()
    await resident_client.app[DB]["assessment_firsts"].insert_one(
        {"_id": f"{me['id']}:{quiz['deadline'][:4]}", "attempt_id": "never-stored"}
    )
    await submit(resident_client, token, quiz, [])
    assert sorted(len(d["period"]) for d in await cell_docs(resident_client)) == [4, 7]


async def test_rebuild_reproduces_the_incremental_cells_exactly(resident_client: Any) -> None:
    profiles = [
        {
            "township_code": "450223101",
            "birth_year": 1990,
            "gender": "male",
            "group": "worker",
            "education": "college_plus",
        },
        {
            "township_code": "450223101",
            "birth_year": 1990,
            "gender": "male",
            "group": "worker",
            "education": "college_plus",
        },
        {
            "township_code": "450223203",
            "birth_year": 1950,
            "gender": "female",
            "group": "elderly",
            "education": "primary_or_less",
        },
        {
            "township_code": "450223202",
            "birth_year": 2010,
            "gender": "female",
            "group": "youth",
            "education": "junior",
        },
    ]
    for index, profile in enumerate(profiles):
        token = await resident(resident_client, f"r{index}", profile)
        quiz = await (
            await start(resident_client, token, channel="village-qr" if index else None)
        ).json()
        right = {
            "knowledge": 12 - index * 3,
            "method": 6 - index,
            "spirit": index,
            "application": 3,
        }
        assert (
            await submit(resident_client, token, quiz, answers_with(resident_client, quiz, right))
        ).status == 200
    before = await cell_docs(resident_client)
    assert sum(d["n"] for d in before) == 8  # four residents, each in a month and a year
    assert await quiz_service.rebuild_cells(resident_client.app[DB]) == len(before)
    after = await cell_docs(resident_client)
    assert after == before


async def test_a_stored_assessment_missed_by_the_cells_is_counted_by_the_sweep(
    resident_client: Any,
) -> None:
    """As if the process stopped between storing the attempt and counting it."""
    token = await resident(resident_client, "crash")
    quiz = await (await start(resident_client, token)).json()
    await submit(resident_client, token, quiz, correct_answers(resident_client, quiz))
    db = resident_client.app[DB]
    counted = await cell_docs(resident_client)
    await db[cell_storage.CELLS].delete_many({})
    await db["attempts"].update_many({}, {"$set": {"cells_pending": True}})
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await quiz_service.count_uncounted(db, before=later) == 1
    assert await cell_docs(resident_client) == counted
    assert await quiz_service.count_uncounted(db, before=later) == 0, "counted once, marked"


async def test_an_assessment_counts_once_however_often_and_by_whomever_it_is_applied(
    resident_client: Any,
) -> None:
    """Retries after a timed-out cell write, a second process and the sweep all applying the
    same stored assessment at once (the cell remembers the attempts it took)."""
    token = await resident(resident_client, "retried")
    quiz = await (await start(resident_client, token)).json()
    await submit(resident_client, token, quiz, correct_answers(resident_client, quiz))
    db = resident_client.app[DB]
    counted = await cell_docs(resident_client)
    attempt = await db["attempts"].find_one({"mode": "assessment"})
    await asyncio.gather(*(assessment_service.apply(db, attempt) for _ in range(20)))
    await db["attempts"].update_many({}, {"$set": {"cells_pending": True}})
    later = datetime.now(UTC) + timedelta(minutes=5)
    await asyncio.gather(*(quiz_service.count_uncounted(db, before=later) for _ in range(3)))
    assert await cell_docs(resident_client) == counted
    assert sum(d["n"] for d in counted) == 2  # its month and its year


async def test_rebuild_marks_what_it_counted_so_the_sweep_does_not_add_it_again(
    resident_client: Any,
) -> None:
    token = await resident(resident_client, "rebuilt")
    quiz = await (await start(resident_client, token)).json()
    await submit(resident_client, token, quiz, [])
    db = resident_client.app[DB]
    await db["attempts"].update_many({}, {"$set": {"cells_pending": True}})
    await quiz_service.rebuild_cells(db)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await quiz_service.count_uncounted(db, before=later) == 0
    assert all(d["n"] == 1 for d in await cell_docs(resident_client))


async def test_cell_sums_do_not_wrap_at_32_bits(resident_client: Any) -> None:
    db = resident_client.app[DB]
    big = {"total.ss": 100_000_000}
    for i in range(30):
        await cell_storage.apply_once(
            db, cell_id="c", fields={"period": "2026"}, inc=big, attempt_id=f"a{i}"
        )
    stored = await db[cell_storage.CELLS].find_one({"_id": "c"})
    assert stored["total"]["ss"] == 3_000_000_000


async def test_a_campaign_code_cannot_pass_for_self_initiated(resident_client: Any) -> None:
    token = await resident(resident_client, "selfish")
    refused = await start(resident_client, token, channel="self")
    assert refused.status == 422 and "self" in (await refused.json())["error"]["message"]


async def test_an_assessment_builds_no_leaderboard(resident_client: Any) -> None:
    """An assessment earns no points, so submitting one must not rebuild the boards (a
    rebuild reads every attempt of the period: done for each township's first assessment,
    that made a county's assessments quadratic in time)."""
    token = await resident(resident_client, "no-board")
    quiz = await (await start(resident_client, token)).json()
    assert (await submit(resident_client, token, quiz, [])).status == 200
    kv = resident_client.app[KV]
    assert [key async for key in kv.redis.scan_iter(match=kv.key("lb", "*"))] == []
