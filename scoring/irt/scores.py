"""Equated assessment scores: the EAP θ from a resident's answers and the expected total on
the scale's fixed reference form at that θ (IRT true-score equating), so the 70 cut means the
same ability whichever form was drawn."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from question_bank.item_params import ItemParams, Scale
from scoring.irt.equating import expected_total, reference_from_items
from scoring.irt.theta import eap

# Below this many calibrated items on a 30-item form, θ would rest on too little: the form is
# scored as percent correct (and says so) until the bank's new items are calibrated.
MIN_CALIBRATED_ITEMS = 20


@dataclass(frozen=True)
class Equated:
    theta: float
    theta_se: float
    total: float  # expected total on the reference form, 0..100


def equate(
    scale: Scale | None, params: dict[str, ItemParams], answers: Iterable[tuple[str, bool]]
) -> Equated | None:
    """`answers` are ("id:version", right) pairs; None without a scale or with too few
    calibrated items on the form."""
    if scale is None:
        return None
    used = [(params[key], right) for key, right in answers if key in params]
    used = [(p, right) for p, right in used if p.calibrated]
    if len(used) < MIN_CALIBRATED_ITEMS:
        return None
    theta, sd = eap([p.a for p, _ in used], [p.b for p, _ in used], [r for _, r in used])
    total = expected_total(theta, reference_from_items(list(scale.reference)))
    return Equated(theta=theta, theta_se=sd, total=min(max(total, 0.0), 100.0))
