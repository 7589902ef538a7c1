"""Fay-Herriot area model on raked township shares (the simpler alternative to MRP).

Direct estimates are the raked shares on the variance-stabilising arcsine scale,
y_t = asin(√p_t), whose sampling variance is ψ_t = 1 / (4 n_eff,t) with the Kish effective
sample size. Model: y_t = x_t'β + v_t + e_t with v_t ~ N(0, A), e_t ~ N(0, ψ_t). A is estimated
by Li & Lahiri's adjusted maximum likelihood (profile likelihood times A), which cannot
collapse to zero; its uncertainty is integrated on a small grid over log A like σ in MRP.
At each node β is drawn from its GLS distribution and θ_t from its Gaussian posterior
(shrinking y_t towards x_t'β by A / (A + ψ_t)); townships without respondents get x_t'β + v_t.
Draws are mapped back with sin² and weighted by population for the county share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from scoring.statistics.estimation import LEVEL, Estimates, FloatArray, summarise_draws

VARIANCE_BOUNDS = (1e-6, 1.0)
GRID_NODES = 7
GRID_HALF_WIDTH = 2.5


@dataclass(frozen=True)
class FayHerriotFit:
    """Fay-Herriot estimates: model variance, coefficients and share draws."""

    model_variance: float  # A on the arcsine scale, at its adjusted-likelihood mode
    beta: FloatArray
    township_draws: FloatArray
    county_draws: FloatArray
    township: Estimates
    county: Estimates


def _gls(
    y: FloatArray, x: FloatArray, psi: FloatArray, variance: float
) -> tuple[FloatArray, FloatArray, float]:
    """GLS coefficients, their covariance and the adjusted profile log-likelihood at A."""
    total = variance + psi
    information = (x / total[:, None]).T @ x
    cov = np.asarray(np.linalg.inv(information), dtype=np.float64)
    beta = cov @ (x.T @ (y / total))
    residual = y - x @ beta
    loglik = -0.5 * np.sum(np.log(total)) - 0.5 * np.sum(residual**2 / total)
    return beta, cov, float(loglik + np.log(variance))


def _variance_grid(
    y: FloatArray, x: FloatArray, psi: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """Adjusted-likelihood mode of A and a weighted grid over log A around it."""

    def negative(log_a: float) -> float:
        return -_gls(y, x, psi, float(np.exp(log_a)))[2]

    bounds = np.log(VARIANCE_BOUNDS)
    best = optimize.minimize_scalar(negative, bounds=bounds, method="bounded")
    centre, step = float(best.x), 0.05
    curvature = (negative(centre + step) - 2 * best.fun + negative(centre - step)) / step**2
    spread = 1 / np.sqrt(curvature) if curvature > 0 else 0.5
    nodes = np.clip(centre + spread * GRID_HALF_WIDTH * np.linspace(-1, 1, GRID_NODES), *bounds)
    values = -np.array([negative(float(node)) for node in nodes])
    weights = np.exp(values - values.max())
    return float(np.exp(centre)), np.exp(nodes), weights / weights.sum()


def _draw_node(
    y: FloatArray,
    x: FloatArray,
    psi: FloatArray,
    variance: float,
    count: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Draws of θ_t (arcsine scale) for all townships at one value of A."""
    sampled = np.isfinite(y)
    beta, cov, _ = _gls(y[sampled], x[sampled], psi[sampled], variance)
    betas = rng.multivariate_normal(beta, cov, size=count)
    mean_fixed = betas @ x.T
    gamma = np.where(sampled, variance / (variance + np.where(sampled, psi, 1.0)), 0.0)
    centre = gamma * np.where(sampled, y, 0.0) + (1 - gamma) * mean_fixed
    spread = np.sqrt(np.where(sampled, gamma * np.where(sampled, psi, 0.0), variance))
    return centre + spread * rng.standard_normal(centre.shape)


def fay_herriot(
    direct: Any,
    n_eff: Any,
    covariates: Any,
    population: Any,
    *,
    draws: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> FayHerriotFit:
    """Fit Fay-Herriot to direct shares (NaN or n_eff 0 where no respondents) and draw shares."""
    share = np.asarray(direct, dtype=float)
    size = np.asarray(n_eff, dtype=float)
    sampled = np.isfinite(share) & (size > 0)
    y = np.where(sampled, np.arcsin(np.sqrt(np.clip(share, 0, 1))), np.nan)
    psi = np.where(sampled, 1 / (4 * np.where(sampled, size, 1.0)), np.inf)
    x = np.column_stack([np.ones(len(share)), np.asarray(covariates, dtype=float)])
    variance, nodes, weights = _variance_grid(y[sampled], x[sampled], psi[sampled])
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(draws, weights)
    theta = np.vstack(
        [_draw_node(y, x, psi, float(a), int(k), rng) for a, k in zip(nodes, counts, strict=True)]
    )
    township = np.sin(np.clip(theta, 0, np.pi / 2)) ** 2
    pop = np.asarray(population, dtype=float)
    county = township @ pop / pop.sum()
    beta = _gls(y[sampled], x[sampled], psi[sampled], variance)[0]
    return FayHerriotFit(
        variance,
        beta,
        township,
        county,
        summarise_draws(township, level),
        summarise_draws(county[:, None], level),
    )
