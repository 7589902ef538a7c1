"""The association's dashboard, driven in headless Chromium against the real app on a real
port with real storage and the demo county: sign in through the page's own form, compare what
the page shows with what the stats API answers, and save screenshots for review under
`.artifacts/screenshots/`. Chromium is required: without it these tests fail, never skip."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import seed
from server.accounts import tokens as auth
from server.kernel.keys import DB, KV
from tests import browser, factories

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
VIEWPORTS = {"1280x720": (1280, 720, False), "phone-390x844": (390, 844, True)}
SETTLED = "['ready', 'error', 'forbidden', 'login'].includes(document.body.dataset.state)"
STATS = ("literacy?by=township", "participation?by=township", "trend", "periods")
SUPPRESSED = "样本不足，不公布"


def pct(share: float | None) -> str:
    """A share as the page writes it: JavaScript's (x * 100).toFixed(1) + '%'."""
    if share is None:
        return "—"
    # toFixed rounds the exact binary value, ties away from zero: so does this.
    return f"{Decimal(share * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def chart_option(chart_id: str) -> str:
    return f"echarts.getInstanceByDom(document.getElementById('{chart_id}')).getOption()"


# ---------- fixtures ----------


@pytest.fixture
async def county(resident_client: TestClient[Any, Any]) -> TestClient[Any, Any]:
    """The real app with the demo county (seeded by `resident_client`) and its demo year of
    assessments."""
    token = await factories.staff_token(resident_client, "analyst")
    if not await has_respondents(resident_client, token):
        await seed.seed_demo(resident_client.app[DB], assessments=True)
    assert await has_respondents(resident_client, token), "the demo seed made no assessments"
    return resident_client


async def has_respondents(client: TestClient[Any, Any], token: str) -> bool:
    periods = await get_json(client, "/api/v1/stats/periods", token)
    return any(item["respondents"] for item in periods["items"])


@pytest.fixture
async def chromium() -> AsyncIterator[browser.Browser]:
    async with browser.launch() as running:
        yield running


async def get_json(client: TestClient[Any, Any], path: str, token: str) -> Any:
    response = await client.get(path, headers=factories.auth(token))
    assert response.status == 200, await response.text()
    return await response.json()


# ---------- driving the page ----------


async def open_dashboard(
    chromium: browser.Browser, client: TestClient[Any, Any], viewport: str = "1280x720"
) -> browser.Page:
    width, height, mobile = VIEWPORTS[viewport]
    page = await chromium.new_page(width=width, height=height, mobile=mobile)
    # No animations: the screenshots show finished charts.
    await page.send(
        "Emulation.setEmulatedMedia",
        features=[{"name": "prefers-reduced-motion", "value": "reduce"}],
    )
    await page.goto(str(client.make_url("/dashboard")))
    assert await page.wait_for(SETTLED) and await state(page) == "login"
    return page


async def state(page: browser.Page) -> str:
    return str(await page.evaluate("document.body.dataset.state"))


async def settle(page: browser.Page) -> str:
    await page.wait_for(SETTLED, within=60)
    return await state(page)


async def sign_in(page: browser.Page, username: str) -> str:
    await page.type("#username", username)
    await page.type("#password", factories.PASSWORD)
    await page.evaluate("document.body.dataset.state = 'signing-in'")
    await page.click("#login-submit")
    return await settle(page)


async def shown(page: browser.Page, selector: str) -> bool:
    return bool(await page.evaluate(f"!document.querySelector('{selector}').closest('[hidden]')"))


async def screenshots(page: browser.Page, name: str) -> None:
    await asyncio.sleep(0.3)  # let the last frame paint
    await page.screenshot(SCREENSHOTS / f"{name}.png")
    await page.screenshot(SCREENSHOTS / f"{name}-full.png", full_page=True)


# ---------- what the API says ----------


async def api_figures(client: TestClient[Any, Any], period: str, group: str = "") -> dict[str, Any]:
    token = await factories.staff_token(client, "analyst")
    suffix = f"&group={group}" if group else ""
    return {
        "townships": await get_json(
            client, f"/api/v1/stats/literacy?by=township&period={period}{suffix}", token
        ),
        "groups": await get_json(client, f"/api/v1/stats/literacy?by=group&period={period}", token),
        "participation": await get_json(
            client, f"/api/v1/stats/participation?by=township&period={period}&page_size=100", token
        ),
        "trend": await get_json(client, f"/api/v1/stats/trend?year={period[:4]}", token),
        "channels": await get_json(
            client, f"/api/v1/stats/literacy?by=channel&period={period}", token
        ),
    }


