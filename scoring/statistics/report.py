"""From stored cells and the census to the rows the association reads: pure functions, no I/O.

`Frame` turns one period's cell documents into the arrays `scoring.estimation` works on (plus
tier counts and dimension sums, row-aligned). `Analysis` holds what is fitted once per period
(raking weights, the MRP posterior); `rows_by_*` shape the published rows, applying
suppression last so that no share of a small row is ever computed into the output."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scoring.assessment.scoring import DIMENSION_WEIGHTS, DIMENSIONS, TIERS
from scoring.statistics import estimation as est
from scoring.statistics import sensitivity
from scoring.statistics.estimation_mrp import MrpFit, fit_mrp
from server.county.vocab import HEADLINE_AGE_BANDS

Document = dict[str, Any]
FloatArray = est.FloatArray

GROUP_NAMES = {
    "farmer": "农民",
    "worker": "产业工人",
    "elderly": "老年人",
    "youth": "青少年",
    "official": "领导干部和公务员",
    "other": "其他",
}
OTHER_AGE_NAMES = {"0-17": "18岁以下", "70+": "70岁及以上"}
MRP_DRAWS = 1000
SHARE_FIELDS = ("raw_share", "weighted_share", "ci_low", "ci_high", "raked_share")


@dataclass(frozen=True)
class Frame:
    """One period's headline-age cells as arrays, plus what is reported beside them."""

    cells: est.Cells
    tiers: FloatArray  # rows × 4 exclusive tier counts, in TIERS order
    dims: FloatArray  # rows × 4 sums of dimension scores, in hundredths of a point
    other_ages: dict[str, Document]  # "0-17" / "70+" -> summed cell
    channels: dict[str, Document]  # channel -> {"n", "literate"} (headline ages)
    respondents_all_ages: dict[str, int]  # township code -> respondents of every age
    # channel -> (n, literate) per cell row (headline ages), for weighted shares by channel
    channel_cells: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    channels_all_ages: dict[str, int] = field(default_factory=dict)  # channel -> respondents


def frame(docs: list[Document], townships: list[str]) -> Frame:
    index = {code: i for i, code in enumerate(townships)}
    rows: list[tuple[int, ...]] = []
    tiers, dims = [], []
    other: dict[str, Document] = {}
    channels: dict[str, Document] = {}
    by_channel: list[dict[str, tuple[int, int]]] = []
    everyone: dict[str, int] = dict.fromkeys(townships, 0)
    channels_all_ages: dict[str, int] = {}
    for doc in docs:
        code = doc["township_code"]
        if code in everyone:
            everyone[code] += int(doc["n"])
        for channel, sums in doc.get("channels", {}).items():
            if sums.get("n", 0):  # a channel emptied by exclusions is not listed
                channels_all_ages[channel] = channels_all_ages.get(channel, 0) + int(sums["n"])
        if doc["age_band"] in OTHER_AGE_NAMES:
            _add_other_age(other.setdefault(doc["age_band"], _empty_sums()), doc)
            continue
        position = _position(doc, index)
        if position is None:
            continue  # incomplete profile or a township since removed: raw counts only
        rows.append((*position, int(doc["n"]), int(doc["literate"])))
        tiers.append([doc.get("tiers", {}).get(t, 0) for t in TIERS])
        dims.append([doc["dims"][d]["s"] for d in DIMENSIONS])
        row_channels = {}
        for channel, sums in doc.get("channels", {}).items():
            if not sums.get("n", 0):
                continue
            held = channels.setdefault(channel, {"n": 0, "literate": 0})
            held["n"] += sums.get("n", 0)
            held["literate"] += sums.get("literate", 0)
            row_channels[channel] = (int(sums.get("n", 0)), int(sums.get("literate", 0)))
        by_channel.append(row_channels)
    columns = np.array(rows, dtype=np.int64).reshape(-1, 7).T
    channel_cells = {
        channel: (
            np.array([r.get(channel, (0, 0))[0] for r in by_channel], dtype=np.int64),
            np.array([r.get(channel, (0, 0))[1] for r in by_channel], dtype=np.int64),
        )
        for channel in channels
    }
    return Frame(
        est.Cells(*columns),
        np.array(tiers, dtype=float).reshape(-1, 4),
        np.array(dims, dtype=float).reshape(-1, 4),
        other,
        channels,
        everyone,
        channel_cells,
        channels_all_ages,
    )


