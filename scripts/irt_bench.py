"""Benchmark of the IRT calibration: a bank of 500 items and 200,000 simulated answers
(about 6,700 residents × 30 items each), calibrated by EM; prints the seconds taken.

    .venv/bin/python -m scripts.irt_bench [--items 500] [--responses 200000] [--seed 0]"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import special

from scoring.irt.calibration import calibrate

ITEMS_PER_FORM = 30


def simulated_responses(
    items: int, responses: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(person, item, correct) for responses // 30 residents, each on 30 distinct items."""
    rng = np.random.default_rng(seed)
    persons = responses // ITEMS_PER_FORM
    a = np.clip(rng.lognormal(0.0, 0.3, items), 0.5, 2.5)
    b = rng.normal(0.0, 1.0, items)
    theta = rng.normal(0.0, 1.0, persons)
    forms = np.argsort(rng.random((persons, items)), axis=1)[:, :ITEMS_PER_FORM]
    person = np.repeat(np.arange(persons), ITEMS_PER_FORM)
    item = forms.ravel()
    correct = rng.random(item.size) < special.expit(a[item] * (theta[person] - b[item]))
    return person, item, correct


def time_calibration(items: int = 500, responses: int = 200_000, seed: int = 0) -> float:
    """Seconds to calibrate `items` items from `responses` simulated answers."""
    person, item, correct = simulated_responses(items, responses, seed)
    started = time.perf_counter()
    calibrate(person, item, correct, n_items=items)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds = time_calibration(args.items, args.responses, args.seed)
    print(f"IRT calibration, {args.items} items × {args.responses:,} responses: {seconds:.2f} s")


if __name__ == "__main__":
    main()
