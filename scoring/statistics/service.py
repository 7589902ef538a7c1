"""The association's statistics: literacy by township, group and county, participation and
trend, computed from the cells (never by rescanning attempts) and the admins' census.

Reading a period's cells and fitting them (raking plus the MRP posterior) are the costly
steps, so each process keeps the last few fitted periods, keyed by the stats version that
every cell write, rebuild and census change replaces: the next request after one refits."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pymongo.asynchronous.database import AsyncDatabase

from scoring.assessment import cells as assessment_cells
from scoring.assessment import service as assessment_service
from scoring.integrity import service as integrity_service
from scoring.statistics import estimation as est
from scoring.statistics import report
from server.county import service as county_service
from server.county.periods import COUNTY_TZ
from server.county.vocab import HEADLINE_AGE_BANDS
from server.kernel.errors import NotFound

log = logging.getLogger(__name__)
Document = dict[str, Any]
CACHED_PERIODS = 32
COUNTY_NAME = "全县"

METHOD = (
    "具备科学素质比例指18—69岁受测居民中测评总分达到70分（含）的比例，测评按科学知识40分、"
    "科学方法20分、科学精神与思想20分、应用科学的能力20分计分。乡镇和全县的加权比例采用多层回归"
    "与事后分层（MRP）：以年龄段、性别、文化程度及乡镇随机效应的概率单位（probit）模型拟合各单元的测评结果，"
    "再按人口普查的乡镇×年龄段×性别×文化程度人口加权；区间为95%后验区间。人群及其他分组的加权"
    "比例用各乡镇样本按普查人口边际校准（raking）后的权重计算，区间为按Kish有效样本量计算的Wilson"
    "区间。每位居民在统计期内只计首次测评。受测人数不足10人的分组不公布，并对另一分组作补充抑制，"
    "以免由合计反推。居民自愿参加测评，加权只能校正年龄、性别、文化程度和乡镇构成带来的偏差，"
    "组织动员和对科学感兴趣者更愿参加所带来的偏差无法由此消除；本测评参照全国公民科学素质调查的"
    "方法，但并非同一调查工具，结果不能与全国调查数据直接比较。"
    "诚信复核：系统按答题用时、设备与网络、答案雷同、选项位置等筛查测评，疑似代答、抄袭或速答的"
    "测评经分析员复核决定剔除后才不再计入，撤销决定即恢复；“不含待复核标记”为暂不计入尚未复核的"
    "强标记测评时的比例。敏感性区间：假设在同一乡镇×年龄段×性别×文化程度单元内，具备科学素质者"
    "参与测评的可能性至多是其他居民的Γ倍（或至少1/Γ），则各单元比例的优势比在模型估计值的1/Γ至Γ倍"
    "之间，按普查人口加权得到比例的可能范围（Γ取1.25、1.5、2，不含抽样误差）。"
    "参与渠道：居民自主参与、组织动员（渠道码）、协助员当面协助和纸质答卷的测评同样计分，全部计入"
    "总体估计；分渠道比例用全县人口边际校准权重计算，仅供比较各渠道参与者的构成。"
)


class EstimatesCache:
    """Fitted periods (most recently used last), the county's census arrays, and the rows
    already shaped from a fit. Everything is keyed by the stats version document, which
    every cell write, rebuild and census change replaces with a fresh token: reading it is
    one lookup by `_id`, while re-reading and refitting the cells is the slow part."""

    def __init__(self) -> None:
        self._fitted: OrderedDict[tuple[str, str], report.Analysis] = OrderedDict()
        self._rows: dict[tuple[Any, ...], Any] = {}
        self._county: tuple[str, Document] | None = None
        self._lock = asyncio.Lock()

    async def county(self, db: AsyncDatabase) -> Document:
        token = (await county_service.stats_version(db)).get("census", "none")
        if self._county is None or self._county[0] != token:
            self._county = (token, await load_county(db))
        return self._county[1]

    async def analyses(self, db: AsyncDatabase, periods: list[str]) -> list[report.Analysis]:
        """Fits of several periods, reading the cells of all the missing ones in one query."""
        version = await county_service.stats_version(db)
        keys = [(period, _token(version, period)) for period in periods]
        county = await self.county(db)
        async with self._lock:  # one fit per period at a time; the others wait for it
            missing = [key for key in keys if key not in self._fitted]
            if missing:
                await self._fit(db, county, missing)
            for key in keys:
                self._fitted.move_to_end(key)
            fitted = [self._fitted[key] for key in keys]
            while len(self._fitted) > CACHED_PERIODS:
                self._fitted.popitem(last=False)
            return fitted

    async def analysis(self, db: AsyncDatabase, period: str) -> report.Analysis:
        return (await self.analyses(db, [period]))[0]

    async def _fit(self, db: AsyncDatabase, county: Document, keys: list[tuple[str, str]]) -> None:
        docs = await assessment_service.read(db, [period for period, _ in keys])
        codes = [t["code"] for t in county["townships"]]
        for period, token in keys:
            period_docs = [d for d in docs if d["period"] == period]
            flags = await integrity_service.period_flags(db, period)
            analysis, without = await asyncio.to_thread(
                _fit_period, period_docs, flags.open_attempts, period, county
            )
            counts = {
                code: {
                    "flagged": flags.flagged.get(code, 0),
                    "excluded": flags.excluded.get(code, 0),
                    "to_look": flags.to_look.get(code, 0),
                }
                for code in codes
            }
            self._fitted[(period, token)] = report.with_integrity(analysis, counts, without)
        live = {id(a) for a in self._fitted.values()}
        self._rows = {k: v for k, v in self._rows.items() if k[0] in live}  # forget evicted fits

    def rows(self, analysis: report.Analysis, kind: str, group: str | None, build: Any) -> Any:
        """Rows shaped from one fit, built once (deep-copied out: callers may add fields)."""
        key = (id(analysis), kind, group)
        held = self._rows.get(key)
        if held is None or held[0] is not analysis:  # an id can be reused after eviction
            held = self._rows[key] = (analysis, build())
        return copy.deepcopy(held[1])


def _fit_period(
    docs: list[Document], open_attempts: list[Document], period: str, county: Document
) -> tuple[report.Analysis, report.Analysis | None]:
    """The period's fit, and (when open strong flags exist) its fit without their attempts."""
    codes = [t["code"] for t in county["townships"]]
    analysis = report.analyse(report.frame(docs, codes), county["townships"], county["census"])
    if not open_attempts:
        return analysis, None
    reduced = assessment_cells.without(docs, open_attempts, period)
    without = report.analyse(report.frame(reduced, codes), county["townships"], county["census"])
    return analysis, without