def _position(doc: Document, index: dict[str, int]) -> tuple[int, ...] | None:
    try:
        return (
            index[doc["township_code"]],
            HEADLINE_AGE_BANDS.index(doc["age_band"]),
            est.GENDERS.index(doc["gender"]),
            est.EDUCATIONS.index(doc["education"]),
            est.GROUPS.index(doc["group"]),
        )
    except (KeyError, ValueError):
        return None


def _empty_sums() -> Document:
    return {
        "n": 0,
        "literate": 0,
        "tiers": dict.fromkeys(TIERS, 0),
        "dims": dict.fromkeys(DIMENSIONS, 0),
    }


def _add_other_age(target: Document, doc: Document) -> None:
    """Sum what the other-ages rows show: counts, tier counts and dimension score sums."""
    target["n"] += doc["n"]
    target["literate"] += doc["literate"]
    for tier, count in doc.get("tiers", {}).items():
        target["tiers"][tier] += count
    for dimension in DIMENSIONS:
        target["dims"][dimension] += doc["dims"][dimension]["s"]


@dataclass(frozen=True)
class Analysis:
    """What is fitted once per period and shared by every breakdown of it."""

    frame: Frame
    townships: list[Document]  # {"code", "name"} in code order
    census: FloatArray | None  # T × 5 × 2 × 4 (or × 5 × 2), headline ages
    weights: FloatArray | None  # per cell row, each township raked to its own census
    # Per cell row, the whole sample raked to the county's census: for county-wide figures
    # (the county, groups), where thin townships' collapsed cells would otherwise bias them.
    county_weights: FloatArray | None
    mrp: MrpFit | None
    # Γ -> (township lows, township highs, county low, county high): sensitivity.py
    selection: dict[float, tuple[FloatArray, FloatArray, float, float]] | None = None
    # Township code -> {"flagged", "excluded", "to_look"} of the period's integrity flags.
    integrity: dict[str, dict[str, int]] | None = None
    # The same period fitted without the assessments behind open strong flags (None: none).
    without_open_flags: Analysis | None = None


def analyse(frame_: Frame, townships: list[Document], census: FloatArray | None) -> Analysis:
    cells = frame_.cells
    if census is None or len(cells) == 0:
        return Analysis(frame_, townships, census, None, None, None)
    weights = est.rake(cells, census).weights
    county_weights = est.rake_county(cells, census).weights
    mrp = fit_mrp(cells, census, draws=MRP_DRAWS, seed=0)
    selection = {
        gamma: sensitivity.selection_bounds(mrp.cell_share, census, gamma)
        for gamma in sensitivity.GAMMAS
    }
    return Analysis(frame_, townships, census, weights, county_weights, mrp, selection)


def with_integrity(
    analysis: Analysis, counts: dict[str, dict[str, int]], without: Analysis | None
) -> Analysis:
    return replace(analysis, integrity=counts, without_open_flags=without)


# ------------------------------------------------------------------ rows


