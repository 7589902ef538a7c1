"""Acceptance simulation of the integrity detectors (`scoring.integrity`), with known truth.

A simulated county (tests/scoring/integrity/simulate.py): 12 townships, 4 weeks, about 60
honest 30-item assessments per township-week on 8 forms from a 300-item bank, answered under a
2PL model with item-specific distractor popularity (honest residents share wrong answers
often), lognormal times, family phones, village Wi-Fi and carrier NATs. Planted: a helper
answering 40 residents' assessments on one phone in two hours with his own answers, wrong ones
shared (his residents score about 80 %, their neighbours 60 %); 30 speeders (10 of them
straight-lining); 15 residents copying a group chat's answer sheet with its 4 wrong answers;
10 residents with a leaked key; a registered helper making up 6 sessions a week in 6 townships
(issued in the morning, submitted a minute or two apart, his own answers). Honest but unusual: a
campaign channel bringing 120 high scorers (50 within one hour), 12 helper sessions on a
volunteer's tablet and 20 paper forms a helper uploaded at once.

Printed, with targets (✓ met, ✗ missed, · information):

1. Each strong detector: precision over every flag it raises (a flag on any dishonest attempt
   counts as right), recall on the attempts it is meant for, false flags as a share of honest
   attempts.
2. All strong flags (score ≥ 0.5): precision, recall over every dishonest attempt, false flags.
   The "look" flags (channel_burst, shared_network: a campaign push is legitimate) are reported
   apart and are not counted as false flags.
3. Copying against the fixed 85 % match rule (Kuriakose & Robbins), on the same pairs.
4. Township-week jumps: the planted ones found, false jumps among clean township-weeks.
5. Streaming: attempts screened one at a time against their township-week (with the night's
   norms and copying model) agree with the batch.
6. Township estimates: each township's literate share (percent score ≥ 70) over the month, by
   the published estimator (MRP, probit, `scoring.statistics.estimation_mrp.fit_mrp` on
   `Cells` and a census), before (every attempt) and after excluding the strong flags (standing
   for the reviewer's confirmed exclusions). Targets, in percentage points: the helper's
   township off by more than 5 before (the scenario bites) and within 2 after; the ring's
   township and every township within 2 after. The campaign's township is shown with and
   without the campaign's honest high scorers (information: they are not excluded).

   The truth the targets use is the same estimate on the township's honest attempts alone
   ("clean": what would have been published had nobody cheated), not the population's share.
   The simulation knows the population's share exactly (`simulate.true_share`: P(literate | θ)
   integrated over the township's θ ~ N(mean, 1)) and it is printed beside the estimates, but
   the honest sample of one township-month (about 150 attempts in the quick county, 250-350 in
   the full one) misses it by up to about 5 points by sampling alone (a binomial standard error
   of 4 points at 150 attempts, 3 at 300), which no screen can remove: against it a 2-point target would pass or
   fail with the seed, whatever the detectors did, and 40 planted attempts can only bite by
   more than 5 points in a township small enough for that sampling error. Against the clean
   estimate, before − clean is the planted attempts' effect and after − clean what the screen
   leaves of it (missed dishonest attempts and honest ones excluded). Every resident carries an
   age band, gender, education and group drawn from one census mix, the same in every township
   and unrelated to ability (simulate.py), and the census matches it; its township covariates
   would be rounding noise standardised to ±1.7, so the model is given a null covariate
   instead (the published defaults otherwise: probit, 1,000 draws).
7. Helpers at scale: the same county with 120 more honest helpers (one to three days each, 6-15
   residents a day read aloud one after another, a third with two tablets side by side, 30 %
   uploading paper forms instead), screened as one batch, as the nightly pass does (the per-
   helper checks do not run in the minute passes). Targets: the per-helper checks (helper_speed,
   helper_copying) and all strong flags each flag at most 1 % of the honest helpers' attempts,
   and the two checks together still find the made-up sessions (recall ≥ 0.8; each alone is
   shown: a day's first session has no gap before it, and a form the helper knew every answer
   of has no wrong answers to repeat).

    .venv/bin/python -m scripts.eval_integrity [--seed 2026] [--quick]

`--quick` runs a smaller county (6 townships, 3 weeks, the same scenarios); the exit status is
1 when any target is missed."""

from __future__ import annotations

