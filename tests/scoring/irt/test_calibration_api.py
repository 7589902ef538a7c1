"""IRT through the HTTP API, on stored attempts with known item parameters: a calibration job
(one at a time, a double tap gets the running job), the parameters on the question endpoint,
equated assessment scores once the bank is calibrated, re-scoring of stored assessments, and
a planted DIF item listed, kept off assessment forms and released by an editor's review."""

from __future__ import annotations

import asyncio
import math
import os
import random
import sys
from asyncio.subprocess import PIPE
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from question_bank.assembly import ASSESSMENT_BLUEPRINT
from question_bank.keys import BANK
from scoring.assessment.scoring import display, score, tier_of
from scoring.irt.equating import expected_total, reference_from_items
from scoring.irt.model import difficulty_prior
from scoring.irt.theta import eap
from scoring.quizzes import service as quiz_service
from server.kernel.keys import DB, KV, SETTINGS
from tests.factories import auth, correct_answers, resident, staff_tokens

IRT = "/api/v1/admin/irt"
QUIZZES = "/api/v1/quizzes"
PERSONS = 2_400
STORED_ASSESSMENTS = 150
DIF_SHIFT = 0.8


def simulate_attempts(
    bank: dict[str, Any],
    *,
    seed: int,
    planted: str,
    population_mean: float = 0.0,
    prefix: str = "sim",
) -> tuple[list[Any], Any]:
    """Attempts of PERSONS residents on blueprint forms of the published bank, answered by the
    2PL with known parameters; the planted item is on every form and DIF_SHIFT logits harder
    for the elderly (a quarter of the residents). The first STORED_ASSESSMENTS are stored as
    assessments scored as percent correct (before any calibration). The items' true
    parameters are the same whatever the seed, which draws the residents and their answers."""
    fixed = np.random.default_rng(2026)
    ids = sorted(bank)
    truth = {
        qid: (
            float(np.clip(fixed.lognormal(0.0, 0.25), 0.6, 2.0)),
            difficulty_prior(bank[qid].difficulty) + float(fixed.normal(0.0, 0.4)),
        )
        for qid in ids
    }
    rng = np.random.default_rng(seed)
    by_dimension = {d: [q for q in ids if bank[q].dimension == d] for d in ASSESSMENT_BLUEPRINT}
    start = datetime.now(UTC) - timedelta(days=20)
    docs = []
    for person in range(PERSONS):
        theta = float(rng.normal(population_mean))
        elderly = person % 4 == 0
        form = {planted}
        for dimension, count in ASSESSMENT_BLUEPRINT.items():
            pool = [q for q in by_dimension[dimension] if q != planted]
            need = count - sum(1 for q in form if bank[q].dimension == dimension)
            form.update(rng.choice(pool, size=need, replace=False).tolist())
        items = []
        for qid in sorted(form):
            a, b = truth[qid]
            if qid == planted and elderly:
                b += DIF_SHIFT
            right = rng.random() < 1 / (1 + math.exp(-a * (theta - b)))
            items.append(
                {"question_id": qid, "version": bank[qid].version, "mark": 1.0 if right else 0.0}
            )
        doc: dict[str, Any] = {
            "_id": f"{prefix}-{person}:1",
            "user_id": f"{prefix}-{person}",
            "mode": "practice",
            "submitted_at": start + timedelta(seconds=person),
            "items": items,
            "profile": {
                "township_code": "450223101",
                "age_band": "60-69" if elderly else "30-39",
                "gender": "female" if rng.random() < 0.5 else "male",
                "group": "elderly" if elderly else "worker",
                "education": "junior",
            },
        }
        if person < STORED_ASSESSMENTS and prefix == "sim":
            doc["mode"] = "assessment"
            doc["assessment"] = percent_scored(items, bank)
            doc["periods"] = {"month": "2026-11", "year": "2026"}
        docs.append(doc)
    return docs, truth


def percent_scored(items: list[Any], bank: dict[str, Any]) -> dict[str, Any]:
    from scoring.quizzes.assessment_mode import score_block

    marks = {f"{i['question_id']}:{i['version']}": i["mark"] for i in items}
    dimensions = {
        f"{i['question_id']}:{i['version']}": bank[i["question_id"]].dimension for i in items
    }
    block = score_block(marks, dimensions, None, {})
    return {**block, "month": "2026-11", "counts_in": ["2026-11", "2026"]}


