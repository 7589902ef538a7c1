"""Assessment forms from the calibrated bank: the blueprint (12/6/6/6), test information at the
θ of the 70 cut within ±10 % of one target on every form, and exposure control so that no
item is on more than a quarter of the forms (scoring.irt.assembly does the choosing).

Exposure is counted per process: each process keeps every item at or below the cap on its
own forms, so the share over all processes' forms, a weighted mean of theirs, stays below it
too, with no shared counter to contend on. Counts are kept by question version across bank
generations (an edit or publish elsewhere in the bank does not reset them). The target is
worked out again for each generation: the median information at the cut of random blueprint
forms of that bank, which many different forms can meet."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from question_bank.cache import BankCache, PublishedQuestion
from scoring.irt.assembly import assemble_form, propose_target_information
from scoring.irt.model import BLUEPRINT, ItemBank, item_bank

log = logging.getLogger(__name__)
MAX_EXPOSURE = 0.25


@dataclass
class _Calibrated:
    generation: int
    questions: tuple[PublishedQuestion, ...]
    bank: ItemBank
    target: float
    theta_cut: float
    warned: bool = False


class FormAssembler:
    def __init__(self) -> None:
        self._state: _Calibrated | None = None
        self._rng = np.random.default_rng()
        self._exposure: dict[str, int] = {}  # "id:version" -> forms of this process with it
        self._forms = 0

    def form(self, bank: BankCache) -> list[PublishedQuestion] | None:
        """A form by the blueprint from the calibrated bank, or None when the bank has no
        scale or too few calibrated items for the blueprint (forms are then drawn as before)."""
        state = self._current(bank)
        if state is None:
            return None
        keys = [f"{q.id}:{q.version}" for q in state.questions]
        assembled = assemble_form(
            state.bank,
            state.theta_cut,
            state.target,
            self._rng,
            exposure_counts=[self._exposure.get(key, 0) for key in keys],
            forms_drawn=self._forms,
            max_exposure=MAX_EXPOSURE,
        )
        self._forms += 1
        if not assembled.within_target and not state.warned:
            state.warned = True  # once per bank generation: the bank, not the form, is short
            log.warning(
                "assessment form outside the information band",
                extra={"information": round(assembled.information, 3), "target": state.target},
            )
        for index in assembled.items:
            self._exposure[keys[index]] = self._exposure.get(keys[index], 0) + 1
        return [state.questions[i] for i in assembled.items]

    def exposure_rates(self) -> dict[str, float]:
        """Each item's share of this process's forms so far."""
        return {key: count / self._forms for key, count in self._exposure.items()}

    def _current(self, bank: BankCache) -> _Calibrated | None:
        if self._state is not None and self._state.generation == bank.generation:
            return self._state
        self._state = _arrange(bank, self._rng)
        return self._state


def _arrange(bank: BankCache, rng: np.random.Generator) -> _Calibrated | None:
    if bank.scale is None:
        return None
    chosen = []
    for question in sorted(bank.published.values(), key=lambda q: q.id):
        key = f"{question.id}:{question.version}"
        params = bank.irt.get(key)
        if params is not None and params.calibrated and key not in bank.held_from_assessment:
            chosen.append((question, params))
    dimensions = [q.dimension for q, _ in chosen]
    if any(dimensions.count(d) < count for d, count in BLUEPRINT.items()):
        return None
    calibrated = item_bank(
        [q.id for q, _ in chosen], dimensions, [p.a for _, p in chosen], [p.b for _, p in chosen]
    )
    theta_cut = bank.scale.theta_cut
    return _Calibrated(
        generation=bank.generation,
        questions=tuple(q for q, _ in chosen),
        bank=calibrated,
        target=propose_target_information(calibrated, theta_cut, rng),
        theta_cut=theta_cut,
    )
