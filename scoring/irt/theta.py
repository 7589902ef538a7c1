"""Person scoring: the EAP (posterior mean) of θ and its posterior SD under the 2PL.

EAP rather than maximum likelihood because it is finite for all-right and all-wrong answer
sheets and because its posterior SD is the standard error the adaptive test stops on. The
posterior is evaluated on 61 nodes spanning the prior's mean ± 5 SD."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.irt.model import (
    FloatArray,
    Quadrature,
    as_floats,
    log_likelihood_table,
    normal_weights,
    person_log_likelihoods,
    posteriors,
    response_design,
    responses,
)


def prior_quadrature(mean: float = 0.0, sd: float = 1.0, points: int = 61) -> Quadrature:
    nodes = mean + sd * np.linspace(-5.0, 5.0, points)
    return Quadrature(nodes, normal_weights(nodes, mean, sd))


def eap(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    correct: npt.ArrayLike,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
) -> tuple[float, float]:
    """(θ, posterior SD) from one answer sheet: the answered items' a, b and 0/1 answers."""
    quadrature = prior_quadrature(prior_mean, prior_sd)
    a, b = as_floats(a).ravel(), as_floats(b).ravel()
    right = np.asarray(correct, dtype=bool).ravel()
    table = log_likelihood_table(quadrature.nodes, a, b)
    rows = np.where(right, np.arange(a.size), a.size + np.arange(a.size))
    log_posterior = table[rows].sum(axis=0) + quadrature.log_weights
    weights = np.exp(log_posterior - log_posterior.max())
    mean, sd = _moments(weights[None, :] / weights.sum(), quadrature.nodes)
    return float(mean[0]), float(sd[0])


def eap_many(
    person_index: npt.ArrayLike,
    item_index: npt.ArrayLike,
    correct: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    n_persons: int | None = None,
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """EAP θ and posterior SD of many persons from sparse answers; item_index indexes a and
    b. A person without answers gets the prior's mean and SD."""
    a, b = as_floats(a), as_floats(b)
    data = responses(person_index, item_index, correct, n_persons=n_persons, n_items=a.size)
    quadrature = prior_quadrature(prior_mean, prior_sd)
    table = log_likelihood_table(quadrature.nodes, a, b)
    post, _ = posteriors(
        person_log_likelihoods(response_design(data), table), quadrature.log_weights
    )
    return _moments(post, quadrature.nodes)


def _moments(post: FloatArray, nodes: FloatArray) -> tuple[FloatArray, FloatArray]:
    mean = post @ nodes
    variance = post @ nodes**2 - mean**2
    return as_floats(mean), as_floats(np.sqrt(np.maximum(variance, 0.0)))