async def wait_for_job(client: Any, token: str, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        response = await client.get(f"{IRT}/jobs/{job_id}", headers=auth(token))
        assert response.status == 200, await response.text()
        job = await response.json()
        if job["status"] in ("done", "failed"):
            return dict(job)
        await asyncio.sleep(0.1)
    raise AssertionError("the calibration job did not finish in 60 s")


async def test_calibration_over_stored_attempts_equates_assessments_and_catches_dif(
    resident_client: Any,
) -> None:
    client, db = resident_client, resident_client.app[DB]
    bank = client.app[BANK].published
    planted = sorted(q for q in bank if bank[q].dimension == "knowledge")[0]
    docs, truth = simulate_attempts(bank, seed=7, planted=planted)
    await db["attempts"].insert_many(docs)
    tokens = await staff_tokens(client)

    # Before any calibration the question shows no parameters and assessments are raw.
    question = await (
        await client.get(f"/api/v1/admin/questions/{planted}", headers=auth(tokens.editor))
    ).json()
    assert question["irt"] is None

    first, second = await asyncio.gather(
        client.post(f"{IRT}/calibrate", headers=auth(tokens.analyst)),
        client.post(f"{IRT}/calibrate", headers=auth(tokens.admin)),
    )
    assert first.status == second.status == 202
    job_id = (await first.json())["job_id"]
    assert (await second.json())["job_id"] == job_id  # one calibration at a time
    job = await wait_for_job(client, tokens.analyst, job_id)
    assert job["status"] == "done", job
    summary = job["summary"]
    assert summary["persons"] == PERSONS and summary["responses"] == PERSONS * 30
    assert summary["scale"] == "created, in force after rescore"
    assert summary["linking"] == {"method": "new scale"}
    assert client.app[BANK].scale is None  # not in force yet: nothing is scored on it

    # Parameters recovered from the stored answers (and shown on the question endpoint).
    stored = {d["question_id"]: d async for d in db["item_params"].find({})}
    calibrated = [q for q in bank if q != planted and stored[q]["model"] in ("2pl", "rasch")]
    assert len(calibrated) >= 0.9 * (len(bank) - 1)
    true_b = [truth[q][1] for q in calibrated]
    assert np.corrcoef(true_b, [stored[q]["b"] for q in calibrated])[0, 1] >= 0.9
    other = calibrated[0]
    shown = await (
        await client.get(f"/api/v1/admin/questions/{other}", headers=auth(tokens.editor))
    ).json()
    assert shown["irt"]["b"] == stored[other]["b"] and shown["irt"]["n"] == stored[other]["n"]
    assert set(shown["irt"]) >= {"a", "b", "se_a", "se_b", "n", "fit", "calibrated_at"}

    # The planted item is class C for the elderly, listed for editors and off assessments.
    assert stored[planted]["dif"]["class"] == "C"
    assert stored[planted]["dif"]["groups"]["elderly"]["delta"] < -1.5
    clean_c = [q for q in calibrated if (stored[q].get("dif") or {}).get("class") == "C"]
    assert len(clean_c) <= 0.05 * len(calibrated)
    listed = await (await client.get(f"{IRT}/dif", headers=auth(tokens.editor))).json()
    assert planted in [entry["question_id"] for entry in listed["items"]]
    assert client.app[BANK].irt[f"{planted}:{bank[planted].version}"].held_from_assessment
    stats = await (
        await client.get(f"/api/v1/admin/questions/{planted}/stats", headers=auth(tokens.editor))
    ).json()
    assert stats["flagged"] and stats["irt"]["dif"]["class"] == "C"

    # `rescore` puts the scale in force and moves the stored assessments onto it, cells too.
    outcome = await quiz_service.rescore_with_scale(db, client.app[KV])
    assert outcome["scale"] == "irt"
    assert outcome["assessments"] == outcome["changed"] == STORED_ASSESSMENTS
    rescored = (
        await db["attempts"].find({"_id": {"$regex": "^sim-"}, "mode": "assessment"}).to_list()
    )
    assert all(a["assessment"]["scale"] == "irt" for a in rescored)
    cells = await db["literacy_cells"].find({"period": "2026-11"}).to_list()
    assert sum(c["n"] for c in cells) == STORED_ASSESSMENTS
    assert sum(c["literate"] for c in cells) == sum(a["assessment"]["literate"] for a in rescored)
    await client.app[BANK].load(db)
    assert client.app[BANK].scale is not None

    # A resident's assessment is now equated: total = expected score on the reference form.
    token = await resident(client, "equated")
    quiz = await (
        await client.post("/api/v1/quizzes", json={"mode": "assessment"}, headers=auth(token))
    ).json()
    assert planted not in [q["id"] for q in quiz["questions"]]
    rng = random.Random(3)
    answers = [
        a if rng.random() < 0.6 else {"question_id": a["question_id"], "choice": []}
        for a in correct_answers(client, quiz)
    ]
    response = await client.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit", json={"answers": answers}, headers=auth(token)
    )
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["scale"] == "irt" and 0 < result["theta_se"] < 1
    right = {r["question_id"]: r["correct"] for r in result["results"]}
    params = client.app[BANK].irt
    keys = [f"{q['id']}:{bank[q['id']].version}" for q in quiz["questions"]]
    theta, _ = eap(
        [params[k].a for k in keys],
        [params[k].b for k in keys],
        [right[k.split(":")[0]] for k in keys],
    )
    reference = reference_from_items(list(client.app[BANK].scale.reference))
    assert abs(result["theta"] - theta) < 1e-3
    assert abs(result["total"] - expected_total(theta, reference)) < 0.011
    raw = score((bank[q].dimension, 1.0 if right[q] else 0.0) for q in right)
    assert result["raw_total"] == display(raw.total)
    assert result["tier"] == tier_of(result["total"])

    # An editor keeps the planted item after review: it may be drawn again; audited.
    reviewed = await client.post(
        f"{IRT}/dif/{planted}/review",
        json={"decision": "keep", "reason": "经复核，题目表述对老年人无偏"},
        headers=auth(tokens.editor),
    )
    assert reviewed.status == 200, await reviewed.text()
    assert (await reviewed.json())["dif_review"]["decision"] == "keep"
    await client.app[BANK].load(db)
    assert not client.app[BANK].irt[f"{planted}:{bank[planted].version}"].held_from_assessment
    assert await db["access_log"].count_documents({"action": "dif_review"}) == 1