def rows_by_township(analysis: Analysis, group: str | None) -> list[Document]:
    cells = analysis.frame.cells
    mask = _group_mask(cells, group)
    rows = []
    for t, township in enumerate(analysis.townships):
        in_township = mask & (cells.township == t)
        row = _row(analysis, in_township, key=township["code"], name=township["name"])
        if analysis.census is not None:
            row["population"] = int(analysis.census[t].sum())
        if group is None and analysis.mrp is not None and row["respondents"]:
            _use_mrp(row, analysis.mrp.township, t)
        if group is None:
            _add_integrity(row, analysis, t)
        else:
            row["integrity"] = row["sensitivity"] = None  # flags are not counted by group
        rows.append(row)
    if group is None:
        return _suppressed(rows)
    # One group's townships are a column of the township × group table, whose row totals
    # (by township) and column totals (by group) are published too: suppress the table as
    # a whole so no cell follows from a total minus its published neighbours.
    hidden = suppress_table(township_group_counts(analysis))[:, est.GROUPS.index(group)]
    return _suppressed(rows, hidden=hidden)


def township_group_counts(analysis: Analysis) -> Any:
    cells = analysis.frame.cells
    counts = np.zeros((len(analysis.townships), len(est.GROUPS)), dtype=np.int64)
    np.add.at(counts, (cells.township, cells.group), cells.n)
    return counts


def suppress_table(counts: Any, minimum: int = est.MIN_PUBLISHED) -> Any:
    """Cells of a two-way table to withhold when both its margins are published: those
    under `minimum`, then, until none is left alone, in every row and every column holding
    a withheld cell the smallest published ones, so that each such line withholds at least
    two cells holding at least `minimum` together."""
    hidden = counts < minimum
    changed = True
    while changed:
        changed = False
        for lines, n in ((hidden, counts), (hidden.T, counts.T)):  # .T views share memory
            for i in range(n.shape[0]):
                changed |= _complete_line(lines[i], n[i], minimum)
    return hidden


def _complete_line(hidden: Any, n: Any, minimum: int) -> bool:
    withheld = hidden & (n > 0)
    if not withheld.any() or (withheld.sum() >= 2 and n[withheld].sum() >= minimum):
        return False
    candidates = np.flatnonzero(~hidden & (n > 0))
    if candidates.size == 0:
        return False
    hidden[candidates[np.argmin(n[candidates])]] = True
    return True


def rows_by_group(analysis: Analysis) -> list[Document]:
    cells = analysis.frame.cells
    rows = []
    for g, group in enumerate(est.GROUPS):
        row = _row(analysis, cells.group == g, key=group, name=GROUP_NAMES[group], county=True)
        row["population"] = None  # the census has no population by group
        row["integrity"] = row["sensitivity"] = None  # flags are not counted by group
        rows.append(row)
    return _suppressed(rows)


def county_row(analysis: Analysis, group: str | None, name: str) -> Document:
    row = _row(
        analysis, _group_mask(analysis.frame.cells, group), key="county", name=name, county=True
    )
    if group is not None:
        # A group's county-wide row is its row of the by-group breakdown: withheld with it.
        row["population"] = None
        row["integrity"] = row["sensitivity"] = None  # flags are not counted by group
        hidden = rows_by_group(analysis)[est.GROUPS.index(group)]["suppressed"]
        return _suppressed([row], hidden=[hidden])[0]
    if analysis.census is not None:
        row["population"] = int(analysis.census.sum())
    if analysis.mrp is not None and row["respondents"]:
        _use_mrp(row, analysis.mrp.county, 0)
    _add_integrity(row, analysis, None)
    return _suppressed([row], total=False)[0]


def other_age_rows(analysis: Analysis) -> list[Document]:
    """Ages outside 18–69: raw figures only (no census weighting), in their own rows."""
    rows = []
    for band, name in OTHER_AGE_NAMES.items():
        summed = analysis.frame.other_ages.get(band, _empty_sums())
        n = int(summed["n"])
        tiers = np.array([summed["tiers"][t] for t in TIERS], dtype=float)
        dims = np.array([summed["dims"][d] for d in DIMENSIONS], dtype=float)
        row = _figures(n, float(summed["literate"]), float(n), tiers, dims, band, name)
        row["population"] = None
        rows.append(row)
    return _suppressed(rows, total=False)


FIXED_CHANNELS = {
    "self": "自主参与",
    "assisted": "协助员当面协助",
    "paper": "纸质答卷",
    "offline": "离线作答",
}


