"""Linking a new calibration onto the previous scale with common (anchor) items.

A calibration that holds no item fixed puts its own population at N(0, 1); when the new
sample is abler or more spread, its scale differs from the old one by a linear map

    θ_old = A θ_new + B,   b_old = A b_new + B,   a_old = a_new / A.

Stocking & Lord (1983) choose A and B so that the anchors' test characteristic curves
(expected number right, Σ P_j) agree: they minimise Σ_k w_k [TCC_old(θ_k) - TCC_new→old(θ_k)]²
over the quadrature nodes θ_k of the old scale, weighted by its N(0, 1) density. The mean-sigma
solution from the anchors' b starts the search. The alternative, fixed-anchor calibration, is
calibration.calibrate(..., fixed={anchor: (a_old, b_old)})."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize

from scoring.irt.calibration import MODEL_2PL, MODEL_RASCH, Calibration
from scoring.irt.model import FloatArray, as_floats, normal_quadrature, probability


@dataclass(frozen=True)
class Linking:
    """θ_old = slope · θ_new + intercept."""

    slope: float
    intercept: float

    def theta(self, theta_new: npt.ArrayLike) -> FloatArray:
        return as_floats(self.slope * as_floats(theta_new) + self.intercept)

    def parameters(
        self, a_new: npt.ArrayLike, b_new: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        return as_floats(a_new) / self.slope, self.theta(b_new)

    def apply(self, calibration: Calibration) -> Calibration:
        """The calibration on the old scale. Only calibrated items ("2pl", "rasch") move:
        "prior" items keep the editors' prior, which is already on the reporting scale, and
        "fixed" items were given on it. The SEs scale with the map; the uncertainty of A and B
        themselves is not added."""
        moves = np.isin(np.asarray(calibration.model), (MODEL_2PL, MODEL_RASCH))
        a, b = self.parameters(calibration.a, calibration.b)
        return calibration.with_parameters(
            a=np.where(moves, a, calibration.a),
            b=np.where(moves, b, calibration.b),
            se_a=np.where(moves, calibration.se_a / self.slope, calibration.se_a),
            se_b=np.where(moves, calibration.se_b * self.slope, calibration.se_b),
            mean=float(self.theta(calibration.population_mean)),
            sd=calibration.population_sd * self.slope,
        )


def mean_sigma(b_new: npt.ArrayLike, b_old: npt.ArrayLike) -> Linking:
    """A = SD(b_old) / SD(b_new), B = mean(b_old) - A mean(b_new), over the anchors."""
    new, old = as_floats(b_new), as_floats(b_old)
    slope = float(old.std() / new.std())
    return Linking(slope, float(old.mean() - slope * new.mean()))


def stocking_lord(
    a_new: npt.ArrayLike, b_new: npt.ArrayLike, a_old: npt.ArrayLike, b_old: npt.ArrayLike
) -> Linking:
    """The Stocking-Lord linking of the anchors' new parameters onto their old ones."""
    a_new, b_new, a_old, b_old = (as_floats(v).ravel() for v in (a_new, b_new, a_old, b_old))
    if not a_new.size == b_new.size == a_old.size == b_old.size >= 2:
        raise ValueError("need the same two or more anchors in both calibrations")
    quadrature = normal_quadrature()
    nodes, weights = quadrature.nodes, quadrature.weights
    old_curve = probability(nodes[:, None], a_old, b_old).sum(axis=1)

    def criterion(transform: FloatArray) -> float:
        slope, intercept = transform
        new_curve = probability(nodes[:, None], a_new / slope, slope * b_new + intercept).sum(
            axis=1
        )
        return float(weights @ (old_curve - new_curve) ** 2)

    start = mean_sigma(b_new, b_old)
    result = optimize.minimize(
        criterion,
        np.array([start.slope, start.intercept]),
        method="L-BFGS-B",
        bounds=[(0.1, 10.0), (-10.0, 10.0)],
    )
    slope, intercept = (float(v) for v in result.x)
    return Linking(slope, intercept)
