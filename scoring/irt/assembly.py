"""Assembly of fixed forms from a calibrated bank: the blueprint, a target test information at
the cut, and exposure control.

The form's information at θ_cut (Σ a²PQ of its items) decides how precisely residents near
the literate cut are classified, so every form should carry about the same amount: within
`tolerance` (±10 %) of the target. Items are chosen one blueprint slot at a time, the slots'
dimensions in random order; each slot needs (target - information so far) / slots left, and
the item is drawn at random among the `randomesque` eligible items of its dimension whose
information is nearest that need (Kingsbury & Zara's randomesque control, aimed at a target
rather than at the maximum, which would always pick the same most informative items). A final
pass swaps items within a dimension while that brings the information into the band.

Exposure (the restricted method of Revuelta & Ponsoda, 1998): given how many of the forms
drawn so far carried each item, an item is eligible only if taking it keeps its exposure
rate at or below `max_exposure`. When a dimension has too few eligible items the least
exposed ones fill it, so a form is always produced; the cap then holds only as far as the
bank allows: a dimension of N items from which every form takes n has a mean exposure of n/N,
and no control can bring its most exposed item below that (a 32/16/16/16 bank under the
12/6/6/6 blueprint has n/N = 0.375 in every dimension)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.irt.model import BLUEPRINT, BoolArray, FloatArray, IntArray, ItemBank


@dataclass(frozen=True)
class AssembledForm:
    items: IntArray  # bank indices, in the order of the blueprint's dimensions
    information: float  # test information at θ_cut
    within_target: bool


def form_information(bank: ItemBank, items: npt.ArrayLike, theta: float) -> float:
    return float(bank.information(theta)[np.asarray(items, dtype=np.int64)].sum())


def random_blueprint_form(
    bank: ItemBank, rng: np.random.Generator, blueprint: dict[str, int] = BLUEPRINT
) -> IntArray:
    """A form drawn uniformly at random within each dimension."""
    chosen = [
        rng.choice(np.flatnonzero(bank.dimension == dimension), size=count, replace=False)
        for dimension, count in blueprint.items()
    ]
    return np.concatenate(chosen).astype(np.int64)


def propose_target_information(
    bank: ItemBank,
    theta: float,
    rng: np.random.Generator,
    blueprint: dict[str, int] = BLUEPRINT,
    draws: int = 500,
) -> float:
    """The median information at θ of random blueprint forms: a target that many different
    forms can meet, so aiming at it does not wear out a few items."""
    information = bank.information(theta)
    return float(
        np.median(
            [information[random_blueprint_form(bank, rng, blueprint)].sum() for _ in range(draws)]
        )
    )


def assemble_form(
    bank: ItemBank,
    theta_cut: float,
    target_information: float,
    rng: np.random.Generator,
    *,
    blueprint: dict[str, int] = BLUEPRINT,
    exposure_counts: npt.ArrayLike | None = None,
    forms_drawn: int = 0,
    max_exposure: float = 0.25,
    randomesque: int = 5,
    tolerance: float = 0.10,
) -> AssembledForm:
    """One form meeting the blueprint; see the module docstring. exposure_counts[i] is the
    number of the `forms_drawn` earlier forms that carried item i (the caller keeps them)."""
    for dimension, count in blueprint.items():
        if np.count_nonzero(bank.dimension == dimension) < count:
            raise ValueError(f"the bank has fewer {dimension} items than the blueprint's {count}")
    information = bank.information(theta_cut)
    eligible = _eligible(bank, blueprint, exposure_counts, forms_drawn, max_exposure)
    slots = rng.permutation(np.repeat(np.array(list(blueprint)), list(blueprint.values())))
    used = np.zeros(len(bank), dtype=bool)
    total = 0.0
    for position, dimension in enumerate(slots):
        need = (target_information - total) / (slots.size - position)
        pool = np.flatnonzero(eligible & ~used & (bank.dimension == dimension))
        nearest = pool[np.argsort(np.abs(information[pool] - need), kind="stable")[:randomesque]]
        item = int(rng.choice(nearest))
        used[item] = True
        total += float(information[item])
    _swap_into_band(bank, information, eligible, used, target_information, tolerance)
    items = np.concatenate([np.flatnonzero(used & (bank.dimension == d)) for d in blueprint])
    achieved = float(information[items].sum())
    return AssembledForm(
        items, achieved, abs(achieved - target_information) <= tolerance * target_information
    )


def _eligible(
    bank: ItemBank,
    blueprint: dict[str, int],
    exposure_counts: npt.ArrayLike | None,
    forms_drawn: int,
    max_exposure: float,
) -> BoolArray:
    """Items that this form may carry without passing the exposure cap, topped up per
    dimension with the least exposed items when the cap leaves too few."""
    if exposure_counts is None:
        return np.ones(len(bank), dtype=bool)
    counts = np.asarray(exposure_counts, dtype=np.float64)
    eligible = counts + 1.0 <= max_exposure * (forms_drawn + 1)
    for dimension, needed in blueprint.items():
        pool = np.flatnonzero(bank.dimension == dimension)
        # A margin over the blueprint's count leaves the information targeting some choice.
        wanted = min(pool.size, needed + max(needed // 2, 1))
        if np.count_nonzero(eligible[pool]) < wanted:
            least_exposed = pool[np.argsort(counts[pool], kind="stable")[:wanted]]
            eligible[least_exposed] = True
    return eligible


def _swap_into_band(
    bank: ItemBank,
    information: FloatArray,
    eligible: BoolArray,
    used: BoolArray,
    target: float,
    tolerance: float,
) -> None:
    """Swap single items within their dimension, best swap first, until the form's information
    is within the band or no swap brings it closer (updates `used`)."""
    for _ in range(int(used.sum())):
        total = float(information[used].sum())
        if abs(total - target) <= tolerance * target:
            return
        best_gap, best_pair = abs(total - target), None
        for item in np.flatnonzero(used):
            pool = np.flatnonzero(eligible & ~used & (bank.dimension == bank.dimension[item]))
            if pool.size == 0:
                continue
            gaps = np.abs(total - information[item] + information[pool] - target)
            candidate = int(np.argmin(gaps))
            if gaps[candidate] < best_gap:
                best_gap, best_pair = float(gaps[candidate]), (int(item), int(pool[candidate]))
        if best_pair is None:
            return
        used[best_pair[0]], used[best_pair[1]] = False, True