async def assert_headline(page: browser.Page, figures: dict[str, Any]) -> None:
    county = figures["townships"]["county"]
    expected = SUPPRESSED if county["suppressed"] else pct(county["weighted_share"])
    assert await page.text("#county-share") == expected
    if not county["suppressed"]:
        interval = f"{pct(county['ci_low'])} – {pct(county['ci_high'])}"
        assert interval in await page.text("#county-interval")
        if county["sensitivity"] is not None:  # none for one group's county-wide row
            low, high = county["sensitivity"]["outcome_selection"]["1.5"]
            band = f"敏感性区间（Γ=1.5）{pct(low)} – {pct(high)}"
            assert band in await page.text("#county-interval")
    assert await page.text("#county-respondents") == f"{county['respondents']:,}"
    target = figures["townships"]["target"]
    if target:
        assert await page.text("#target-share") == pct(target["literate_share"])
        gap = await page.text("#target-gap")
        assert str(target["year"]) in gap
        # The API's gap is target − estimate: positive means short of the target.
        if target["gap"]:
            direction = "距目标还差" if target["gap"] > 0 else "已超过目标"
            assert f"{direction} {abs(target['gap']) * 100:.1f} 个百分点" in gap
        probability = round(target["probability_reached"] * 100)
        assert await page.text("#target-probability") == f"{probability}%"


async def assert_townships(page: browser.Page, figures: dict[str, Any]) -> None:
    rows = figures["townships"]["rows"]
    option = await page.evaluate(chart_option("chart-townships"))
    assert len(option["series"][0]["data"]) == len(rows)
    assert sorted(option["yAxis"][0]["data"]) == sorted(row["name"] for row in rows)
    table = await page.evaluate(
        "Array.from(document.querySelectorAll('#township-table tbody tr'),"
        " tr => [tr.dataset.key, tr.cells[2].textContent, tr.cells[6].textContent,"
        " tr.cells[8].textContent])"
    )
    assert len(table) == len(rows)
    by_key = {row["key"]: row for row in rows}
    for key, share, flags, band in table:
        row = by_key[key]
        assert share == (SUPPRESSED if row["suppressed"] else pct(row["weighted_share"]))
        integrity = row["integrity"]
        if integrity is None:  # one group's rows
            assert flags == band == "—"
            continue
        assert flags == f"{integrity['flagged']:,}（{integrity['excluded']:,}）"
        if row["suppressed"]:
            assert band == "—"
        else:
            low, high = row["sensitivity"]["outcome_selection"]["1.5"]
            assert band == f"{pct(low)} – {pct(high)}"
    published = [
        by_key[key]["weighted_share"] for key, *_ in table if not by_key[key]["suppressed"]
    ]
    assert published == sorted(published, reverse=True), "ranked by the API's weighted share"


async def assert_other_charts(page: browser.Page, figures: dict[str, Any]) -> None:
    groups = await page.evaluate(chart_option("chart-groups"))
    assert len(groups["series"][0]["data"]) == len(figures["groups"]["rows"])
    participation = await page.evaluate(chart_option("chart-participation"))
    assert len(participation["series"][0]["data"]) == figures["participation"]["total"]
    trend = await page.evaluate(chart_option("chart-trend"))
    assert len(trend["xAxis"][0]["data"]) == len(figures["trend"]["rows"])
    tiers = await page.evaluate(chart_option("chart-tiers"))
    published = [row for row in figures["townships"]["rows"] if not row["suppressed"]]
    assert len(tiers["series"]) == 4
    assert all(len(series["data"]) == len(published) for series in tiers["series"])
    for index in range(len(published)):  # each township's tiers add up to everyone
        assert abs(sum(series["data"][index] for series in tiers["series"]) - 1) < 1e-6
    channels = await page.evaluate(
        "Array.from(document.querySelectorAll('#channel-table tbody tr'),"
        " tr => [tr.dataset.key, tr.cells[3].textContent])"
    )
    by_channel = {row["key"]: row for row in figures["channels"]["rows"]}
    for key, share in channels:
        row = by_channel[key]
        assert share == ("—" if row["suppressed"] else pct(row["weighted_share"]))
    county = figures["townships"]["county"]
    if county["weakest_dimension"]:
        dimensions = await page.evaluate(chart_option("chart-dimensions"))
        keys = ["knowledge", "method", "spirit", "application"]
        colours = [item["itemStyle"]["color"] for item in dimensions["series"][0]["data"]]
        assert colours[keys.index(county["weakest_dimension"])] == "#b3261e"
        assert colours.count("#b3261e") == 1