import argparse
import operator
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from scoring.integrity.copying import CopyingModel, fit_copying_model
from scoring.integrity.detectors import (
    LOOK_CODES,
    AttemptRecord,
    Flag,
    position_chances,
    screen,
    speed_norms,
    township_jumps,
    week_stats,
)
from scoring.integrity.items import group_key
from scoring.integrity.records import CHINA
from scoring.statistics.estimation import AGE_BANDS, EDUCATIONS, GENDERS, GROUPS, Cells
from scoring.statistics.estimation_mrp import fit_mrp
from tests.scoring.integrity.simulate import (
    FIRST_MONDAY,
    HONEST_LABELS,
    LITERATE,
    County,
    CountySpec,
    simulate_county,
    true_share,
)

FULL = CountySpec()
QUICK = CountySpec(townships=6, weeks=3, per_week=40.0, speeders=12, straight_liners=5)
PRECISION, RECALL, FALSE_FLAGS = 0.9, 0.8, 0.01
# The strong detectors and the labels each is meant for.
INTENDED: dict[str, tuple[str, ...]] = {
    "speeding": ("speeder", "straight_liner"),
    "impossible_perfect": ("leaked",),
    "copying": ("ring",),
    "shared_device": ("helper",),
    "straight_lining": ("straight_liner",),
    "helper_speed": ("helper_fabricated",),
    "helper_copying": ("helper_fabricated",),
}
# Checks that share their attempts: each alone misses some by design (a helper's first session
# of a day has no gap before it; a form he knew every answer of has no wrong answers to repeat),
# so their recall target is on what they flag together.
TOGETHER = ("helper_speed", "helper_copying")
HONEST_HELPERS = 120  # section 7
PERCENT_MATCH = 0.85
STREAMED = 150  # attempts screened one at a time
BITES, WITHIN = 5.0, 2.0  # points: the estimate before is off by more, after by at most
MRP_DRAWS = 1000  # as published (scoring.statistics.report.MRP_DRAWS)


# ---------------------------------------------------------------------------------------------
# Results (the layout of scripts/eval_irt.py)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One printed figure; `passed` is None for a figure shown for information only."""

    label: str
    value: str
    target: str = ""
    passed: bool | None = None


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "≥": operator.ge,
    "≤": operator.le,
    ">": operator.gt,
}


def checked(label: str, value: float, comparison: str, bound: float, spec: str) -> Figure:
    return Figure(
        label,
        format(value, spec),
        f"{comparison} {format(bound, spec)}",
        bool(_COMPARISONS[comparison](value, bound)),
    )


def shown(label: str, value: float | str, spec: str = "") -> Figure:
    return Figure(label, format(value, spec))


@dataclass
class ScenarioResult:
    title: str
    setup: str
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def targets(self) -> list[Figure]:
        return [f for f in self.figures if f.passed is not None]

    @property
    def missed(self) -> list[Figure]:
        return [f for f in self.targets if not f.passed]


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screened:
    county: County
    records: list[AttemptRecord]
    flags: dict[str, Flag]
    honest: set[str]
    dishonest: set[str]
    seconds: float
    model: CopyingModel


def run_screen(spec: CountySpec, seed: int) -> Screened:
    county = simulate_county(spec, seed)
    records = [AttemptRecord.from_doc(doc) for doc in county.docs]
    started = time.perf_counter()
    model = fit_copying_model(records, seed=seed)
    flags = screen(records, copying_model=model, seed=seed)
    seconds = time.perf_counter() - started
    honest = {a for a, label in county.labels.items() if label in HONEST_LABELS}
    return Screened(
        county,
        records,
        {f.attempt_id: f for f in flags},
        honest,
        set(county.labels) - honest,
        seconds,
        model,
    )


def _share(part: Iterable[str], whole: set[str]) -> float:
    return len(set(part) & whole) / len(whole) if whole else 0.0


def _precision(flagged: set[str], dishonest: set[str]) -> float:
    return len(flagged & dishonest) / len(flagged) if flagged else 1.0


