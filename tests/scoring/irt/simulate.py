"""Seeded simulations shared by the IRT tests: banks with known parameters, blueprint forms,
and the residents' answers to them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from scoring.irt.model import BLUEPRINT, DIMENSIONS, FloatArray, IntArray, ItemBank, item_bank

BANK_SIZES = {"knowledge": 32, "method": 16, "spirit": 16, "application": 16}


@dataclass(frozen=True)
class Sample:
    """Sparse answers: one row per (person, item)."""

    person: IntArray
    item: IntArray
    correct: IntArray


def true_bank(rng: np.random.Generator, sizes: dict[str, int] = BANK_SIZES) -> ItemBank:
    """a ~ lognormal(0, 0.3) clipped to [0.5, 2.5], b ~ N(0, 1), dimensions in blocks."""
    dimension = [d for d in DIMENSIONS for _ in range(sizes[d])]
    n = len(dimension)
    a = np.clip(rng.lognormal(0.0, 0.3, n), 0.5, 2.5)
    b = rng.normal(0.0, 1.0, n)
    return item_bank([f"q{i:03d}" for i in range(n)], dimension, a, b)


def blueprint_forms(
    bank: ItemBank, persons: int, rng: np.random.Generator, blueprint: dict[str, int] = BLUEPRINT
) -> IntArray:
    """persons × 30 item indices, each row a random draw meeting the blueprint."""
    columns = []
    for dimension, count in blueprint.items():
        pool = np.flatnonzero(bank.dimension == dimension)
        keys = rng.random((persons, pool.size))
        columns.append(pool[np.argsort(keys, axis=1)[:, :count]])
    return np.hstack(columns).astype(np.int64)


def answer(
    theta: FloatArray,
    forms: IntArray,
    a: FloatArray,
    b: FloatArray,
    rng: np.random.Generator,
    person_offset: int = 0,
) -> Sample:
    """Every person answers every item of their form (rows of `forms`) under the 2PL."""
    persons = np.repeat(np.arange(forms.shape[0]), forms.shape[1])
    items = forms.ravel()
    p = special.expit(a[items] * (theta[persons] - b[items]))
    correct = (rng.random(items.size) < p).astype(np.int64)
    return Sample(persons + person_offset, items, correct)


def concatenate(*samples: Sample) -> Sample:
    return Sample(
        np.concatenate([s.person for s in samples]),
        np.concatenate([s.item for s in samples]),
        np.concatenate([s.correct for s in samples]),
    )
