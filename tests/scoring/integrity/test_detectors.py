"""screen: every attempt-level detector, reasons merged per attempt."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from scoring.integrity.detectors import REASON_CODES, AttemptRecord, screen
from tests.scoring.integrity.make import KEYS, T0, attempt, item

SEED = 13


def honest_crowd(n: int = 60) -> list[AttemptRecord]:
    rng = np.random.default_rng(SEED)
    crowd = []
    for k in range(n):
        items = []
        for number in range(30):
            order = [KEYS[j] for j in rng.permutation(4)]
            chosen = (order[int(rng.integers(0, 4))],)
            items.append(item(number, chosen, right=bool(rng.random() < 0.6), order=order))
        seconds = float(rng.lognormal(np.log(360), 0.3))
        submitted = T0 + timedelta(hours=k)
        crowd.append(
            attempt(f"h{k}", seconds=seconds, items=items, device=f"d{k}", submitted=submitted)
        )
    return crowd


def test_screen_merges_the_reasons_of_each_attempt_and_ranks_by_score() -> None:
    crowd = honest_crowd()
    liner_items = [item(n, ("A",), order=KEYS, right=n % 4 == 0) for n in range(30)]
    liner = attempt("liner", seconds=40.0, items=liner_items, device="d-liner")
    proxies = [
        attempt(f"p{k}", device="one-phone", submitted=T0 + timedelta(minutes=5 * k))
        for k in range(4)
    ]
    flags = screen([*crowd, liner, *proxies])
    by_id = {f.attempt_id: f for f in flags}
    assert set(by_id[liner.attempt_id].codes) == {"speeding", "straight_lining"}
    reasons = by_id[liner.attempt_id].reasons
    assert by_id[liner.attempt_id].score > max(r.strength for r in reasons)  # 1 − Π(1 − s)
    assert all("shared_device" in by_id[p.attempt_id].codes for p in proxies)
    assert [f.score for f in flags] == sorted((f.score for f in flags), reverse=True)
    assert all(set(f.codes) <= REASON_CODES for f in flags)
    assert not any(by_id[a.attempt_id].strong for a in crowd if a.attempt_id in by_id)


def test_screening_one_new_attempt_flags_it_against_its_neighbours() -> None:
    crowd = honest_crowd()
    fourth = attempt("p3", device="one-phone", submitted=T0 + timedelta(minutes=15))
    earlier = [
        attempt(f"p{k}", device="one-phone", submitted=T0 + timedelta(minutes=5 * k))
        for k in range(3)
    ]
    flags = screen([fourth], history=[*crowd, *earlier])
    assert {f.attempt_id for f in flags} == {a.attempt_id for a in [fourth, *earlier]}
    assert screen([crowd[0]], history=crowd[1:]) == []
