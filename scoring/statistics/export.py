"""The xlsx report the association sends to the county government: one sheet per breakdown,
Chinese headers, shares as percentages, and the method with its caveats on a sheet of its own.
Every figure comes from the same functions as the API, so the report and the dashboard agree."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet
from pymongo.asynchronous.database import AsyncDatabase

from scoring.statistics import service as estimates
from server.county.periods import COUNTY_TZ

Document = dict[str, Any]
DIMENSION_NAMES = {
    "knowledge": "科学知识",
    "method": "科学方法",
    "spirit": "科学精神与思想",
    "application": "应用科学的能力",
}
Column = tuple[str, Callable[[Document], Any], str | None]  # header, value, number format
PERCENT = "0.0%"
SUPPRESSED = "样本不足，不公布"


def _share(name: str) -> Callable[[Document], Any]:
    return lambda row: row.get(name)


def _tier(name: str) -> Callable[[Document], Any]:
    return lambda row: row["tiers"][name]


def _dimension(name: str) -> Callable[[Document], Any]:
    return lambda row: row["dimension_means"][name]


LITERACY_COLUMNS: list[Column] = [
    ("代码", lambda r: r["key"], None),
    ("名称", lambda r: r["name"], None),
    ("受测人数", lambda r: r["respondents"], "0"),
    ("18—69岁人口", lambda r: r.get("population"), "#,##0"),
    ("原始比例", _share("raw_share"), PERCENT),
    ("加权比例", _share("weighted_share"), PERCENT),
    ("95%区间下限", _share("ci_low"), PERCENT),
    ("95%区间上限", _share("ci_high"), PERCENT),
    ("校准（raking）比例", _share("raked_share"), PERCENT),
    ("高阶科学素质（≥85分）", _tier("advanced"), PERCENT),
    ("具备科学素质（≥70分）", _tier("literate"), PERCENT),
    ("基本具备（≥55分）", _tier("basic"), PERCENT),
    ("未达基本（<55分）", _tier("low"), PERCENT),
    *[(f"{label}得分率", _dimension(key), "0.0") for key, label in DIMENSION_NAMES.items()],
    ("最弱维度", lambda r: DIMENSION_NAMES.get(r["weakest_dimension"] or "", ""), None),
    ("备注", lambda r: SUPPRESSED if r["suppressed"] else "", None),
]
PARTICIPATION_COLUMNS: list[Column] = [
    ("代码", lambda r: r["key"], None),
    ("名称", lambda r: r["name"], None),
    ("受测人数（全年龄）", lambda r: r["respondents"], "0"),
    ("常住人口", lambda r: r["population"], "#,##0"),
    ("每千人受测人数", lambda r: r["per_1000"], "0.00"),
]
CHANNEL_COLUMNS: list[Column] = [
    ("参与渠道", lambda r: r["name"], None),
    ("受测人数（18—69岁）", lambda r: r["respondents"], "0"),
    ("原始比例", _share("raw_share"), PERCENT),
    ("备注", lambda r: SUPPRESSED if r["suppressed"] else "", None),
]
TREND_COLUMNS: list[Column] = [
    ("月份", lambda r: r["period"], None),
    ("受测人数", lambda r: r["respondents"], "0"),
    ("原始比例", _share("raw_share"), PERCENT),
    ("加权比例", _share("weighted_share"), PERCENT),
    ("95%区间下限", _share("ci_low"), PERCENT),
    ("95%区间上限", _share("ci_high"), PERCENT),
    ("备注", lambda r: SUPPRESSED if r["suppressed"] else "", None),
]


async def report(
    db: AsyncDatabase, cache: estimates.EstimatesCache, *, period: str | None
) -> tuple[bytes, str]:
    """The workbook's bytes and the period it covers."""
    by_township = await estimates.literacy(db, cache, by="township", period=period, group=None)
    period = by_township["period"]
    by_group = await estimates.literacy(db, cache, by="group", period=period, group=None)
    taking = await estimates.participation(db, cache, period=period)
    monthly = await estimates.trend(db, cache, township=None, year=int(period[:4]))
    book = Workbook()
    _method_sheet(book.active, by_township)
    _table(book.create_sheet("全县"), LITERACY_COLUMNS, [by_township["county"]])
    _table(book.create_sheet("乡镇"), LITERACY_COLUMNS, by_township["rows"])
    _table(book.create_sheet("重点人群"), LITERACY_COLUMNS, by_group["rows"])
    _table(book.create_sheet("其他年龄"), LITERACY_COLUMNS, by_township["other_ages"])
    _table(
        book.create_sheet("参与情况"), PARTICIPATION_COLUMNS, [*taking["items"], taking["county"]]
    )
    _table(book.create_sheet("参与渠道"), CHANNEL_COLUMNS, by_township["channels"])
    _table(book.create_sheet("月度趋势"), TREND_COLUMNS, monthly["rows"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), period


def _method_sheet(sheet: Worksheet, literacy: Document) -> None:
    sheet.title = "说明"
    county, target = literacy["county"], literacy["target"]
    lines: list[tuple[str, Any]] = [
        ("公民科学素质测评统计报告", ""),
        ("统计期", literacy["period"]),
        ("生成时间", datetime.now(UTC).astimezone(COUNTY_TZ).strftime("%Y-%m-%d %H:%M")),
        ("全县受测人数（18—69岁）", county["respondents"]),
        ("全县具备科学素质比例（加权）", _percent(county["weighted_share"])),
        ("95%区间", f"{_percent(county['ci_low'])} — {_percent(county['ci_high'])}"),
    ]
    if target is not None:
        lines += [
            (f"{target['year']}年目标", _percent(target["literate_share"])),
            ("与目标差距（百分点）", round(target["gap"] * 100, 1)),
            ("已达到目标的概率", _percent(target["probability_reached"])),
        ]
    lines += [("方法与局限", literacy["method"])]
    for row, (label, value) in enumerate(lines, start=1):
        sheet.cell(row=row, column=1, value=label).font = Font(bold=True)
        cell = sheet.cell(row=row, column=2, value=value)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 100


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _table(sheet: Worksheet, columns: list[Column], rows: list[Document]) -> None:
    for col, (header, _, _) in enumerate(columns, start=1):
        sheet.cell(row=1, column=col, value=header).font = Font(bold=True)
        sheet.column_dimensions[sheet.cell(row=1, column=col).column_letter].width = max(
            10, 2 * len(header) + 2
        )
    for r, row in enumerate(rows, start=2):
        for col, (_, value, number_format) in enumerate(columns, start=1):
            cell = sheet.cell(row=r, column=col, value=value(row))
            if number_format:
                cell.number_format = number_format
    sheet.freeze_panes = "C2"