# ---------- the tests ----------


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_analyst_sees_the_apis_figures(
    county: TestClient[Any, Any], chromium: browser.Browser, viewport: str
) -> None:
    analyst = await factories.create_staff_user(county, "analyst")
    page = await open_dashboard(chromium, county, viewport)
    assert not await shown(page, "#dashboard")
    assert await sign_in(page, analyst) == "ready", await page.text("#message")
    assert await shown(page, "#figures") and not await shown(page, "#message")
    period = await page.evaluate("document.getElementById('period').value")
    figures = await api_figures(county, period)
    assert not figures["townships"]["county"]["suppressed"], "the seed should publish the county"
    townships = await (await county.get("/api/v1/townships?page_size=100")).json()
    assert len(figures["townships"]["rows"]) == townships["total"]
    await assert_headline(page, figures)
    await assert_townships(page, figures)
    await assert_other_charts(page, figures)
    assert (
        await page.evaluate("document.getElementById('method').textContent")
        == (figures["townships"]["method"])
    )
    await screenshots(page, f"dashboard-{viewport}")
    assert page.errors == [], page.errors


async def test_the_printed_report_shows_every_table_without_the_controls(
    county: TestClient[Any, Any], chromium: browser.Browser
) -> None:
    page = await open_dashboard(chromium, county)
    assert await sign_in(page, await factories.create_staff_user(county, "analyst")) == "ready"
    assert await page.evaluate("document.getElementById('auto-refresh').checked") is True
    await page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    await page.send("Emulation.setEmulatedMedia", media="print")
    hidden = await page.evaluate(
        "['.filters', '#refresh', '#print'].map(s =>"
        " getComputedStyle(document.querySelector(s)).display)"
    )
    assert hidden == ["none", "none", "none"]
    assert await page.evaluate("document.querySelector('#township-table').offsetHeight") > 0
    stamp = await page.text("#print-stamp")
    assert "统计期" in stamp and "数据时间" in stamp
    await screenshots(page, "dashboard-print")
    await page.send("Emulation.setEmulatedMedia", media="")
    assert page.errors == [], page.errors


async def test_group_filter_and_township_trend(
    county: TestClient[Any, Any], chromium: browser.Browser
) -> None:
    page = await open_dashboard(chromium, county)
    assert await sign_in(page, await factories.create_staff_user(county, "admin")) == "ready"
    period = await page.evaluate("document.getElementById('period').value")
    await page.evaluate(
        "document.body.dataset.state = 'changing';"
        " const g = document.getElementById('group'); g.value = 'farmer';"
        " g.dispatchEvent(new Event('change'))"
    )
    assert await settle(page) == "ready"
    figures = await api_figures(county, period, group="farmer")
    await assert_headline(page, figures)
    assert "农民" in await page.text("#county-label")
    code = figures["townships"]["rows"][-1]["key"]
    await page.evaluate(
        f"const t = document.getElementById('trend-township'); t.value = {json.dumps(code)};"
        " t.dispatchEvent(new Event('change'))"
    )
    token = await factories.staff_token(county, "analyst")
    trend = await get_json(county, f"/api/v1/stats/trend?township={code}&year={period[:4]}", token)
    names = f"{chart_option('chart-trend')}.series.map(s => s.name)"
    await page.wait_for(f"{names}.includes({json.dumps(trend['name'])})")
    await screenshots(page, "dashboard-farmers-1280x720")
    assert page.errors == [], page.errors