def channel_name(channel: str) -> str:
    return FIXED_CHANNELS.get(channel) or f"组织动员（{channel}）"


def channel_rows(analysis: Analysis) -> list[Document]:
    rows = []
    for channel, sums in sorted(analysis.frame.channels.items()):
        n = int(sums.get("n", 0))
        rows.append(
            {
                "channel": channel,
                "name": channel_name(channel),
                "respondents": n,
                "raw_share": sums.get("literate", 0) / n if n else None,
            }
        )
    hidden = est.suppress([r["respondents"] for r in rows], total_published=True).rows
    for row, suppressed in zip(rows, hidden, strict=True):
        row["suppressed"] = bool(suppressed)
        if suppressed:
            row["raw_share"] = None
    return rows


def rows_by_channel(analysis: Analysis) -> list[Document]:
    """One row per channel (self, campaign codes, assisted, paper): respondents, raw share,
    and the share weighted by the county-wide raking weights of their cells (Wilson-Kish
    interval). Channels are parts of one sample, not samples of their own: the headline
    share counts them all."""
    cells, weights = analysis.frame.cells, analysis.county_weights
    rows = []
    for channel, (n, literate) in sorted(analysis.frame.channel_cells.items()):
        total, hits = int(n.sum()), int(literate.sum())
        row: Document = {
            "key": channel,
            "name": channel_name(channel),
            "respondents": total,
            "raw_share": hits / total if total else None,
            "weighted_share": None,
            "ci_low": None,
            "ci_high": None,
            "raked_share": None,
            "tiers": dict.fromkeys(("advanced", "literate", "basic", "low")),
            "dimension_means": dict.fromkeys(DIMENSIONS),
            "weakest_dimension": None,
            "population": None,
            "integrity": None,
            "sensitivity": None,
        }
        if weights is not None and total:
            part = est.Cells(
                cells.township, cells.age, cells.gender, cells.education, cells.group, n, literate
            )
            share = est.domain_share(part, weights)
            row["weighted_share"] = row["raked_share"] = float(share.estimate[0])
            row["ci_low"], row["ci_high"] = float(share.lower[0]), float(share.upper[0])
            row["n_eff"] = round(float(share.n_eff[0]), 1)
        rows.append(row)
    return _suppressed(rows)


def _group_mask(cells: est.Cells, group: str | None) -> Any:
    if group is None:
        return np.ones(len(cells), dtype=bool)
    return cells.group == est.GROUPS.index(group)


def _row(analysis: Analysis, mask: Any, *, key: str, name: str, county: bool = False) -> Document:
    cells, frame_ = analysis.frame.cells, analysis.frame
    n = cells.n[mask].astype(float)
    weights = analysis.county_weights if county else analysis.weights
    w = weights[mask] if weights is not None else np.ones(len(n))
    row = _figures(
        int(n.sum()),
        float(cells.literate[mask].sum()),
        float((n * w).sum()),
        (frame_.tiers[mask] * w[:, None]).sum(axis=0),
        (frame_.dims[mask] * w[:, None]).sum(axis=0),
        key,
        name,
    )
    if weights is not None and row["respondents"]:
        share = est.domain_share(cells.select(mask), w)
        row["weighted_share"] = row["raked_share"] = float(share.estimate[0])
        row["ci_low"], row["ci_high"] = float(share.lower[0]), float(share.upper[0])
        row["n_eff"] = round(float(share.n_eff[0]), 1)
    return row


