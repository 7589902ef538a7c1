"""Resource limits (OWASP API4) through the real app: body limits per route (checked against
Content-Length before reading, and counted while reading), search and page-size caps, slow
bodies and slow headers cut off, and one client's 429s never slowing another client."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from content.models import ArticleContent, ArticleCreate
from scoring.quizzes.models import BatchSubmit
from server.county.models import CensusPut
from server.county.vocab import AUDIENCE_LABELS, DIMENSION_LABELS, TOPICS
from server.kernel.http import JSON_MAX_BODY, spec_of
from server.kernel.keys import DB
from server.kernel.models import PAGE_SIZE_MAX, SEARCH_MAX
from server.workers import make_runner
from tests.conftest import make_settings
from tests.factories import auth, create_question, question_payload, resident

QUESTIONS = "/api/v1/admin/questions"
ARTICLES = "/api/v1/admin/articles"


# ------------------------------------------------------------------ raw HTTP helpers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def request_head(method: str, path: str, token: str, extra: str = "") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def assert_too_large(body: dict[str, Any], limit_text: str) -> None:
    error = body["error"]
    assert error["code"] == "payload_too_large"
    assert limit_text in error["message"], error["message"]


def padded_question(size: int) -> bytes:
    """A question body of at least `size` bytes (padded inside a string field)."""
    payload = question_payload(1)
    payload["explanation"] = "x" * size
    return json.dumps(payload).encode()


# ------------------------------------------------------------------ body limits


async def test_an_announced_body_over_the_limit_is_413_before_anything_is_read(
    client: Any, staff: Any
) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        # Headers only: a server that waited for the 10 MB body would never answer.
        writer.write(request_head("POST", QUESTIONS, staff.editor, "Content-Length: 10000000\r\n"))
        await writer.drain()
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
    finally:
        writer.close()
    assert status == 413
    assert_too_large(json.loads(body), "64 KB")
    assert json.loads(body)["error"]["details"] == {"max_bytes": JSON_MAX_BODY}
    assert await client.app[DB]["questions"].count_documents({}) == 0


async def test_a_chunked_body_without_length_is_counted_while_read(client: Any, staff: Any) -> None:
    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    big = await client.post(
        QUESTIONS, data=chunks(padded_question(JSON_MAX_BODY)), headers=auth(staff.editor)
    )
    assert "Content-Length" not in big.request_info.headers
    assert big.status == 413
    assert_too_large(await big.json(), "64 KB")
    # A chunked body under the limit is read whole (the limit is not a cut-off).
    small = json.dumps(question_payload(2)).encode()
    ok = await client.post(
        QUESTIONS,
        data=chunks(small),
        headers={**auth(staff.editor), "Content-Type": "application/json"},
    )
    assert ok.status == 201, await ok.text()


async def test_a_compressed_body_is_counted_after_it_is_inflated(client: Any, staff: Any) -> None:
    inflated = padded_question(2 * JSON_MAX_BODY)
    packed = gzip.compress(inflated)
    assert len(packed) < JSON_MAX_BODY // 10
    response = await client.post(
        QUESTIONS,
        data=packed,
        headers={
            **auth(staff.editor),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 413
    assert_too_large(await response.json(), "64 KB")


async def test_a_workflow_action_body_has_the_json_limit(client: Any, staff: Any) -> None:
    created = await create_question(client, staff.editor, n=3)
    path = f"{QUESTIONS}/{created['id']}/submit"
    padding = b'{"version": 1, "x": "' + b"y" * JSON_MAX_BODY + b'"}'
    refused = await client.post(
        path, data=padding, headers={**auth(staff.editor), "Content-Type": "application/json"}
    )
    assert refused.status == 413
    assert_too_large(await refused.json(), "64 KB")
    accepted = await client.post(path, json={"version": 1}, headers=auth(staff.editor))
    assert accepted.status == 200, await accepted.text()


def largest_article() -> dict[str, Any]:
    """Every field at its maximum, every character an emoji escaped as a surrogate pair."""
    limits = ArticleCreate.model_fields

    def text(field: str) -> str:
        return "\U0001f600" * _max_length(limits[field].metadata)

    def url(name: str) -> str:
        prefix = f"https://media.example.cn/{name}/"
        return prefix + "a" * (2083 - len(prefix))

    return {
        "title": text("title"),
        "summary": text("summary"),
        "body": text("body"),
        "cover_url": url("cover"),
        "media_url": url("media"),
        "topics": list(TOPICS[:4]),
        "audiences": list(AUDIENCE_LABELS),
        "dimensions": list(DIMENSION_LABELS),
        "source": text("source"),
        "author": text("author"),
    }


def _max_length(metadata: list[Any]) -> int:
    return next(m.max_length for m in metadata if getattr(m, "max_length", None))


async def test_the_largest_legitimate_article_fits_its_route_and_more_is_413(
    client: Any, staff: Any
) -> None:
    body = json.dumps(largest_article()).encode()  # ensure_ascii: 12 bytes per emoji
    limit = ArticleCreate.max_body_bytes
    assert JSON_MAX_BODY < len(body) <= limit
    created = await client.post(
        ARTICLES, data=body, headers={**auth(staff.editor), "Content-Type": "application/json"}
    )
    assert created.status == 201, (await created.text())[:300]
    over = body[:-1] + b" " * (limit - len(body) + 1) + b"}"
    refused = await client.post(
        ARTICLES, data=over, headers={**auth(staff.editor), "Content-Type": "application/json"}
    )
    assert refused.status == 413
    assert_too_large(await refused.json(), "256 KB")


async def test_a_full_census_over_64_kib_is_accepted(resident_client: Any, staff_in: Any) -> None:
    listed = await resident_client.get("/api/v1/townships?page_size=100")
    codes = [item["code"] for item in (await listed.json())["items"]]
    rows = [
        {
            "township_code": code,
            "age_band": band,
            "gender": gender,
            "education": education,
            "population": 1000,
        }
        for code in codes
        for band in ("0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70+")
        for gender in ("male", "female")
        for education in ("primary_or_less", "junior", "senior", "college_plus")
    ]
    body = json.dumps({"rows": rows}, indent=4).encode()  # as a script might write it
    assert len(body) > JSON_MAX_BODY
    response = await resident_client.put(
        "/api/v1/admin/census",
        data=body,
        headers={**auth(staff_in.admin), "Content-Type": "application/json"},
    )
    assert response.status == 200, (await response.text())[:300]
    assert (await response.json())["rows"] == len(rows)


def test_every_route_has_the_json_limit_unless_its_model_declares_more(client: Any) -> None:
    larger = {ArticleContent: 256 * 1024, CensusPut: 10 * 1024 * 1024, BatchSubmit: 512 * 1024}
    for route in client.app.router.routes():
        spec = spec_of(route.handler)
        if spec is None:
            continue
        expected = next(
            (size for model, size in larger.items() if spec.body and issubclass(spec.body, model)),
            JSON_MAX_BODY,
        )
        assert spec.max_body == expected, (route.method, _path(route))


# ------------------------------------------------------------------ query caps


async def test_search_text_is_capped_with_422_naming_q(client: Any, staff: Any) -> None:
    for path, headers in ((QUESTIONS, auth(staff.analyst)), ("/api/v1/articles", {})):
        longest = await client.get(path, params={"q": "高" * SEARCH_MAX}, headers=headers)
        assert longest.status == 200, (path, await longest.text())
        over = await client.get(path, params={"q": "高" * (SEARCH_MAX + 1)}, headers=headers)
        assert over.status == 422, path
        error = (await over.json())["error"]
        assert error["details"][0]["field"] == "q"
        assert f"最多 {SEARCH_MAX} 个字符" in error["message"]
    prefix = await client.get("/api/v1/articles/suggestions", params={"prefix": "高" * 21})
    assert prefix.status == 422
    assert (await prefix.json())["error"]["details"][0]["field"] == "prefix"


def _path(route: web.AbstractRoute) -> str:
    return route.resource.canonical if route.resource is not None else ""


def _query_models(app: web.Application) -> list[tuple[str, Any]]:
    found = []
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if spec is not None and spec.query is not None:
            found.append((f"{route.method} {_path(route)}", spec.query))
    return found


def test_every_query_parameter_is_bounded(client: Any) -> None:
    """Page sizes at most 100, every number and text parameter bounded."""
    for route, model in _query_models(client.app):
        properties = model.model_json_schema()["properties"]
        for name, schema in properties.items():
            variants = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
            for variant in variants:
                kind = variant.get("type")
                if kind == "integer" or kind == "number":
                    assert "maximum" in variant or "exclusiveMaximum" in variant, (route, name)
                if kind == "string":
                    bounded = {"maxLength", "pattern", "enum", "const"} & set(variant)
                    assert bounded, (route, name)
            if name in ("page_size", "limit"):
                assert variants[0]["maximum"] <= PAGE_SIZE_MAX, (route, name)


async def test_page_size_over_100_is_422_on_every_paged_route(
    resident_client: Any, staff_in: Any
) -> None:
    token = await resident(resident_client, "pager")
    checked = 0
    for route in resident_client.app.router.routes():
        spec = spec_of(route.handler)
        if route.method != "GET" or spec is None or spec.query is None:
            continue
        if "page_size" not in spec.query.model_fields:
            continue
        path = _path(route).replace("{", "").replace("}", "")
        if spec.roles is None or "resident" in spec.roles:
            headers = auth(token) if spec.roles else {}
        else:
            role = sorted(spec.roles)[0]
            # helper routes: an admin may call them too, and needs no township scope
            headers = auth(staff_in.admin if role == "helper" else staff_in.for_role(role))
        response = await resident_client.get(path, params={"page_size": 101}, headers=headers)
        assert response.status == 422, (path, response.status)
        error = (await response.json())["error"]
        assert error["details"][0]["field"] == "page_size"
        assert "不能大于 100" in error["message"]
        checked += 1
    assert checked >= 6


# ------------------------------------------------------------------ slow clients


async def test_a_body_sent_one_byte_a_second_is_cut_off_at_the_deadline(
    resident_client: Any,
) -> None:
    slow_token = await resident(resident_client, "slow")
    other_token = await resident(resident_client, "other")
    reader, writer = await asyncio.open_connection(resident_client.host, resident_client.port)
    body = json.dumps({"mode": "practice"}).encode().ljust(60)

    async def trickle() -> None:
        writer.write(
            request_head("POST", "/api/v1/quizzes", slow_token, f"Content-Length: {len(body)}\r\n")
        )
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    sender = asyncio.create_task(trickle())
    began = time.monotonic()
    response = asyncio.create_task(read_response(reader))
    others = []
    try:
        while not response.done() and time.monotonic() - began < 15:
            started = time.monotonic()
            me = await resident_client.get("/api/v1/me", headers=auth(other_token))
            others.append((me.status, time.monotonic() - started))
            await asyncio.sleep(0.5)
        status, _, reply = await asyncio.wait_for(response, 1)
    finally:
        sender.cancel()
        writer.close()
    elapsed = time.monotonic() - began
    assert status == 503
    assert json.loads(reply)["error"]["code"] == "deadline_exceeded"
    assert 9 <= elapsed <= 12.5, elapsed  # the residents' 10 s deadline, not the body's 60 s
    assert len(others) >= 10
    assert all(s == 200 and seconds < 1 for s, seconds in others), others


@pytest.fixture
async def served(services: Any, cleanup: Any) -> AsyncIterator[tuple[str, int]]:
    """The app on a real socket with the runner `serve` uses, keep-alive timeout 1 s."""
    from server.app import create_app

    settings = make_settings(services, keepalive_timeout_seconds=1)
    cleanup(settings)
    runner = make_runner(create_app(settings), settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield host, port
    await runner.cleanup()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    began = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(1024), seconds):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - began


async def test_headers_sent_slowly_get_the_connection_closed(served: tuple[str, int]) -> None:
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")

    async def drip() -> None:
        for n in range(20):
            await asyncio.sleep(0.2)
            writer.write(f"X-Slow-{n}: 1\r\n".encode())

    dripping = asyncio.create_task(drip())
    try:
        # Meanwhile another client is served at once.
        other_reader, other_writer = await asyncio.open_connection(host, port)
        other_writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        status, _, _ = await asyncio.wait_for(read_response(other_reader), 1)
        assert status == 200
        other_writer.close()
        assert await closed_within(reader, 5) < 3
    finally:
        dripping.cancel()
        writer.close()


async def test_an_idle_keep_alive_connection_is_closed(served: tuple[str, int]) -> None:
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        status, headers, _ = await asyncio.wait_for(read_response(reader), 2)
        assert status == 200 and headers.get("connection", "keep-alive") != "close"
        assert await closed_within(reader, 5) < 3
    finally:
        writer.close()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\n"
        + b"".join(f"X-H{n}: 1\r\n".encode() for n in range(130))
        + b"\r\n",
    ],
    ids=["request-line", "header-line", "header-count"],
)
async def test_oversized_request_heads_are_refused(served: tuple[str, int], head: bytes) -> None:
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head)
        status, _, _ = await asyncio.wait_for(read_response(reader), 2)
        assert status == 400
    finally:
        writer.close()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer SECRET\x01TOKEN\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["control-character", "header-line", "broken-chunk"],
)
async def test_a_malformed_request_is_a_warning_not_an_error_with_a_traceback(
    served: tuple[str, int], head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Not valid HTTP is the client's fault: 400, one warning naming the fault, and none of
    the request's bytes (they may carry a token) in the log."""
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    with caplog.at_level(logging.INFO):
        try:
            writer.write(head)
            status, _, _ = await asyncio.wait_for(read_response(reader), 2)
            assert status == 400
        finally:
            writer.close()
        await asyncio.sleep(0.1)
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelno for r in records] == [logging.WARNING], records
    assert records[0].exc_info is None and getattr(records[0], "fault", "")
    assert not any("SECRET" in r.getMessage() or r.exc_info for r in caplog.records)