async def test_a_calibration_without_answers_finishes_and_keeps_percent_scoring(
    resident_client: Any,
) -> None:
    client = resident_client
    tokens = await staff_tokens(client)
    started = await client.post(f"{IRT}/calibrate", headers=auth(tokens.admin))
    job = await wait_for_job(client, tokens.admin, (await started.json())["job_id"])
    assert job["status"] == "done" and job["summary"]["responses"] == 0
    assert client.app[BANK].scale is None
    # Until the bank is calibrated an assessment is scored as percent correct, and says so.
    token = await resident(client, "uncalibrated")
    quiz = await (
        await client.post(QUIZZES, json={"mode": "assessment"}, headers=auth(token))
    ).json()
    submitted = await client.post(
        f"{QUIZZES}/{quiz['quiz_id']}/submit",
        json={"answers": correct_answers(client, quiz)},
        headers=auth(token),
    )
    result = await submitted.json()
    assert result["scale"] == "raw" and result["theta"] is None
    assert result["total"] == result["raw_total"] == 100.0
    missing = await client.get(f"{IRT}/jobs/not-a-job", headers=auth(tokens.admin))
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "job_not_found"


async def calibrate_through_api(client: Any, tokens: Any) -> None:
    bank = client.app[BANK].published
    planted = sorted(q for q in bank if bank[q].dimension == "knowledge")[0]
    docs, _ = simulate_attempts(bank, seed=11, planted=planted)
    await client.app[DB]["attempts"].insert_many(docs)
    started = await client.post(f"{IRT}/calibrate", headers=auth(tokens.admin))
    job = await wait_for_job(client, tokens.admin, (await started.json())["job_id"])
    assert job["status"] == "done", job
    assert job["summary"]["scale"] == "created, in force after rescore"
    assert (await quiz_service.rescore_with_scale(client.app[DB], client.app[KV]))["scale"] == "irt"
    await client.app[BANK].load(client.app[DB])