def detectors(run: Screened) -> ScenarioResult:
    figures = []
    for code, labels in INTENDED.items():
        flagged = {a for a, f in run.flags.items() if code in f.codes}
        meant = run.county.ids(*labels)
        recall_label = f"{code}: recall on {'+'.join(labels)} ({len(meant)})"
        figures += [
            checked(
                f"{code}: precision ({len(flagged)} flagged)",
                _precision(flagged, run.dishonest),
                "≥",
                PRECISION,
                ".3f",
            ),
            shown(recall_label, _share(flagged, meant), ".3f")
            if code in TOGETHER
            else checked(recall_label, _share(flagged, meant), "≥", RECALL, ".3f"),
            checked(
                f"{code}: false flags / honest",
                len(flagged & run.honest) / len(run.honest),
                "≤",
                FALSE_FLAGS,
                ".2%",
            ),
        ]
    figures.append(_together_recall(run))
    copied = {a for a, f in run.flags.items() if "copying" in f.codes}
    figures.append(
        shown(
            "copying: also caught, helper attempts",
            f"{len(copied & run.county.ids('helper'))} of {len(run.county.ids('helper'))}",
        )
    )
    return ScenarioResult("1. Detectors", "each strong detector on its own flags", figures)


def _together_recall(run: Screened) -> Figure:
    made_up = run.county.ids(*INTENDED[TOGETHER[0]])
    flagged = {a for a, f in run.flags.items() if set(TOGETHER) & set(f.codes)}
    return checked(
        f"{' or '.join(TOGETHER)}: recall on helper_fabricated ({len(made_up)})",
        _share(flagged, made_up),
        "≥",
        RECALL,
        ".3f",
    )


def overall(run: Screened) -> ScenarioResult:
    strong = {a for a, f in run.flags.items() if f.strong}
    ring = run.county.ids("ring")
    others = {
        a
        for a in ring
        if a in run.flags
        and any(r.strength >= 0.5 and r.code != "copying" for r in run.flags[a].reasons)
    }
    look_only = {a for a, f in run.flags.items() if not f.strong}
    by_label = Counter(run.county.labels[a] for a in strong)
    return ScenarioResult(
        "2. All strong flags",
        f"{len(run.records):,} attempts: {len(run.honest):,} honest (campaign and helper sessions included), "
        f"{len(run.dishonest)} dishonest; strong = score ≥ 0.5",
        [
            checked("precision", _precision(strong, run.dishonest), "≥", PRECISION, ".3f"),
            checked(
                "recall, every dishonest attempt", _share(strong, run.dishonest), "≥", RECALL, ".3f"
            ),
            checked(
                "false flags / honest",
                len(strong & run.honest) / len(run.honest),
                "≤",
                FALSE_FLAGS,
                ".2%",
            ),
            shown(
                "strong flags by label", ", ".join(f"{k} {v}" for k, v in sorted(by_label.items()))
            ),
            shown(
                "ring attempts with a strong reason besides copying",
                f"{len(others)} of {len(ring)}",
            ),
            shown(
                "honest attempts with only look flags (not counted)",
                f"{len(look_only & run.honest)}",
            ),
            shown("look flags on the campaign's attempts (burst of 50)", _look(run, "campaign")),
            shown("look flags on the helper's attempts", _look(run, "helper")),
            shown(
                "helper sessions (volunteer's tablet) flagged strong",
                f"{len(strong & run.county.ids('assisted'))} of {len(run.county.ids('assisted'))}",
            ),
        ],
    )


def _look(run: Screened, label: str) -> str:
    ids = run.county.ids(label)
    counts = Counter(
        code for a in ids if a in run.flags for code in run.flags[a].codes if code in LOOK_CODES
    )
    return ", ".join(f"{code} {counts[code]}" for code in sorted(LOOK_CODES)) + f" (of {len(ids)})"