def _figures(
    n: int,
    literate: float,
    weighted_n: float,
    weighted_tiers: FloatArray,
    weighted_dims: Any,
    key: str,
    name: str,
) -> Document:
    """Raw share, (weighted) cumulative tier shares and dimension score rates of one row."""
    cumulative = np.cumsum(weighted_tiers[:3]) / weighted_n if weighted_n else [None] * 3
    rates = {
        d: round(float(weighted_dims[i]) / weighted_n / DIMENSION_WEIGHTS[d], 2)
        if weighted_n
        else None
        for i, d in enumerate(DIMENSIONS)
    }
    known = {d: r for d, r in rates.items() if r is not None}
    return {
        "key": key,
        "name": name,
        "respondents": n,
        "raw_share": literate / n if n else None,
        "weighted_share": None,
        "ci_low": None,
        "ci_high": None,
        "raked_share": None,
        "tiers": {
            "advanced": _float(cumulative[0]),
            "literate": _float(cumulative[1]),
            "basic": _float(cumulative[2]),
            "low": float(weighted_tiers[3] / weighted_n) if weighted_n else None,
        },
        "dimension_means": rates,
        "weakest_dimension": min(known, key=lambda d: known[d]) if known else None,
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _use_mrp(row: Document, estimates: est.Estimates, index: int) -> None:
    """The published share of a township or the county: the MRP posterior (mean, 95%)."""
    row["weighted_share"] = float(estimates.estimate[index])
    row["ci_low"], row["ci_high"] = float(estimates.lower[index]), float(estimates.upper[index])


INTEGRITY_COUNTS = ("flagged", "excluded", "to_look")


def _add_integrity(row: Document, analysis: Analysis, township: int | None) -> None:
    """A township's (or, for None, the county's) integrity flags and how far its share could
    move: without the open strong flags, and under outcome selection up to each Γ."""
    codes = (
        [t["code"] for t in analysis.townships]
        if township is None
        else [analysis.townships[township]["code"]]
    )
    held = analysis.integrity or {}
    row["integrity"] = {
        name: sum(held.get(code, {}).get(name, 0) for code in codes) for name in INTEGRITY_COUNTS
    }
    outcome = None
    if analysis.selection is not None and row["weighted_share"] is not None:
        outcome = {}
        for gamma, (t_low, t_high, c_low, c_high) in analysis.selection.items():
            low, high = (c_low, c_high) if township is None else (t_low[township], t_high[township])
            outcome[f"{gamma:g}"] = sensitivity.band(float(low), float(high))
    row["sensitivity"] = {
        "without_open_flags": _share_without_open_flags(row, analysis, township),
        "outcome_selection": outcome,
    }


def _share_without_open_flags(row: Document, analysis: Analysis, township: int | None) -> Any:
    without = analysis.without_open_flags
    if without is None:  # no open strong flag in the period: the published share
        return row["weighted_share"] if row["weighted_share"] is not None else row["raw_share"]
    if without.mrp is not None:
        estimates = without.mrp.county if township is None else without.mrp.township
        value = float(estimates.estimate[0 if township is None else township])
        return round(value, 6) if math.isfinite(value) else None
    cells = without.frame.cells
    mask = np.ones(len(cells), dtype=bool) if township is None else cells.township == township
    n = int(cells.n[mask].sum())
    return float(cells.literate[mask].sum()) / n if n else None


def _suppressed(rows: list[Document], *, total: bool = True, hidden: Any = None) -> list[Document]:
    """Blank every figure of rows too small to publish, and of the rows suppressed alongside
    them so that no small row can be recovered from the published total."""
    if hidden is None:
        hidden = est.suppress([row["respondents"] for row in rows], total_published=total).rows
    for row, suppressed in zip(rows, hidden, strict=True):
        for name in SHARE_FIELDS:  # a degenerate fit must read as "no figure", never NaN
            value = row.get(name)
            if isinstance(value, float) and not math.isfinite(value):
                row[name] = None
        row["suppressed"] = bool(suppressed)
        if suppressed:
            for name in SHARE_FIELDS:
                row[name] = None
            row["tiers"] = dict.fromkeys(row["tiers"])
            row["dimension_means"] = dict.fromkeys(row["dimension_means"])
            row["weakest_dimension"] = None
            row.pop("n_eff", None)
            if "sensitivity" in row:
                row["sensitivity"] = None
    return rows
