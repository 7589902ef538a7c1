"""The editorial workflow through HTTP: create, validate, edit with optimistic concurrency,
four-eyes publishing, retire, delete, versions and audit."""

from __future__ import annotations

import asyncio
from typing import Any

from question_bank.keys import BANK
from server.kernel.keys import DB
from tests import factories
from tests.factories import auth, create_question, question_payload

BASE = "/api/v1/admin/questions"


async def test_create_returns_draft_and_stores_it(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor)
    assert created["status"] == "draft" and created["version"] == 1
    assert created["answer"] == ["A"] and created["created_by"] == created["updated_by"]
    stored = await client.app[DB]["questions"].find_one({})
    assert stored["content"]["stem"] == created["stem"]
    assert stored["search_tokens"]["stem"], "stems are segmented at write time"
    trail = await client.app[DB]["audit_log"].find({"entity_id": created["id"]}).to_list()
    assert [entry["action"] for entry in trail] == ["create"]


async def test_validation_rejects_bad_questions_in_chinese(client: Any, staff: Any) -> None:
    cases = {
        "answer_not_an_option": question_payload(answer=["E"]),
        "single_with_two_answers": question_payload(answer=["A", "B"]),
        "duplicate_option_texts": question_payload(
            options=[{"key": "A", "text": "5克"}, {"key": "B", "text": "5克"}]
        ),
        "empty_stem": question_payload(stem="   "),
        "unknown_dimension": question_payload(dimension="luck"),
        "unknown_topic": question_payload(topic="占卜"),
        "unknown_audience": question_payload(audiences=["aliens"]),
        "stem_too_long": question_payload(stem="长" * 501),
        "true_false_wrong_options": question_payload(type="true_false", answer=["A"]),
        "mass_assignment": {**question_payload(), "status": "published"},
        "operator_injection": {**question_payload(), "topic": {"$ne": None}},
    }
    for name, payload in cases.items():
        response = await client.post(BASE, json=payload, headers=auth(staff.editor))
        assert response.status == 422, name
        body = await response.json()
        assert body["error"]["code"] == "validation_error", name
        assert all(item["message"] for item in body["error"]["details"]), name
    assert await client.app[DB]["questions"].count_documents({}) == 0


async def test_exact_duplicate_is_refused_with_existing_id(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor)
    again = await client.post(BASE, json=question_payload(), headers=auth(staff.editor2))
    assert again.status == 409
    body = await again.json()
    assert body["error"]["code"] == "duplicate_question"
    assert body["error"]["details"]["existing_id"] == created["id"]


async def test_editor_cannot_publish_own_question(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor)
    own = await client.post(f"{BASE}/{created['id']}/publish", headers=auth(staff.editor))
    assert own.status == 403
    assert (await own.json())["error"]["code"] == "four_eyes_required"
    other = await client.post(f"{BASE}/{created['id']}/publish", headers=auth(staff.editor2))
    assert other.status == 200
    published = await other.json()
    assert published["status"] == "published" and published["published_version"] == 1
    assert published["reviewed_by"] != published["updated_by"]


async def test_analyst_reads_but_cannot_write_and_resident_gets_403(
    client: Any, staff: Any
) -> None:
    created = await create_question(client, staff.editor)
    assert (await client.get(f"{BASE}/{created['id']}", headers=auth(staff.analyst))).status == 200
    writes = [
        ("POST", BASE, question_payload(n=9)),
        ("PUT", f"{BASE}/{created['id']}", {**question_payload(n=9), "version": 1}),
        ("POST", f"{BASE}/{created['id']}/publish", None),
        ("DELETE", f"{BASE}/{created['id']}", None),
    ]
    for method, path, body in writes:
        response = await client.request(method, path, json=body, headers=auth(staff.analyst))
        assert response.status == 403, (method, path)
    from server.accounts import tokens
    from server.kernel.keys import KV

    resident = await tokens.issue_token(
        client.app[DB], client.app[KV], user_id="0" * 24, role="resident", ttl_seconds=60
    )
    for path in (BASE, f"{BASE}/{created['id']}", f"{BASE}/export"):
        response = await client.get(path, headers=auth(resident.token))
        assert response.status == 403
        assert "answer" not in await response.text()


async def test_workflow_submit_then_publish_then_retire(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor)
    qid = created["id"]
    submitted = await client.post(f"{BASE}/{qid}/submit", headers=auth(staff.editor))
    assert (await submitted.json())["status"] == "in_review"
    assert (await client.post(f"{BASE}/{qid}/submit", headers=auth(staff.editor))).status == 409
    assert (await client.post(f"{BASE}/{qid}/publish", headers=auth(staff.editor2))).status == 200
    assert qid in client.app[BANK].published
    retired = await client.post(f"{BASE}/{qid}/retire", headers=auth(staff.editor))
    assert (await retired.json())["status"] == "retired"
    assert qid not in client.app[BANK].published
    history = await (await client.get(f"{BASE}/{qid}/history", headers=auth(staff.analyst))).json()
    assert [entry["action"] for entry in history["items"]] == [
        "create",
        "submit",
        "publish",
        "retire",
    ]


