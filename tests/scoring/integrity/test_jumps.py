"""township_jumps: participation and mean score against the township's history."""

from __future__ import annotations

import numpy as np

from scoring.integrity.jumps import WeekStats, township_jumps, week_stats
from tests.scoring.integrity.make import attempt, item

SEED = 3
TOWNSHIPS = [f"4502231{t:02d}" for t in range(1, 11)]


def history(rng: np.random.Generator, weeks: int = 8) -> dict[str, list[WeekStats]]:
    out: dict[str, list[WeekStats]] = {}
    for township in TOWNSHIPS:
        out[township] = [
            WeekStats(
                township,
                f"2026-W{40 + w}",
                int(rng.poisson(60)),
                float(rng.normal(62, 18 / np.sqrt(60))),
                18.0,
            )
            for w in range(weeks)
        ]
    return out


def current(
    rng: np.random.Generator, **overrides: tuple[int, float]
) -> dict[tuple[str, str], WeekStats]:
    weeks = {}
    for township in TOWNSHIPS:
        n, mean = overrides.get(
            township, (int(rng.poisson(60)), float(rng.normal(62, 18 / np.sqrt(60))))
        )
        weeks[(township, "2026-W49")] = WeekStats(township, "2026-W49", n, mean, 18.0)
    return weeks


def test_a_surge_and_a_score_jump_are_found() -> None:
    rng = np.random.default_rng(SEED)
    past = history(rng)
    jumps = township_jumps(current(rng, **{TOWNSHIPS[0]: (180, 78.0)}), past)
    found = {(j.township_code, j.measure) for j in jumps}
    assert found == {(TOWNSHIPS[0], "participation"), (TOWNSHIPS[0], "mean_score")}
    surge = next(j for j in jumps if j.measure == "participation")
    assert surge.observed == 180 and 50 < surge.expected < 70
    assert surge.p_adjusted >= surge.p_value and surge.detail["tested"] == len(TOWNSHIPS)


def test_ordinary_weeks_and_drops_are_not_jumps() -> None:
    rng = np.random.default_rng(SEED)
    past = history(rng)
    assert (
        township_jumps(current(rng, **{TOWNSHIPS[1]: (70, 65.0), TOWNSHIPS[2]: (20, 40.0)}), past)
        == []
    )


def test_a_small_township_week_moves_its_mean_by_chance() -> None:
    rng = np.random.default_rng(SEED)
    past = history(rng)
    # 8 attempts at 72 %: 10 points up, but SE = 18/√8 ≈ 6.4: not a jump.
    assert township_jumps(current(rng, **{TOWNSHIPS[3]: (8, 72.0)}), past) == []


def test_townships_without_enough_history_are_not_tested() -> None:
    rng = np.random.default_rng(SEED)
    past = {t: weeks[:2] for t, weeks in history(rng).items()}
    assert township_jumps(current(rng, **{TOWNSHIPS[0]: (500, 95.0)}), past) == []


def test_week_stats_groups_one_mode_by_township_and_china_week() -> None:
    right, wrong = item(1), item(2, ("B",), right=False)
    attempts = [
        attempt("a", items=[right, wrong]),
        attempt("b", items=[right, right]),
        attempt("c", items=[wrong, wrong], mode="practice"),
        attempt("d", items=[right, right], township="450223102"),
    ]
    stats = week_stats(attempts)
    first = stats[("450223101", "2026-W49")]
    assert (first.attempts, first.mean_score) == (2, 75.0)
    assert stats[("450223102", "2026-W49")].attempts == 1