def _token(version: Document, period: str) -> str:
    """What a fit of `period` depends on: all cells (a rebuild), this period's cells, the
    census, and the integrity flags (new flags and decisions)."""
    parts = (
        version.get("cells"),
        version.get("cells_by_period", {}).get(period),
        version.get("census"),
        version.get("integrity_by_period", {}).get(period),
    )
    return "|".join(str(part) for part in parts)


async def load_county(db: AsyncDatabase) -> Document:
    names = await county_service.township_names(db)
    townships = [{"code": code, "name": names[code]["name"]} for code in sorted(names)]
    doc = await county_service.census(db)
    return {
        "townships": townships,
        "census": headline_census(doc, [t["code"] for t in townships]) if doc else None,
        "census_version": doc["updated_at"].isoformat() if doc else "none",
        "population_all_ages": all_ages_population(doc, names),
    }


def headline_census(doc: Document, codes: list[str]) -> est.FloatArray:
    """The census as T × 5 age bands × 2 genders (× 4 education levels), ages 18–69."""
    index = {code: i for i, code in enumerate(codes)}
    shape = (len(codes), len(HEADLINE_AGE_BANDS), 2) + ((4,) if doc["has_education"] else ())
    array = np.zeros(shape)
    for row in doc["rows"]:
        code, band, gender, education = row["t"], row["a"], row["g"], row["e"]
        if code not in index or band not in HEADLINE_AGE_BANDS:
            continue
        at: tuple[int, ...] = (
            index[code],
            HEADLINE_AGE_BANDS.index(band),
            est.GENDERS.index(gender),
        )
        if doc["has_education"]:
            at = (*at, est.EDUCATIONS.index(education))
        array[at] += row["p"]
    return array


def all_ages_population(doc: Document | None, townships: dict[str, Document]) -> dict[str, int]:
    if doc is None:
        return {code: int(t.get("population") or 0) for code, t in townships.items()}
    totals = dict.fromkeys(townships, 0)
    for row in doc["rows"]:
        if row["t"] in totals:
            totals[row["t"]] += row["p"]
    return totals


def current_year() -> str:
    return str(datetime.now(UTC).astimezone(COUNTY_TZ).year)


# ------------------------------------------------------------------ the breakdowns


async def literacy(
    db: AsyncDatabase,
    cache: EstimatesCache,
    *,
    by: str,
    period: str | None,
    group: str | None,
) -> Document:
    period = period or current_year()
    analysis = await cache.analysis(db, period)
    county = cache.rows(
        analysis, "county", group, lambda: report.county_row(analysis, group, COUNTY_NAME)
    )
    if by == "township":
        rows = cache.rows(
            analysis, "township", group, lambda: report.rows_by_township(analysis, group)
        )
    elif by == "group":
        rows = cache.rows(analysis, "group", None, lambda: report.rows_by_group(analysis))
    elif by == "channel":
        rows = cache.rows(analysis, "channel", None, lambda: report.rows_by_channel(analysis))
    else:
        rows = [county]
    return {
        "period": period,
        "by": by,
        "group": group,
        "rows": rows,
        "county": county,
        "other_ages": report.other_age_rows(analysis),
        "target": await _target(db, cache, analysis, period),
        "channels": report.channel_rows(analysis),
        "estimator": "mrp" if analysis.mrp is not None and group is None else "raking",
        "method": METHOD if analysis.census is not None else METHOD_WITHOUT_CENSUS,
    }


