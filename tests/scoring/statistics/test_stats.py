"""The association's statistics through HTTP, on the demo county with its synthetic year of
assessments: census and targets, literacy rows, suppression, the 18–69 headline, groups,
participation, trend, the xlsx report, and who may see them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

from scoring.statistics import estimation
from server import seed
from server.kernel.keys import DB
from tests.factories import auth, correct_answers, resident, staff_tokens

STATS = "/api/v1/stats"
SHARES = ("raw_share", "weighted_share", "ci_low", "ci_high", "raked_share")


@pytest.fixture
async def county(resident_client: Any) -> dict[str, str]:
    """The demo county with its assessments; tokens for an analyst and an admin."""
    await seed.seed_demo(resident_client.app[DB], assessments=True)
    staff = await staff_tokens(resident_client)
    return {"analyst": staff.analyst, "admin": staff.admin, "editor": staff.editor}


async def get(client: Any, path: str, token: str) -> Any:
    response = await client.get(f"{STATS}/{path}", headers=auth(token))
    assert response.status == 200, await response.text()
    return await response.json()


def check_published(row: dict[str, Any]) -> None:
    if row["suppressed"]:
        assert all(row[name] is None for name in SHARES)
        assert set(row["tiers"].values()) == {None} and row["weakest_dimension"] is None
        assert set(row["dimension_means"].values()) == {None}
        return
    assert row["respondents"] >= estimation.MIN_PUBLISHED
    assert 0 <= row["ci_low"] <= row["weighted_share"] <= row["ci_high"] <= 1
    tiers = row["tiers"]
    assert tiers["advanced"] <= tiers["literate"] <= tiers["basic"]
    assert tiers["basic"] + tiers["low"] == pytest.approx(1)
    assert row["weakest_dimension"] == min(
        row["dimension_means"], key=lambda d: row["dimension_means"][d]
    )


def check_not_derivable(rows: list[dict[str, Any]]) -> None:
    """Suppressed rows with respondents are never alone, and together hold at least 10, so
    subtracting published rows from the published total reveals none of them."""
    hidden = [r["respondents"] for r in rows if r["suppressed"] and r["respondents"]]
    assert not hidden or (len(hidden) >= 2 and sum(hidden) >= estimation.MIN_PUBLISHED)


async def test_literacy_by_township_is_published_with_intervals_and_suppression(
    resident_client: Any, county: dict[str, str]
) -> None:
    body = await get(resident_client, "literacy?by=township", county["analyst"])
    assert body["by"] == "township" and len(body["rows"]) == 9 and body["estimator"] == "mrp"
    for row in body["rows"] + [body["county"]]:
        check_published(row)
    check_not_derivable(body["rows"])
    small = [r for r in body["rows"] if r["respondents"] < estimation.MIN_PUBLISHED]
    assert small and all(r["suppressed"] for r in small)
    assert sum(r["suppressed"] for r in body["rows"]) >= 2  # complementary suppression
    assert body["county"]["respondents"] == sum(r["respondents"] for r in body["rows"])
    target = body["target"]
    assert target["year"] == 2025 and target["literate_share"] == 0.125
    assert target["gap"] == pytest.approx(0.125 - body["county"]["weighted_share"], abs=1e-5)
    assert 0 <= target["probability_reached"] <= 1
    assert "18—69岁" in body["method"] and "无法由此消除" in body["method"]
    assert {c["channel"] for c in body["channels"]} == {"self", "village-qr"}


async def test_groups_and_a_group_filter(resident_client: Any, county: dict[str, str]) -> None:
    groups = await get(resident_client, "literacy?by=group", county["analyst"])
    assert [r["key"] for r in groups["rows"]] == list(estimation.GROUPS)
    for row in groups["rows"]:
        check_published(row)
        assert row["population"] is None
    check_not_derivable(groups["rows"])
    farmers = await get(resident_client, "literacy?by=township&group=farmer", county["analyst"])
    assert farmers["group"] == "farmer" and farmers["estimator"] == "raking"
    by_group = {r["key"]: r for r in groups["rows"]}
    assert farmers["county"]["respondents"] == by_group["farmer"]["respondents"]
    for row in farmers["rows"]:
        check_published(row)
    for group, row in by_group.items():
        alone = await get(resident_client, f"literacy?by=county&group={group}", county["analyst"])
        assert alone["county"]["suppressed"] == row["suppressed"], group


async def test_the_headline_counts_ages_18_to_69_only(
    resident_client: Any, county: dict[str, str]
) -> None:
    before = await get(resident_client, "literacy?by=county", county["analyst"])
    for name, birth_year in (("old", 1950), ("young", 2012), ("adult", 1985)):
        # The young one is a minor: their guardian agreed.
        minor = {"guardian_consent": True} if birth_year == 2012 else {}
        token = await resident(resident_client, name, {"birth_year": birth_year, **minor})
        quiz = await (
            await resident_client.post(
                "/api/v1/quizzes", json={"mode": "assessment"}, headers=auth(token)
            )
        ).json()
        submitted = await resident_client.post(
            f"/api/v1/quizzes/{quiz['quiz_id']}/submit",
            json={"answers": correct_answers(resident_client, quiz)},
            headers=auth(token),
        )
        assert submitted.status == 200
    after = await get(resident_client, "literacy?by=county", county["analyst"])
    assert after["county"]["respondents"] == before["county"]["respondents"] + 1
    older = {r["key"]: r["respondents"] for r in before["other_ages"]}
    newer = {r["key"]: r["respondents"] for r in after["other_ages"]}
    assert newer == {"0-17": older["0-17"] + 1, "70+": older["70+"] + 1}
    assert after["rows"] == [after["county"]]


async def test_participation_trend_and_periods(
    resident_client: Any, county: dict[str, str]
) -> None:
    taking = await get(resident_client, "participation?by=township", county["analyst"])
    assert set(taking) >= {"items", "total", "page", "page_size", "county", "period"}
    assert taking["total"] == 9
    for item in taking["items"]:
        assert item["per_1000"] == round(item["respondents"] / item["population"] * 1000, 3)
    assert taking["county"]["respondents"] == sum(i["respondents"] for i in taking["items"])
    trend = await get(resident_client, "trend", county["analyst"])
    assert trend["township"] is None and trend["rows"]
    assert all(row["period"].startswith(str(trend["year"])) for row in trend["rows"])
    periods = await get(resident_client, "periods", county["analyst"])
    kinds = {item["kind"] for item in periods["items"]}
    assert kinds == {"year", "month"}
    missing = await resident_client.get(
        f"{STATS}/trend?township=nope", headers=auth(county["analyst"])
    )
    assert missing.status == 404


async def test_the_xlsx_report_matches_the_api(
    resident_client: Any, county: dict[str, str]
) -> None:
    literacy = await get(resident_client, "literacy?by=township", county["analyst"])
    response = await resident_client.get(
        f"{STATS}/export?format=xlsx", headers=auth(county["analyst"])
    )
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(await response.read()))
    assert book.sheetnames == [
        "说明",
        "全县",
        "乡镇",
        "重点人群",
        "其他年龄",
        "参与情况",
        "参与渠道",
        "月度趋势",
    ]
    townships = list(book["乡镇"].iter_rows(values_only=True))
    assert townships[0][:6] == ("代码", "名称", "受测人数", "18—69岁人口", "原始比例", "加权比例")
    assert len(townships) == 1 + len(literacy["rows"])
    county_row = list(book["全县"].iter_rows(values_only=True))[1]
    assert county_row[5] == pytest.approx(literacy["county"]["weighted_share"])
    method = [row[1] for row in book["说明"].iter_rows(values_only=True)]
    assert literacy["method"] in method
    for row, published in zip(townships[1:], literacy["rows"], strict=True):
        assert (row[-1] == "样本不足，不公布") == published["suppressed"]
        shown = published["weighted_share"]
        assert row[5] == (None if shown is None else pytest.approx(shown, rel=1e-12))


async def test_census_is_validated_and_replaced_whole(
    resident_client: Any, county: dict[str, str]
) -> None:
    def row(code: str, band: str = "18-29", **extra: Any) -> dict[str, Any]:
        return {
            "township_code": code,
            "age_band": band,
            "gender": "male",
            "population": 100,
            **extra,
        }

    codes = [
        t["code"] for t in (await (await resident_client.get("/api/v1/townships")).json())["items"]
    ]
    cases = [
        ([row(c) for c in codes] + [row("999")], "乡镇代码不存在"),
        ([row(c) for c in codes[1:]], "缺少这些乡镇"),
        ([row(c) for c in codes] + [row(codes[0])], "重复"),
        ([row(codes[0], education="junior")] + [row(c) for c in codes[1:]], "文化程度"),
        ([row(codes[0], band="70+")] + [row(c) for c in codes[1:]], "18—69岁人口为0"),
    ]
    before = await (
        await resident_client.get("/api/v1/admin/census", headers=auth(county["admin"]))
    ).json()
    for rows, message in cases:
        response = await resident_client.put(
            "/api/v1/admin/census", json={"rows": rows}, headers=auth(county["admin"])
        )
        assert response.status == 422 and message in (await response.json())["error"]["message"]
    bad_band = await resident_client.put(
        "/api/v1/admin/census",
        json={"rows": [row(codes[0], band="18-30")]},
        headers=auth(county["admin"]),
    )
    assert bad_band.status == 422
    after = await (
        await resident_client.get("/api/v1/admin/census", headers=auth(county["admin"]))
    ).json()
    assert after == before, "a refused census leaves the stored one untouched"
    good = await resident_client.put(
        "/api/v1/admin/census",
        json={"rows": [row(c, band) for c in codes for band in ("18-29", "60-69")]},
        headers=auth(county["admin"]),
    )
    assert good.status == 200 and (await good.json())["has_education"] is False
    literacy = await get(resident_client, "literacy?by=township", county["analyst"])
    assert all(r["population"] == 200 for r in literacy["rows"])
    for row_ in literacy["rows"]:
        check_published(row_)


async def test_targets_are_set_per_year(resident_client: Any, county: dict[str, str]) -> None:
    put = await resident_client.put(
        "/api/v1/admin/targets",
        json={"year": 2035, "literate_share": 0.2},
        headers=auth(county["admin"]),
    )
    assert put.status == 200
    assert (await put.json())["targets"] == [
        {"year": 2025, "literate_share": 0.125},
        {"year": 2035, "literate_share": 0.2},
    ]
    wrong = await resident_client.put(
        "/api/v1/admin/targets",
        json={"year": 2035, "literate_share": 12.5},
        headers=auth(county["admin"]),
    )
    assert wrong.status == 422
    current = await get(resident_client, "literacy", county["analyst"])
    assert current["target"]["year"] == 2035  # the period's year is past 2025: the next target


async def test_only_analysts_and_admins_see_statistics(
    resident_client: Any, county: dict[str, str]
) -> None:
    token = await resident(resident_client, "curious")
    for path in ("literacy", "participation", "trend", "periods", "export?format=xlsx"):
        assert (await resident_client.get(f"{STATS}/{path}")).status == 401
        for who in (token, county["editor"]):
            assert (await resident_client.get(f"{STATS}/{path}", headers=auth(who))).status == 403
    for method, path in (("put", "census"), ("put", "targets")):
        response = await getattr(resident_client, method)(
            f"/api/v1/admin/{path}", json={}, headers=auth(county["analyst"])
        )
        assert response.status == 403


async def test_bad_query_parameters_are_422(resident_client: Any, county: dict[str, str]) -> None:
    for query in ("by=village", "period=2026-13", "group=aliens", "period=26"):
        response = await resident_client.get(
            f"{STATS}/literacy?{query}", headers=auth(county["analyst"])
        )
        assert response.status == 422, query


async def test_a_new_assessment_refits_only_its_own_periods(
    resident_client: Any, county: dict[str, str]
) -> None:
    from scoring.statistics.keys import ESTIMATES

    trend = await get(resident_client, "trend", county["analyst"])
    fitted = resident_client.app[ESTIMATES]._fitted
    before = dict(fitted)
    token = await resident(resident_client, "fresh")
    quiz = await (
        await resident_client.post(
            "/api/v1/quizzes", json={"mode": "assessment"}, headers=auth(token)
        )
    ).json()
    await resident_client.post(
        f"/api/v1/quizzes/{quiz['quiz_id']}/submit", json={"answers": []}, headers=auth(token)
    )
    again = await get(resident_client, "trend", county["analyst"])
    refitted = {key[0] for key in fitted if key not in before}
    assert refitted == {trend["rows"][-1]["period"]}, "only the current month is refitted"
    assert again["rows"][-1]["respondents"] == trend["rows"][-1]["respondents"] + 1
    assert again["rows"][:-1] == trend["rows"][:-1]