# ------------------------------------------------------------------ rate limits


async def test_one_clients_429s_never_slow_another(services: Any, client_for: Any) -> None:
    client = await client_for(make_settings(services, rate_limit_requests=5))

    async def timed(token: str) -> tuple[int, float]:
        started = time.monotonic()
        response = await client.get("/api/v1/townships", headers=auth(token))
        await response.read()
        return response.status, time.monotonic() - started

    async def latencies(token: str) -> list[tuple[int, float]]:
        return [await timed(token) for _ in range(5)]

    quiet = await latencies("quiet-neighbour")
    flooding = True
    limited: list[int] = []

    async def flood() -> None:
        while flooding:
            status, _ = await timed("flooder")
            limited.append(status)

    flooders = [asyncio.create_task(flood()) for _ in range(4)]
    try:
        await asyncio.sleep(0.3)  # the flooder is over its budget by now
        busy = [await latencies(f"neighbour-{n}") for n in range(4)]
    finally:
        flooding = False
        await asyncio.gather(*flooders)
    assert limited.count(429) >= 20 and limited.count(200) <= 5
    during = [seconds for run in busy for status, seconds in run if status == 200]
    assert all(status == 200 for run in busy for status, _ in run), busy
    assert all(status == 200 for status, _ in quiet)
    baseline = statistics.median(seconds for _, seconds in quiet)
    assert statistics.median(during) < baseline + 0.1, (baseline, during)
    assert max(during) < 1.0, during