METHOD_WITHOUT_CENSUS = "尚未载入人口普查数据，只能给出未加权的原始比例，不能代表全县人口。"


async def _target(
    db: AsyncDatabase, cache: EstimatesCache, analysis: report.Analysis, period: str
) -> Document | None:
    """The whole county (whatever the group filter) against the plan's target."""
    chosen = county_service.target_for(await county_service.targets(db), int(period[:4]))
    county = cache.rows(
        analysis, "county", None, lambda: report.county_row(analysis, None, COUNTY_NAME)
    )
    if chosen is None or county["suppressed"] or county["weighted_share"] is None:
        return None
    year, share = chosen
    if analysis.mrp is not None:
        progress = est.target_from_draws(analysis.mrp.county_draws, share)
    else:
        progress = est.target_from_share(county["weighted_share"], county["n_eff"], share)
    return {
        "year": year,
        "literate_share": share,
        "gap": round(progress.gap, 6),
        "probability_reached": round(progress.probability_reached, 4),
    }


async def participation(
    db: AsyncDatabase, cache: EstimatesCache, *, period: str | None, by: str = "township"
) -> Document:
    """Respondents (of every age) per 1,000 residents, by township or by channel."""
    period = period or current_year()
    analysis = await cache.analysis(db, period)
    population = (await cache.county(db))["population_all_ages"]
    if by == "channel":
        return _participation_by_channel(analysis, period, sum(population.values()))
    items = []
    for township in analysis.townships:
        n = analysis.frame.respondents_all_ages.get(township["code"], 0)
        items.append(
            _participation(
                township["code"], township["name"], n, population.get(township["code"], 0)
            )
        )
    total_n = sum(item["respondents"] for item in items)
    county = _participation("county", COUNTY_NAME, total_n, sum(population.values()))
    return {"period": period, "by": "township", "items": items, "county": county}


def _participation_by_channel(analysis: report.Analysis, period: str, population: int) -> Document:
    counts = analysis.frame.channels_all_ages
    total = sum(counts.values())
    items = []
    for channel, n in sorted(counts.items()):
        item = _participation(channel, report.channel_name(channel), n, population)
        item["share_of_respondents"] = round(n / total, 6) if total else None
        items.append(item)
    county = _participation("county", COUNTY_NAME, total, population)
    return {"period": period, "by": "channel", "items": items, "county": county}


def _participation(key: str, name: str, respondents: int, population: int) -> Document:
    per_1000 = round(respondents / population * 1000, 3) if population else None
    return {
        "key": key,
        "name": name,
        "respondents": respondents,
        "population": population,
        "per_1000": per_1000,
    }


async def trend(
    db: AsyncDatabase, cache: EstimatesCache, *, township: str | None, year: int | None
) -> Document:
    """Month by month for the county or one township, up to the current month."""
    today = datetime.now(UTC).astimezone(COUNTY_TZ)
    year = year or today.year
    last = today.month if year == today.year else 12 if year < today.year else 0
    county = await cache.county(db)
    codes = [t["code"] for t in county["townships"]]
    if township is not None and township not in codes:
        raise NotFound("找不到该乡镇", code="township_not_found")
    months = [f"{year}-{month:02d}" for month in range(1, last + 1)]
    rows = []
    for month, analysis in zip(months, await cache.analyses(db, months), strict=True):
        if township is None:
            row = cache.rows(
                analysis, "county", None, lambda a=analysis: report.county_row(a, None, COUNTY_NAME)
            )
        else:
            by_township = cache.rows(
                analysis, "township", None, lambda a=analysis: report.rows_by_township(a, None)
            )
            row = by_township[codes.index(township)]
        rows.append({"period": month, **_trend_fields(row)})
    name = COUNTY_NAME if township is None else county["townships"][codes.index(township)]["name"]
    return {"township": township, "name": name, "year": year, "rows": rows}


def _trend_fields(row: Document) -> Document:
    names = ("respondents", "raw_share", "weighted_share", "ci_low", "ci_high", "suppressed")
    return {name: row[name] for name in names}


async def periods(db: AsyncDatabase) -> list[Document]:
    found = await assessment_service.periods_with_respondents(db)
    items = [
        {
            "period": d["_id"],
            "kind": "year" if len(d["_id"]) == 4 else "month",
            "respondents": int(d["respondents"]),
        }
        for d in found
    ]
    return sorted(items, key=lambda item: item["period"], reverse=True)