async def test_adaptive_practice_one_question_at_a_time_until_theta_is_precise(
    resident_client: Any,
) -> None:
    client = resident_client
    token = await resident(client, "adaptive")
    before = await client.post(QUIZZES, json={"mode": "adaptive"}, headers=auth(token))
    assert before.status == 409
    assert (await before.json())["error"]["code"] == "adaptive_unavailable"
    await calibrate_through_api(client, await staff_tokens(client))

    response = await client.post(QUIZZES, json={"mode": "adaptive"}, headers=auth(token))
    assert response.status == 201, await response.text()
    raw, step = await response.text(), await response.json()
    assert step["mode"] == "adaptive" and step["step"] == 1 and len(step["questions"]) == 1
    assert '"answer"' not in raw and '"explanation"' not in raw
    bank = client.app[BANK].published
    asked, results = [], []
    rng = random.Random(5)
    while True:
        question = step["questions"][0] if "questions" in step else step["next"]
        quiz_id = step["quiz_id"]
        assert question["id"] not in asked
        asked.append(question["id"])
        right = correct_answers(client, {"questions": [question]})[0]
        wrong = [o["key"] for o in question["options"] if o["key"] not in right["choice"]][:1]
        choice = right["choice"] if rng.random() < 0.6 else wrong
        url = f"{QUIZZES}/{quiz_id}/answer"
        body = {"question_id": question["id"], "choice": choice}
        answered = await client.post(url, json=body, headers=auth(token))
        assert answered.status == 200, await answered.text()
        result = await answered.json()
        assert result["correct"] == (choice == right["choice"])
        assert result["answer"] == right["choice"] and result["explanation"]
        # A repeat of the step, even with another choice, gets the first answer's result.
        other = {
            "question_id": question["id"],
            "choice": wrong if choice != wrong else right["choice"],
        }
        repeat = await client.post(url, json=other, headers=auth(token))
        assert await repeat.json() == result
        results.append(result)
        if result["next"] is None:
            assert result["quiz_id"] is None
            break
        step = result
    final = results[-1]
    assert len(asked) == 15 or final["theta_se"] <= 0.35
    assert len(asked) <= 15 and [r["step"] for r in results] == list(range(1, len(asked) + 1))
    assert final["theta_se"] < results[0]["theta_se"]
    dimensions = [bank[q].dimension for q in asked]
    assert dimensions.count("knowledge") >= len(asked) // 3  # balanced by the blueprint
    stored = await client.app[DB]["attempts"].find_one({"mode": "adaptive"})
    assert [i["question_id"] for i in stored["items"]] == asked
    assert [i["mark"] == 1.0 for i in stored["items"]] == [r["correct"] for r in results]
    assert stored["points"] == 0

    # An adaptive practice is not submitted whole; another resident gets 404 for its ticket;
    # an answer to any question but the current one is refused.
    whole = await client.post(
        f"{QUIZZES}/{step['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    assert whole.status == 409 and (await whole.json())["error"]["code"] == "adaptive_stepwise"
    stranger = await resident(client, "stranger")
    theirs = await client.post(
        f"{QUIZZES}/{step['quiz_id']}/answer",
        json={"question_id": asked[-1], "choice": ["A"]},
        headers=auth(stranger),
    )
    assert theirs.status == 404
    fresh = await (
        await client.post(QUIZZES, json={"mode": "adaptive"}, headers=auth(token))
    ).json()
    off_step = await client.post(
        f"{QUIZZES}/{fresh['quiz_id']}/answer",
        json={"question_id": "0" * 24, "choice": ["A"]},
        headers=auth(token),
    )
    assert off_step.status == 422

    # Deleting the account removes the step records and unlinks the stored practice.
    db = client.app[DB]
    assert await db["adaptive_steps"].count_documents({"user_id": stored["user_id"]}) > 0
    assert (await client.delete("/api/v1/me", headers=auth(token))).status == 204
    assert await db["adaptive_steps"].count_documents({"user_id": stored["user_id"]}) == 0
    assert (await db["attempts"].find_one({"_id": stored["_id"]}))["user_id"] is None


async def test_assessment_forms_from_the_calibrated_bank_are_equally_informative_at_the_cut(
    resident_client: Any,
) -> None:
    from scoring.irt.forms import MAX_EXPOSURE, FormAssembler
    from scoring.irt.model import information

    client = resident_client
    await calibrate_through_api(client, await staff_tokens(client))
    bank = client.app[BANK]
    assembler = FormAssembler()
    theta_cut = bank.scale.theta_cut
    infos = []
    for _ in range(1_000):
        form = assembler.form(bank)
        assert form is not None
        counts = {d: sum(1 for q in form if q.dimension == d) for d in ASSESSMENT_BLUEPRINT}
        assert counts == ASSESSMENT_BLUEPRINT and len({q.id for q in form}) == 30
        keys = [f"{q.id}:{q.version}" for q in form]
        assert not set(keys) & bank.held_from_assessment
        infos.append(sum(float(information(theta_cut, bank.irt[k].a, bank.irt[k].b)) for k in keys))
    target = assembler._state.target if assembler._state else 0.0
    assert all(abs(info - target) <= 0.10 * target + 1e-9 for info in infos)
    assert max(assembler.exposure_rates().values()) <= MAX_EXPOSURE

    # Through HTTP, a resident's assessment comes from the same assembler.
    token = await resident(client, "calibrated-form")
    quiz = await (
        await client.post(QUIZZES, json={"mode": "assessment"}, headers=auth(token))
    ).json()
    keys = [f"{q['id']}:{bank.published[q['id']].version}" for q in quiz["questions"]]
    from scoring.quizzes.assessment_mode import CALIBRATED_FORMS

    served = CALIBRATED_FORMS._state
    assert served is not None and served.generation == bank.generation
    info = sum(float(information(theta_cut, bank.irt[k].a, bank.irt[k].b)) for k in keys)
    assert abs(info - served.target) <= 0.10 * served.target + 1e-9


async def test_a_second_calibration_is_linked_onto_the_first_scale(resident_client: Any) -> None:
    client, db = resident_client, resident_client.app[DB]
    tokens = await staff_tokens(client)
    await calibrate_through_api(client, tokens)
    first = {d["question_id"]: d async for d in db["item_params"].find({})}
    scale = await db["irt_scale"].find_one({"_id": "current"})
    bank = client.app[BANK].published
    planted = sorted(q for q in bank if bank[q].dimension == "knowledge")[0]
    # A more able wave of residents: on its own it would put the items 0.5 logits easier.
    docs, _ = simulate_attempts(bank, seed=12, planted=planted, population_mean=0.5, prefix="wave")
    await db["attempts"].insert_many(docs)
    started = await client.post(f"{IRT}/calibrate", headers=auth(tokens.analyst))
    job = await wait_for_job(client, tokens.analyst, (await started.json())["job_id"])
    assert job["status"] == "done", job
    linking = job["summary"]["linking"]
    assert linking["method"] == "Stocking–Lord" and linking["anchors"] >= 10
    assert job["summary"]["scale"] == "kept"
    second = {d["question_id"]: d async for d in db["item_params"].find({})}
    anchors = [q for q in first if first[q]["model"] in ("2pl", "rasch") and q != planted]
    drift = np.array([second[q]["b"] - first[q]["b"] for q in anchors])
    assert abs(drift.mean()) < 0.1 and np.sqrt((drift**2).mean()) < 0.2
    assert await db["irt_scale"].find_one({"_id": "current"}) == scale  # the reference stays


def test_a_calibration_without_enough_shared_items_is_not_linked() -> None:
    from scoring.irt import pipeline

    responses = pipeline.FirstResponses()
    rng = np.random.default_rng(1)
    for person in range(400):
        responses.add(
            {
                "_id": f"p{person}:1",
                "user_id": f"p{person}",
                "submitted_at": datetime(2026, 11, 1, tzinfo=UTC),
                "items": [
                    {"question_id": f"{item:024d}", "version": 1, "mark": float(rng.random() < 0.6)}
                    for item in range(40)
                ],
                "profile": {},
            }
        )
    items = {f"{i:024d}:1": pipeline.ItemInfo("knowledge", 3, True) for i in range(40)}
    previous = {f"{i:024d}:1": {"model": "2pl", "a": 1.0, "b": 0.0} for i in range(5)}
    scale = {"reference": [], "theta_cut": 1.0}
    with pytest.raises(pipeline.NotLinkable, match="only 5 items"):
        pipeline.compute(
            responses, items, previous=previous, scale=scale, job_id="j", now=datetime.now(UTC)
        )


async def test_the_rescore_command_puts_the_scale_in_force_and_is_idempotent(
    resident_client: Any,
) -> None:
    client, db = resident_client, resident_client.app[DB]
    tokens = await staff_tokens(client)
    bank = client.app[BANK].published
    planted = sorted(q for q in bank if bank[q].dimension == "knowledge")[0]
    docs, _ = simulate_attempts(bank, seed=13, planted=planted)
    await db["attempts"].insert_many(docs)
    started = await client.post(f"{IRT}/calibrate", headers=auth(tokens.admin))
    job = await wait_for_job(client, tokens.admin, (await started.json())["job_id"])
    assert job["status"] == "done", job
    settings = client.app[SETTINGS]
    env = {
        **os.environ,
        "APP_ENV": "development",
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DB": settings.mongodb_db,
        "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix,
    }

    async def rescore() -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "rescore", env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode == 0, err.decode()
        return out.decode()

    first = await rescore()
    assert "scale: irt" in first and f"changed: {STORED_ASSESSMENTS}" in first, first
    stored = await db["attempts"].find({"mode": "assessment"}).to_list()
    assert len(stored) == STORED_ASSESSMENTS
    assert all(a["assessment"]["scale"] == "irt" for a in stored)
    assert "changed: 0" in await rescore()  # nothing moves twice