async def test_export_downloads_the_xlsx(
    county: TestClient[Any, Any], chromium: browser.Browser, tmp_path: Path
) -> None:
    page = await open_dashboard(chromium, county)
    assert await sign_in(page, await factories.create_staff_user(county, "analyst")) == "ready"
    await chromium.connection.send(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    await page.click("#export")
    await page.wait_for("document.getElementById('message').className === 'message info'")
    for _ in range(100):
        if downloaded(tmp_path):
            break
        await asyncio.sleep(0.1)
    files = downloaded(tmp_path)
    assert len(files) == 1 and files[0][:2] == b"PK"  # an xlsx is a zip
    assert page.errors == [], page.errors


def downloaded(folder: Path) -> list[bytes]:
    """The finished downloads (Chromium renames a .crdownload when it is complete)."""
    return [path.read_bytes() for path in folder.iterdir() if path.suffix == ".xlsx"]


async def test_stats_refuse_anonymous_callers_and_residents(
    resident_client: TestClient[Any, Any], chromium: browser.Browser
) -> None:
    county = resident_client
    resident = await factories.resident(county, f"dash-{uuid.uuid4().hex[:8]}")
    editor = await factories.staff_token(county, "editor")
    for path in (*STATS, "export?format=xlsx"):
        url = f"/api/v1/stats/{path}"
        assert (await county.get(url)).status == 401, url
        assert (await county.get(url, headers=factories.auth(resident))).status == 403, url
        assert (await county.get(url, headers=factories.auth(editor))).status == 403, url

    page = await open_dashboard(chromium, county)
    assert not await shown(page, "#dashboard")
    assert await page.evaluate("document.querySelectorAll('canvas').length") == 0
    assert page.errors == [], page.errors

    editor_name = await factories.create_staff_user(county, "editor")
    assert await sign_in(page, editor_name) == "forbidden"
    assert await page.text("#message-title") == "无权查看统计数据"
    assert not await shown(page, "#dashboard")
    assert await page.evaluate("document.querySelectorAll('canvas').length") == 0
    await screenshots(page, "dashboard-forbidden-1280x720")
    assert all(e.source == "network" and "403" in e.text for e in page.errors), page.errors


async def test_expired_session_asks_to_sign_in_again(
    county: TestClient[Any, Any], chromium: browser.Browser
) -> None:
    page = await open_dashboard(chromium, county)
    name = await factories.create_staff_user(county, "analyst")
    assert await sign_in(page, name) == "ready"
    user = await county.app[DB]["users"].find_one({"username": name})
    await auth.revoke_all_tokens(county.app[DB], county.app[KV], str(user["_id"]))
    await page.evaluate("document.body.dataset.state = 'refreshing'")
    await page.click("#refresh")
    assert await settle(page) == "login"
    assert "登录已过期" in await page.text("#message-title")
    assert not await shown(page, "#dashboard")
    assert all(e.source == "network" and "401" in e.text for e in page.errors), page.errors


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ({"status": 500}, "服务器暂时出错（500），请稍后再试。"),
        ({"fail": "InternetDisconnected"}, "无法连接服务器，请检查网络后重试。"),
    ],
    ids=["server-error", "network-down"],
)
async def test_server_and_network_failures_are_explained(
    county: TestClient[Any, Any],
    chromium: browser.Browser,
    failure: dict[str, Any],
    message: str,
) -> None:
    page = await open_dashboard(chromium, county)
    assert await sign_in(page, await factories.create_staff_user(county, "analyst")) == "ready"
    await page.intercept("*/api/v1/stats/literacy*", **failure)
    await page.evaluate("document.body.dataset.state = 'refreshing'")
    await page.click("#refresh")
    assert await settle(page) == "error"
    assert await page.text("#message-title") == message
    assert not await shown(page, "#figures"), "no stale figures beside an error"
    assert await shown(page, "#refresh"), "the filters stay, to retry"
    await page.stop_intercepting()
    await page.evaluate("document.body.dataset.state = 'refreshing'")
    await page.click("#refresh")
    assert await settle(page) == "ready"
    assert await shown(page, "#figures") and not await shown(page, "#message")
    assert all(e.source == "network" for e in page.errors), page.errors


async def test_wrong_password_is_refused_in_chinese(
    client: TestClient[Any, Any], chromium: browser.Browser
) -> None:
    page = await open_dashboard(chromium, client)
    await page.type("#username", await factories.create_staff_user(client, "analyst"))
    await page.type("#password", "not the password")
    await page.click("#login-submit")
    await page.wait_for("!document.getElementById('message').hidden")
    assert await page.text("#message-title") == "登录失败"
    assert await state(page) == "login"
    assert await shown(page, "#login-panel") and not await shown(page, "#dashboard")


# ---------- the static files (no browser needed) ----------


async def test_page_and_assets_are_public_cached_and_typed(client: TestClient[Any, Any]) -> None:
    page = await client.get("/dashboard")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    expected = {
        "app.js": "text/javascript",
        "charts.js": "text/javascript",
        "style.css": "text/css",
        "echarts.min.js": "text/javascript",
    }
    for name, content_type in expected.items():
        marker = f"/dashboard/static/{name}?v="
        assert marker in html, name
        version = html.split(marker, 1)[1].split('"', 1)[0]
        asset = await client.get(f"/dashboard/static/{name}?v={version}")
        assert asset.status == 200, name
        assert asset.headers["Content-Type"].startswith(content_type)
        assert "immutable" in asset.headers["Cache-Control"]
        assert version in asset.headers["ETag"]
        again = await client.get(
            f"/dashboard/static/{name}", headers={"If-None-Match": asset.headers["ETag"]}
        )
        assert again.status == 304
    echarts = await client.get("/dashboard/static/echarts.min.js")
    assert len(await echarts.read()) > 500_000, "ECharts is served from node_modules (npm ci)"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/index.html",
        "/dashboard/static/..%2F..%2Fdashboard.py",
        "/dashboard/static/%2E%2E%2Fsettings.py",
        "/dashboard/static/../app.py",
        "/dashboard/static/vendor%2Fecharts.min.js",
        "/dashboard/static/nothing.js",
    ],
)
async def test_only_allow_listed_files_are_served(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
