"""Entry point of the integrity detectors: every attempt-level detector and `screen`, which runs
them all and merges their reasons per attempt.

Each detector is a pure function of a batch of `AttemptRecord`s and, optionally, `history`:
earlier attempts that widen the norms and pair with the batch but are flagged only where the
batch's evidence involves them (the partner of a copied pair, an earlier resident on a shared
phone). A night's rerun passes the night's attempts (history: the weeks before); an arriving
attempt passes itself with its township-week as history, plus the night's fitted `norms`,
`chances` and `copying_model` to skip refitting them. Township-week jumps flag township-weeks,
not attempts, and are run on their own (`township_jumps`).

Modules: records (AttemptRecord, Flag, Reason), speed (speeding, impossible_perfect), copying,
clusters (shared_device, shared_network, channel_burst), patterns (straight_lining), helpers
(helper_speed, helper_copying: one helper's attempts taken together), jumps (township_jumps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scoring.integrity.clusters import channel_burst, shared_device, shared_network
from scoring.integrity.copying import CopyingModel, copying, fit_copying_model
from scoring.integrity.helpers import helper_copying, helper_speed
from scoring.integrity.jumps import TownshipJump, WeekStats, township_jumps, week_stats
from scoring.integrity.patterns import position_chances, straight_lining
from scoring.integrity.records import (
    LOOK_CODES,
    REASON_CODES,
    STRONG,
    AttemptRecord,
    Flag,
    FloatArray,
    ItemAnswer,
    ItemKey,
    Reason,
    combined_score,
    flag_score,
    merge_flags,
)
from scoring.integrity.speed import (
    FormKey,
    SpeedNorm,
    impossible_perfect,
    speed_norms,
    speeding,
)

__all__ = [
    "LOOK_CODES",
    "REASON_CODES",
    "STRONG",
    "AttemptRecord",
    "CopyingModel",
    "Flag",
    "ItemAnswer",
    "Reason",
    "SpeedNorm",
    "TownshipJump",
    "WeekStats",
    "channel_burst",
    "combined_score",
    "copying",
    "fit_copying_model",
    "flag_score",
    "helper_copying",
    "helper_speed",
    "impossible_perfect",
    "merge_flags",
    "position_chances",
    "screen",
    "shared_device",
    "shared_network",
    "speed_norms",
    "speeding",
    "straight_lining",
    "township_jumps",
    "week_stats",
]


def screen(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    norms: Mapping[FormKey, SpeedNorm] | None = None,
    chances: Mapping[ItemKey, FloatArray] | None = None,
    copying_model: CopyingModel | None = None,
    seed: int = 0,
    per_helper: bool = True,
) -> list[Flag]:
    """Every attempt-level detector on the batch, one flag per attempt with all its reasons
    (score = 1 − Π(1 − strength)), highest score first. Flags of history attempts appear only
    where the batch's evidence involves them. `per_helper` adds the checks of each helper's
    attempts taken together (the nightly pass; scoring.integrity.helpers says why)."""
    if not attempts:
        return []
    pool = [*attempts, *history]
    if norms is None:
        norms = speed_norms(pool)
    if chances is None:
        chances = position_chances(pool)
    if copying_model is None:  # one fit for both copying tests
        copying_model = fit_copying_model(pool, seed=seed)
    flags = [
        *speeding(attempts, history=history, norms=norms),
        *impossible_perfect(attempts, history=history, norms=norms),
        *straight_lining(attempts, history=history, chances=chances),
        *copying(attempts, history=history, model=copying_model, seed=seed),
        *shared_device(attempts, history=history),
        *shared_network(attempts, history=history),
        *channel_burst(attempts, history=history),
    ]
    if per_helper:
        flags += [
            *helper_speed(attempts, history=history, norms=norms),
            *helper_copying(attempts, history=history, model=copying_model, seed=seed),
        ]
    return merge_flags(flags)