async def test_stale_version_is_409_never_silent_overwrite(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor)
    path = f"{BASE}/{created['id']}"
    first = await client.put(
        path, json={**question_payload(n=1), "version": 1}, headers=auth(staff.editor)
    )
    assert first.status == 200 and (await first.json())["version"] == 2
    stale = await client.put(
        path, json={**question_payload(n=2), "version": 1}, headers=auth(staff.editor2)
    )
    assert stale.status == 409
    assert (await stale.json())["error"]["details"]["current_version"] == 2
    stored = await client.app[DB]["questions"].find_one({})
    assert stored["content"]["stem"] == question_payload(n=1)["stem"]


async def test_concurrent_edits_exactly_one_wins(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor)
    path = f"{BASE}/{created['id']}"
    for round_number, version in enumerate(range(1, 6)):  # several rounds: races are rare events
        edits = [
            client.put(
                path,
                json={**question_payload(n=100 * round_number + i), "version": version},
                headers=auth(token),
            )
            for i, token in enumerate([staff.editor, staff.editor2] * 4)
        ]
        statuses = sorted([r.status for r in await asyncio.gather(*edits)])
        assert statuses == [200] + [409] * 7, (version, statuses)
    stored = await client.app[DB]["questions"].find_one({})
    assert stored["version"] == 6
    versions = await client.app[DB]["question_versions"].count_documents(
        {"question_id": created["id"]}
    )
    assert versions == 6


async def test_editing_published_question_keeps_serving_the_published_version(
    client: Any, staff: Any
) -> None:
    published = await factories.publish_question(client, staff.editor, staff.editor2)
    qid = published["id"]
    edited = await client.put(
        f"{BASE}/{qid}",
        json={**question_payload(n=5, stem="修改后的题干：成年人每天食盐建议上限？"), "version": 1},
        headers=auth(staff.editor),
    )
    body = await edited.json()
    assert body["status"] == "draft" and body["version"] == 2 and body["published_version"] == 1
    served = client.app[BANK].published[qid]
    assert served.version == 1 and served.stem == published["stem"]
    version_one = await client.app[DB]["question_versions"].find_one(
        {"question_id": qid, "version": 1}
    )
    assert version_one["content"]["stem"] == published["stem"]
    # The editor who edited can't publish; another can, and the new version is served.
    assert (await client.post(f"{BASE}/{qid}/publish", headers=auth(staff.editor))).status == 403
    assert (await client.post(f"{BASE}/{qid}/publish", headers=auth(staff.editor2))).status == 200
    assert client.app[BANK].published[qid].version == 2


async def test_only_never_published_drafts_can_be_deleted(client: Any, staff: Any) -> None:
    draft = await create_question(client, staff.editor, n=1)
    published = await factories.publish_question(client, staff.editor, staff.editor2, n=2)
    assert (
        await client.delete(f"{BASE}/{published['id']}", headers=auth(staff.editor))
    ).status == 409
    assert (await client.delete(f"{BASE}/{draft['id']}", headers=auth(staff.editor))).status == 204
    assert (await client.get(f"{BASE}/{draft['id']}", headers=auth(staff.editor))).status == 404
    # Deleted content may be written again.
    assert (
        await client.post(BASE, json=question_payload(n=1), headers=auth(staff.editor))
    ).status == 201


async def test_unknown_and_malformed_ids_are_404(client: Any, staff: Any) -> None:
    for qid in ("0123456789abcdef01234567", "not-an-id"):
        response = await client.get(f"{BASE}/{qid}", headers=auth(staff.editor))
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "question_not_found"


async def test_list_filters_and_pages(client: Any, staff: Any) -> None:
    for n in range(5):
        await create_question(client, staff.editor, n=n, topic="农业" if n % 2 else "健康")
    listed = await (
        await client.get(f"{BASE}?topic=农业&page_size=1", headers=auth(staff.analyst))
    ).json()
    assert listed["total"] == 2 and len(listed["items"]) == 1 and listed["page_size"] == 1
    assert all(item["topic"] == "农业" for item in listed["items"])
    second = await (
        await client.get(f"{BASE}?topic=农业&page_size=1&page=2", headers=auth(staff.analyst))
    ).json()
    assert second["items"][0]["id"] != listed["items"][0]["id"]
    bad = await client.get(f"{BASE}?page_size=500", headers=auth(staff.analyst))
    assert bad.status == 422