def percent_match_flags(
    records: Sequence[AttemptRecord], threshold: float = PERCENT_MATCH
) -> set[str]:
    """The fixed rule this package rejects (Kuriakose & Robbins 2016): a pair whose answers are
    identical on ≥ 85 % of the items they share (right answers included), on the same pairs as
    the copying test (one township-week and mode, ≥ 5 shared items, different residents)."""
    groups: dict[tuple[str, str, str], list[AttemptRecord]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    flagged: set[str] = set()
    for members in groups.values():
        keys = sorted({i.key for r in members for i in r.items})
        column = {k: j for j, k in enumerate(keys)}
        codes: dict[tuple[str, ...], int] = {}
        answers = np.full((len(members), len(keys)), -1, dtype=np.int64)
        for row, record in enumerate(members):
            for item in record.items:
                answers[row, column[item.key]] = codes.setdefault(item.chosen, len(codes))
        held = answers >= 0
        shared = held.astype(np.int64) @ held.T.astype(np.int64)
        for row in range(len(members)):
            same = ((answers == answers[row]) & held & held[row]).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                match = same / shared[row]
            for other in np.flatnonzero((shared[row] >= 5) & (match >= threshold)):
                user = members[row].user_id
                if other != row and (user is None or members[other].user_id != user):
                    flagged |= {members[row].attempt_id, members[other].attempt_id}
    return flagged


def against_percent_match(run: Screened) -> ScenarioResult:
    rule = percent_match_flags(run.records)
    copied = {a for a, f in run.flags.items() if "copying" in f.codes}
    ring = run.county.ids("ring")
    rule_false = len(rule & run.honest) / len(run.honest)
    ours_false = len(copied & run.honest) / len(run.honest)
    rates = ", ".join(
        f"p ≤ {t:g}: {r:.4f}" for t, r in sorted(run.model.null_rates.items(), reverse=True)
    )
    return ScenarioResult(
        "3. Copying against the 85 % rule",
        "the same pairs (township-week and mode, ≥ 5 shared items); honest residents share "
        "popular wrong answers and, when able, most right ones",
        [
            checked(
                "85 % rule: false flags / honest (must fail the 1 % target)",
                rule_false,
                ">",
                FALSE_FLAGS,
                ".2%",
            ),
            shown("85 % rule: recall on the ring", _share(rule, ring), ".3f"),
            checked("copying test: false flags / honest", ours_false, "≤", FALSE_FLAGS, ".2%"),
            shown("copying test: recall on the ring", _share(copied, ring), ".3f"),
            checked(
                "null pairs (other township-weeks) with p ≤ 0.01",
                run.model.null_rates.get(0.01, 0.0),
                "≤",
                0.01,
                ".4f",
            ),
            shown(
                "null pairs, rates",
                f"{run.model.null_pairs:,} pairs; {rates}; inflation {run.model.inflation:.2f}",
            ),
        ],
    )


def jumps(run: Screened) -> ScenarioResult:
    county = run.county
    stats = week_stats(run.records)
    touched = Counter(
        (r.township_code, r.week) for r in run.records if county.labels[r.attempt_id] != "honest"
    )
    scenario = {k for k, n in touched.items() if n >= 10}
    found = []
    for week in county.weeks:  # weekly, as the county would run it
        current = {k: v for k, v in stats.items() if k[1] == week}
        found += township_jumps(current, county.history_stats)
    got = {(j.township_code, j.week, j.measure) for j in found}
    campaign = {
        j for j in county.planted_jumps if j[0] == county.townships[1 % len(county.townships)]
    }
    helper = county.planted_jumps - campaign
    clean_tests = 2 * sum(1 for k in stats if k not in scenario)
    false = [g for g in got if (g[0], g[1]) not in scenario]
    return ScenarioResult(
        "4. Township-week jumps",
        f"{len(stats)} township-weeks against {county.spec.history_weeks} earlier weeks each; "
        "Holm across townships per week and measure, α = 0.05",
        [
            checked(
                "campaign week: participation and mean score found",
                len(got & campaign),
                "≥",
                len(campaign),
                "d",
            ),
            shown(
                "helper week: participation (+40) found", f"{len(got & helper)} of {len(helper)}"
            ),
            checked(
                "false jumps / clean township-week tests",
                len(false) / max(clean_tests, 1),
                "≤",
                0.05,
                ".2%",
            ),
            shown("false jumps", f"{len(false)} of {clean_tests} tests"),
        ],
    )


def streaming(run: Screened, seed: int) -> ScenarioResult:
    """A sample of attempts screened one at a time, each against its township-week as history
    and with the batch's norms, position chances and copying model: the strong reasons agree."""
    rng = np.random.default_rng([seed, 5])
    records = run.records
    norms, chances = speed_norms(records), position_chances(records)
    by_week: dict[tuple[str | None, str], list[AttemptRecord]] = {}
    for record in records:
        by_week.setdefault((record.township_code, record.week), []).append(record)
    dishonest = [r for r in records if r.attempt_id in run.dishonest]
    honest = [r for r in records if r.attempt_id in run.honest]
    sample = [
        *dishonest[: STREAMED // 2],
        *rng.permutation(np.array(honest, dtype=object))[
            : STREAMED - min(len(dishonest), STREAMED // 2)
        ],
    ]
    agree, seconds = 0, []
    for record in sample:
        neighbours = [r for r in by_week[(record.township_code, record.week)] if r is not record]
        started = time.perf_counter()
        flags = screen(
            [record], history=neighbours, norms=norms, chances=chances, copying_model=run.model
        )
        seconds.append(time.perf_counter() - started)
        alone = next((f for f in flags if f.attempt_id == record.attempt_id), None)
        batch = run.flags.get(record.attempt_id)
        agree += _strong_codes(alone) == _strong_codes(batch)
    return ScenarioResult(
        "5. Streaming",
        f"{len(sample)} attempts ({min(len(dishonest), STREAMED // 2)} dishonest) screened alone "
        "against their township-week, with the night's norms and copying model",
        [
            checked("strong reasons agree with the batch", agree / len(sample), "≥", 0.98, ".3f"),
            checked("seconds per attempt, mean", float(np.mean(seconds)), "≤", 0.5, ".3f"),
            shown("seconds per attempt, max", float(np.max(seconds)), ".3f"),
        ],
    )


def _strong_codes(flag: Flag | None) -> set[str]:
    return set() if flag is None else {r.code for r in flag.reasons if r.strength >= 0.5}


# ---------------------------------------------------------------------------------------------
# Township estimates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TownshipFigures:
    """One township's literate share in percent: MRP estimates on four sets of attempts (with
    the 95 % interval after exclusion) and the population's share from known abilities."""

    code: str
    before: float  # every attempt of the month
    after: float  # without the strong flags
    clean: float  # the honest attempts alone: the targets' truth
    without_campaign: float  # after, and without the campaign's attempts
    truth: float  # the population's expected share (simulate.true_share)
    after_interval: tuple[float, float]
    attempts: int
    honest: int


def month_attempts(county: County) -> list[dict[str, Any]]:
    """The attempts submitted in the simulation's month (China time, that of its first week): all
    of them, as the simulated weeks start on Monday 2 November 2026 and end within November."""
    month = _month(FIRST_MONDAY)
    return [doc for doc in county.docs if _month(doc["submitted_at"]) == month]


def _month(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m")


def _cell_rows(county: County, docs: Sequence[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Per attempt: township, age band, gender, education and group indices, and literate."""
    index = {code: t for t, code in enumerate(county.townships)}
    rows: dict[str, tuple[int, ...]] = {}
    for doc in docs:
        profile, items = doc["profile"], doc["items"]
        right = sum(item["mark"] for item in items)
        rows[str(doc["_id"])] = (
            index[profile["township_code"]],
            AGE_BANDS.index(profile["age_band"]),
            GENDERS.index(profile["gender"]),
            EDUCATIONS.index(profile["education"]),
            GROUPS.index(profile["group"]),
            int(100 * right >= LITERATE * len(items)),
        )
    return rows


def cells_of(rows: Sequence[tuple[int, ...]], townships: int) -> Cells:
    """Attempts aggregated to township × age × gender × education × group cells."""
    table = np.array(rows, dtype=np.int64).reshape(-1, 6)
    shape = (townships, len(AGE_BANDS), len(GENDERS), len(EDUCATIONS), len(GROUPS))
    key = np.ravel_multi_index(tuple(table[:, :5].T), shape)
    unique, inverse = np.unique(key, return_inverse=True)
    n = np.bincount(inverse, minlength=unique.size)
    literate = np.bincount(inverse, weights=table[:, 5], minlength=unique.size)
    township, age, gender, education, group = np.unravel_index(unique, shape)
    return Cells(township, age, gender, education, group, n, literate.astype(np.int64))


def estimate_townships(run: Screened, seed: int) -> list[TownshipFigures]:
    """Every township's figures; the same seed for every fit, so that only the attempts differ."""
    county = run.county
    townships = len(county.townships)
    rows = _cell_rows(county, month_attempts(county))
    strong = {a for a, f in run.flags.items() if f.strong}
    campaign = county.ids("campaign")
    sets = {
        "before": list(rows),
        "after": [a for a in rows if a not in strong],
        "clean": [a for a in rows if a in run.honest],
        "without_campaign": [a for a in rows if a not in strong | campaign],
    }
    fits = {
        name: fit_mrp(
            cells_of([rows[a] for a in ids], townships),
            county.census,
            covariates=np.zeros((townships, 1)),
            draws=MRP_DRAWS,
            seed=seed,
        ).township
        for name, ids in sets.items()
    }
    truth = true_share(county)
    attempts = np.bincount([rows[a][0] for a in rows], minlength=townships)
    honest = np.bincount([rows[a][0] for a in sets["clean"]], minlength=townships)
    share = {name: 100 * fit.estimate for name, fit in fits.items()}
    return [
        TownshipFigures(
            code,
            float(share["before"][t]),
            float(share["after"][t]),
            float(share["clean"][t]),
            float(share["without_campaign"][t]),
            100 * float(truth[t]),
            (100 * float(fits["after"].lower[t]), 100 * float(fits["after"].upper[t])),
            int(attempts[t]),
            int(honest[t]),
        )
        for t, code in enumerate(county.townships)
    ]


def township_of(county: County, label: str) -> str:
    """The township where a scenario's attempts were planted (the most of them)."""
    codes = Counter(
        doc["profile"]["township_code"] for doc in county.docs if county.labels[doc["_id"]] == label
    )
    return codes.most_common(1)[0][0]


def township_estimates(run: Screened, seed: int) -> ScenarioResult:
    county = run.county
    figures = {f.code: f for f in estimate_townships(run, seed)}
    helper = figures[township_of(county, "helper")]
    ring = figures[township_of(county, "ring")]
    campaign = figures[township_of(county, "campaign")]
    return ScenarioResult(
        "6. Township estimates",
        f"literate share (percent ≥ {LITERATE:g}) over the month ({len(county.weeks)} weeks) "
        "by MRP on the census, in points; before: every attempt; after: without the strong "
        "flags; clean (the targets' truth): the honest attempts alone; truth: the population's "
        "share from known abilities",
        [
            checked(
                f"helper's township {helper.code}: |before − clean|",
                abs(helper.before - helper.clean),
                ">",
                BITES,
                ".1f",
            ),
            checked(
                f"helper's township {helper.code}: |after − clean|",
                abs(helper.after - helper.clean),
                "≤",
                WITHIN,
                ".1f",
            ),
            *_shares("helper's township", helper),
            shown(
                f"ring's township {ring.code}: |before − clean|",
                abs(ring.before - ring.clean),
                ".1f",
            ),
            checked(
                f"ring's township {ring.code}: |after − clean|",
                abs(ring.after - ring.clean),
                "≤",
                WITHIN,
                ".1f",
            ),
            *_shares("ring's township", ring),
            shown(
                f"every township ({len(figures)}): largest |before − clean|",
                max(abs(f.before - f.clean) for f in figures.values()),
                ".1f",
            ),
            checked(
                f"every township ({len(figures)}): largest |after − clean|",
                max(abs(f.after - f.clean) for f in figures.values()),
                "≤",
                WITHIN,
                ".1f",
            ),
            shown(
                f"campaign's township {campaign.code} ({len(county.ids('campaign'))} kept)",
                f"with the campaign {campaign.after:.1f} ({campaign.after - campaign.truth:+.1f}), "
                f"without {campaign.without_campaign:.1f} "
                f"({campaign.without_campaign - campaign.truth:+.1f}), truth {campaign.truth:.1f}",
            ),
        ],
    )


def _shares(name: str, figures: TownshipFigures) -> list[Figure]:
    low, high = figures.after_interval
    return [
        shown(
            f"{name}: before / after / clean / truth",
            f"{figures.before:.1f} / {figures.after:.1f} / {figures.clean:.1f} / "
            f"{figures.truth:.1f}",
        ),
        shown(
            f"{name}: attempts (honest), after's 95 % interval",
            f"{figures.attempts} ({figures.honest}); {low:.1f}-{high:.1f}, truth "
            f"{'inside' if low <= figures.truth <= high else 'outside'}",
        ),
    ]


def helpers_at_scale(spec: CountySpec, seed: int) -> ScenarioResult:
    run = run_screen(replace(spec, honest_helpers=HONEST_HELPERS), seed)
    county = run.county
    sessions = county.ids("assisted", "paper")
    helpers = {r.helper_id for r in run.records if r.helper_id is not None}
    made_up = county.ids("helper_fabricated")
    strong = {a for a, f in run.flags.items() if f.strong}
    figures = [
        shown(
            "honest helpers' attempts (sessions + paper)",
            f"{len(county.ids('assisted'))} + {len(county.ids('paper'))} by {len(helpers) - 1} helpers",
        )
    ]
    for code in ("helper_speed", "helper_copying"):
        flagged = {a for a, f in run.flags.items() if code in f.codes}
        figures += [
            checked(
                f"{code}: false flags / honest helpers' attempts",
                len(flagged & sessions) / len(sessions),
                "≤",
                FALSE_FLAGS,
                ".2%",
            ),
            shown(
                f"{code}: recall on helper_fabricated ({len(made_up)})",
                _share(flagged, made_up),
                ".3f",
            ),
        ]
    figures += [
        _together_recall(run),
        checked(
            "all strong flags: false flags / honest helpers' attempts",
            len(strong & sessions) / len(sessions),
            "≤",
            FALSE_FLAGS,
            ".2%",
        ),
        checked(
            "all strong flags: recall on helper_fabricated",
            _share(strong, made_up),
            "≥",
            RECALL,
            ".3f",
        ),
        checked(
            "all strong flags: false flags / every honest attempt",
            len(strong & run.honest) / len(run.honest),
            "≤",
            FALSE_FLAGS,
            ".2%",
        ),
    ]
    return ScenarioResult(
        "7. Helpers at scale",
        f"{HONEST_HELPERS} more honest helpers; {len(run.records):,} attempts screened in "
        f"{run.seconds:.1f} s",
        figures,
    )


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def run_all(spec: CountySpec, seed: int) -> list[ScenarioResult]:
    started = time.perf_counter()
    run = run_screen(spec, seed)
    setup = time.perf_counter() - started
    results = []
    for make in (detectors, overall, against_percent_match, jumps):
        begun = time.perf_counter()
        result = make(run)
        result.seconds = time.perf_counter() - begun
        results.append(result)
    results[0].seconds += setup
    results[
        0
    ].setup += f" (simulation and screening of the batch: {run.seconds:.1f} s of screening)"
    for make_seeded in (streaming, township_estimates):
        begun = time.perf_counter()
        results.append(make_seeded(run, seed))
        results[-1].seconds = time.perf_counter() - begun
    begun = time.perf_counter()
    results.append(helpers_at_scale(spec, seed))
    results[-1].seconds = time.perf_counter() - begun
    return results


MARKS = {True: "✓", False: "✗", None: "·"}


def format_report(results: Sequence[ScenarioResult]) -> str:
    label_width = max(len(f.label) for r in results for f in r.figures)
    value_width = max(len(f.value) for r in results for f in r.figures if len(f.value) < 24)
    lines = []
    for result in results:
        lines += ["", f"{result.title} ({result.seconds:.1f} s): {result.setup}"]
        for figure in result.figures:
            if len(figure.value) >= 24:
                lines.append(f"   {MARKS[figure.passed]} {figure.label}: {figure.value}")
                continue
            lines.append(
                f"   {MARKS[figure.passed]} {figure.label:<{label_width}}  "
                f"{figure.value:>{value_width}}  {figure.target}".rstrip()
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="a smaller county (the test's)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run_all(QUICK if args.quick else FULL, args.seed)
    targets = [f for r in results for f in r.targets]
    missed = [(r.title, f.label) for r in results for f in r.missed]
    print(
        f"Integrity detectors with known truth, seed {args.seed}, {'quick' if args.quick else 'full'} county"
    )
    print(
        f"targets: precision ≥ {PRECISION}, recall ≥ {RECALL} on the attempts a detector is meant "
        f"for, false flags ≤ {FALSE_FLAGS:.0%} of honest attempts (strong flags only)"
    )
    print(format_report(results))
    print()
    verdict = (
        f"all {len(targets)} targets met"
        if not missed
        else f"{len(missed)} of {len(targets)} targets missed: "
        + "; ".join(f"{title}: {label}" for title, label in missed)
    )
    print(f"{verdict} ({time.perf_counter() - started:.1f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
