"""Multilevel regression and post-stratification (MRP) of literate shares.

Model, on the cell counts (binomial, never individual rows):
    literate_c ~ Binomial(n_c, F(x_c'β + u_t)),   u_t ~ Normal(0, σ²),
with F the standard normal CDF (probit, the default: literacy is a threshold on a latent score,
so effects add on that scale; see `scoring.estimation` for the figures) or the logistic CDF,
where x_c holds an intercept, age band, gender and (when the census has it) education
dummies, optionally the age×education interaction, and standardised township covariates taken
from the census (so townships without respondents still differ). β has a Gaussian prior that
is weak on the intercept and on the trends of the ordinal factors, and shrinks the deviations
from those trends and the interactions (`make_design`).

Fit: for a given σ the posterior mode of (β, u) is found by Newton's method (Fisher scoring for
the probit link), solving with the Schur complement of the diagonal township block so the cost
stays linear in townships. The Laplace approximation of the marginal likelihood gives the posterior of log σ (half-normal
prior on σ with scale 0.5); it is integrated on a small grid around its mode, and at every node
(β, u) is drawn from the Gaussian approximation at the mode (β from the Schur precision, then
u given β). The draws are importance-resampled to the exact posterior (the Gaussian is
symmetric where sparse cells' posteriors are skewed). Each draw is post-stratified to the census
cells of every township. Point estimate = posterior mean; interval = equal-tailed posterior
quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import linalg, optimize, sparse, special

from scoring.statistics.estimation import (
    AGE_BANDS,
    EDUCATIONS,
    GENDERS,
    LEVEL,
    Cells,
    Estimates,
    FloatArray,
    IntArray,
    cell_index,
    check_census,
    summarise_draws,
)

# Priors, on the probit scale. They matter only when data are thin (a small county: ~120
# respondents for 24 effects), where each was found to push the posterior-mean share upwards:
# with Φ convex over low shares, any prior that is wider than plausible, or that pulls thinly
# sampled cells towards the well-sampled young and educated ones, inflates the estimate (see
# `make_design` and `scripts.simulation --small-counties`).
# Township SD: half-normal with scale 0.5 (σ = 1 already spreads a 14% township share over
# 2-50%); with a dozen townships σ is mostly prior, and a scale of 1 inflated small counties.
SIGMA_PRIOR_SCALE = 0.5
SIGMA_BOUNDS = (0.02, 3.0)
GRID_NODES = 7
GRID_HALF_WIDTH = 2.5  # in posterior standard deviations of log σ
INTERCEPT_PRIOR_SD = 10.0
# Ordinal factors (age band, education): level effects are a linear trend over the factor's
# range plus a random walk of deviations. The trend is left nearly free (a prior centred on a
# flat trend would pull the old and little-educated towards the sample, which over-represents
# the young and educated); the deviations are shrunk, so sparsely sampled levels follow the
# trend of their neighbours.
TREND_PRIOR_SD = 5.0  # change across the factor's whole range
STEP_PRIOR_SD = 0.3  # each step's deviation from the trend
MAIN_PRIOR_SD = 2.5  # unordered factors (gender)
INTERACTION_PRIOR_SD = 0.3  # age × education, shrunk: no small sample can estimate 12 of them
COVARIATE_PRIOR_SD = 0.5  # per SD of a standardised township covariate
# Proposals drawn from the Gaussian approximation per posterior draw kept after importance
# resampling (`_importance_resample`).
PROPOSALS_PER_DRAW = 2
_NEWTON_ITERATIONS = 50
_NEWTON_TOLERANCE = 1e-8
_DRAW_CHUNK = 100
Link = Literal["logit", "probit"]


@dataclass(frozen=True)
class Design:
    """Fixed-effect design: one row per census cell plus township covariates."""

    cell: FloatArray  # K × p_cell, census cells in (age, gender[, education]) order
    covariates: FloatArray  # T × q
    names: tuple[str, ...]
    prior_precision: FloatArray  # p × p, p = p_cell + q


@dataclass(frozen=True)
class MrpFit:
    """Posterior summaries and draws of an MRP fit."""

    names: tuple[str, ...]
    beta: FloatArray  # fixed effects at the mode for the most probable σ node
    beta_sd: FloatArray
    sigma: float  # posterior mode of the township SD
    sigma_grid: FloatArray
    sigma_weights: FloatArray
    township_draws: FloatArray  # draws × T (NaN for townships without population)
    county_draws: FloatArray
    township: Estimates
    county: Estimates
    # T × K posterior mean share of every census cell (K = the census's cells per township,
    # flattened): what the outcome-selection band of `scoring.statistics.sensitivity` shifts.
    cell_share: FloatArray


@dataclass(frozen=True)
class _Problem:
    """Sample rows with their design, ready for Newton's method."""

    x: FloatArray
    township: IntArray
    literate: FloatArray
    n: FloatArray
    precision: FloatArray  # p × p prior precision of β
    townships: int
    incidence: sparse.csr_matrix
    link: Link


@dataclass(frozen=True)
class _Mode:
    """Posterior mode at one σ with the pieces of its Hessian."""

    beta: FloatArray
    u: FloatArray
    schur: FloatArray
    diagonal: FloatArray
    cross: FloatArray
    objective: float


def township_covariates(census: Any) -> FloatArray:
    """Standardised census covariates per township: share aged 50-69, share college, primary."""
    pop = check_census(census)
    total = np.maximum(pop.reshape(len(pop), -1).sum(axis=1), 1.0)
    by_age = pop.sum(axis=tuple(range(2, pop.ndim)))
    columns = [by_age[:, 3:].sum(axis=1) / total]
    if pop.ndim == 4:
        by_education = pop.sum(axis=(1, 2))
        columns += [by_education[:, 3] / total, by_education[:, 0] / total]
    raw = np.column_stack(columns)
    spread = raw.std(axis=0)
    return (raw - raw.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def ordinal_prior_covariance(levels: int) -> FloatArray:
    """Prior covariance of the level effects (against level 0) of an ordinal factor.

    Step l (from level l-1 to l) is trend / (levels - 1) + δ_l with trend ~ N(0, TREND²) and
    δ_l ~ N(0, STEP²) independent, so effect_l = trend · l / (levels - 1) + δ_1 + … + δ_l.
    """
    slope = np.arange(1, levels) / (levels - 1)
    walk = np.tril(np.ones((levels - 1, levels - 1)))
    return np.asarray(
        TREND_PRIOR_SD**2 * np.outer(slope, slope) + STEP_PRIOR_SD**2 * walk @ walk.T,
        dtype=np.float64,
    )


def make_design(census: Any, covariates: Any = None, interactions: bool = True) -> Design:
    """Design rows for every census cell; covariates default to `township_covariates`.

    Columns: intercept, dummies of age band, gender and education against their first level,
    age×education interactions, township covariates. The prior is Gaussian with mean zero and a
    block-diagonal covariance: a weak one on the intercept; for the ordinal factors (age band,
    education) the trend-plus-random-walk of `ordinal_prior_covariance`; independent
    N(0, INTERACTION_PRIOR_SD²) interactions.

    Why structured rather than independent wide priors: opt-in samples hold few old and
    little-educated respondents, and those cells hold most of the population and the lowest
    shares. With 24 free effects on ~120 respondents, independent N(0, 2.5²) level effects
    left those cells' effects barely identified, and the wide, symmetric posterior on the
    probit scale maps into a right-skewed one on the share scale (Φ is convex there): the
    posterior-mean county share of a 12-township county came out 7 points too high (see
    `scripts.simulation --small-counties`). Borrowing along the trend, and shrinking the
    interactions, which no small sample can estimate, identifies them from the neighbouring
    levels; with large samples the data dominate either prior.
    """
    pop = check_census(census)
    education = pop.ndim == 4
    z = township_covariates(pop) if covariates is None else np.asarray(covariates, float)
    grids = np.indices(pop.shape[1:]).reshape(pop.ndim - 1, -1)
    columns, names = [np.ones(grids.shape[1])], ["intercept"]
    blocks = [np.array([[INTERCEPT_PRIOR_SD**2]])]
    for axis, labels in enumerate((AGE_BANDS, GENDERS, EDUCATIONS)[: pop.ndim - 1]):
        for level in range(1, len(labels)):
            columns.append((grids[axis] == level).astype(float))
            names.append(labels[level])
        ordinal = labels is not GENDERS
        covariance = (
            ordinal_prior_covariance(len(labels))
            if ordinal
            else MAIN_PRIOR_SD**2 * np.eye(len(labels) - 1)
        )
        blocks.append(covariance)
    if education and interactions:
        for age in range(1, len(AGE_BANDS)):
            for level in range(1, len(EDUCATIONS)):
                columns.append(((grids[0] == age) & (grids[2] == level)).astype(float))
                names.append(f"{AGE_BANDS[age]}×{EDUCATIONS[level]}")
        count = (len(AGE_BANDS) - 1) * (len(EDUCATIONS) - 1)
        blocks.append(INTERACTION_PRIOR_SD**2 * np.eye(count))
    names += [f"township covariate {j}" for j in range(z.shape[1])]
    blocks.append(COVARIATE_PRIOR_SD**2 * np.eye(z.shape[1]))
    precision = np.linalg.inv(linalg.block_diag(*blocks))
    return Design(np.column_stack(columns), z.reshape(len(pop), -1), tuple(names), precision)


def _problem(cells: Cells, pop: FloatArray, design: Design, link: Link) -> _Problem:
    """Aggregate cells over groups to township × census cell and attach design rows."""
    size = design.cell.shape[0]
    flat = cells.township * size + cell_index(cells, pop.ndim == 4)
    length = len(pop) * size
    n = np.asarray(np.bincount(flat, weights=cells.n, minlength=length), dtype=np.float64)
    literate = np.asarray(np.bincount(flat, weights=cells.literate, minlength=length), float)
    rows = np.flatnonzero(n > 0)
    township, cell = np.divmod(rows, size)
    x = np.hstack([design.cell[cell], design.covariates[township]])
    incidence = sparse.csr_matrix(
        (np.ones(len(rows)), (township, np.arange(len(rows)))), shape=(len(pop), len(rows))
    )
    return _Problem(
        x, township, literate[rows], n[rows], design.prior_precision, len(pop), incidence, link
    )


def inverse_link(eta: FloatArray, link: Link) -> FloatArray:
    """Probability from the linear predictor under the logit or probit link."""
    return special.expit(eta) if link == "logit" else special.ndtr(eta)


def _loglik(eta: FloatArray, literate: FloatArray, n: FloatArray, link: Link) -> float:
    """Binomial log-likelihood of the cell counts (without the binomial coefficients)."""
    if link == "logit":
        return float(literate @ eta - n @ np.logaddexp(0.0, eta))
    return float(literate @ special.log_ndtr(eta) + (n - literate) @ special.log_ndtr(-eta))


def _score_weight(
    eta: FloatArray, literate: FloatArray, n: FloatArray, link: Link
) -> tuple[FloatArray, FloatArray]:
    """Derivative of the log-likelihood in η and the Fisher information weight per row."""
    if link == "logit":
        mu = special.expit(eta)
        return literate - n * mu, n * mu * (1 - mu)
    log_density = -0.5 * eta**2 - 0.5 * np.log(2 * np.pi)
    up = np.exp(log_density - special.log_ndtr(eta))
    down = np.exp(log_density - special.log_ndtr(-eta))
    return literate * up - (n - literate) * down, n * up * down


def _objective(problem: _Problem, beta: FloatArray, u: FloatArray, sigma: float) -> float:
    """Negative log posterior of (β, u) given σ, up to a constant."""
    eta = problem.x @ beta + u[problem.township]
    loglik = _loglik(eta, problem.literate, problem.n, problem.link)
    prior = 0.5 * beta @ problem.precision @ beta + 0.5 * (u @ u) / sigma**2
    return float(prior - loglik)


def _hessian(
    problem: _Problem, beta: FloatArray, u: FloatArray, sigma: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Gradients and Hessian blocks (β block, township diagonal, township×β cross)."""
    eta = problem.x @ beta + u[problem.township]
    residual, weight = _score_weight(eta, problem.literate, problem.n, problem.link)
    grad_beta = problem.precision @ beta - problem.x.T @ residual
    grad_u = u / sigma**2 - problem.incidence @ residual
    block = (problem.x * weight[:, None]).T @ problem.x + problem.precision
    diagonal = problem.incidence @ weight + 1.0 / sigma**2
    cross = np.asarray(problem.incidence @ (problem.x * weight[:, None]))
    return grad_beta, grad_u, block, diagonal, cross


def _find_mode(problem: _Problem, sigma: float, start: _Mode | None) -> _Mode:
    """Newton's method with step halving for the posterior mode of (β, u) given σ."""
    p = problem.x.shape[1]
    beta = np.zeros(p) if start is None else start.beta.copy()
    u = np.zeros(problem.townships) if start is None else start.u.copy()
    value = _objective(problem, beta, u, sigma)
    for _ in range(_NEWTON_ITERATIONS):
        grad_beta, grad_u, block, diagonal, cross = _hessian(problem, beta, u, sigma)
        schur = block - cross.T @ (cross / diagonal[:, None])
        step_beta = np.linalg.solve(schur, -grad_beta + cross.T @ (grad_u / diagonal))
        step_u = (-grad_u - cross @ step_beta) / diagonal
        scale = 1.0
        while scale > 1e-6:
            trial = _objective(problem, beta + scale * step_beta, u + scale * step_u, sigma)
            if trial <= value + 1e-12:
                break
            scale /= 2
        beta, u, value = beta + scale * step_beta, u + scale * step_u, trial
        if max(np.abs(step_beta).max(), np.abs(step_u).max(initial=0.0)) < _NEWTON_TOLERANCE:
            break
    _, _, block, diagonal, cross = _hessian(problem, beta, u, sigma)
    schur = block - cross.T @ (cross / diagonal[:, None])
    return _Mode(beta, u, schur, diagonal, cross, value)


def _log_posterior_sigma(mode: _Mode, sigma: float, townships: int) -> float:
    """Laplace log marginal likelihood of σ plus the half-normal prior, on the log σ scale."""
    _, logdet = np.linalg.slogdet(mode.schur)
    laplace = -mode.objective - townships * np.log(sigma)
    laplace -= 0.5 * (np.log(mode.diagonal).sum() + logdet)
    return float(laplace - 0.5 * (sigma / SIGMA_PRIOR_SCALE) ** 2 + np.log(sigma))


def _sigma_grid(problem: _Problem) -> tuple[float, FloatArray, FloatArray, list[_Mode]]:
    """Posterior mode of σ and a grid over log σ around it, with normalised weights and modes."""
    cache: dict[str, _Mode | None] = {"last": None}

    def negative(log_sigma: float) -> float:
        mode = _find_mode(problem, float(np.exp(log_sigma)), cache["last"])
        cache["last"] = mode
        return -_log_posterior_sigma(mode, float(np.exp(log_sigma)), problem.townships)

    bounds = np.log(SIGMA_BOUNDS)
    best = optimize.minimize_scalar(
        negative, bounds=bounds, method="bounded", options={"xatol": 1e-3}
    )
    centre, step = float(best.x), 0.05
    curvature = (negative(centre + step) - 2 * best.fun + negative(centre - step)) / step**2
    spread = 1 / np.sqrt(curvature) if curvature > 0 else 0.5
    nodes = np.clip(centre + spread * np.linspace(-1, 1, GRID_NODES) * GRID_HALF_WIDTH, *bounds)
    values, modes = [], []
    for node in nodes:
        values.append(-negative(float(node)))
        modes.append(cache["last"])
    log_weight = np.array(values) - max(values)
    weights = np.exp(log_weight) / np.exp(log_weight).sum()
    return float(np.exp(centre)), np.exp(nodes), weights, [m for m in modes if m is not None]


def _draw_effects(
    problem: _Problem, mode: _Mode, sigma: float, count: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draws of β from its Schur precision, then u given β, around one mode, with the log ratio
    of the exact posterior (given σ) to the Gaussian approximation at each draw."""
    factor = linalg.cholesky(mode.schur, lower=True)
    noise = rng.standard_normal((mode.beta.size, count))
    deviation = linalg.solve_triangular(factor, noise, lower=True, trans="T").T
    beta = mode.beta + deviation
    u_mean = mode.u - (deviation @ mode.cross.T) / mode.diagonal
    u_noise = rng.standard_normal((count, mode.u.size))
    u = u_mean + u_noise / np.sqrt(mode.diagonal)
    # log q = -½ (Δ'HΔ) up to a constant, and Δ'HΔ is the squared norm of the noise used.
    quadratic = (noise**2).sum(axis=0) + (u_noise**2).sum(axis=1)
    log_ratio = mode.objective - _objectives(problem, beta, u, sigma) + 0.5 * quadratic
    return beta, u, log_ratio


def _objectives(problem: _Problem, beta: FloatArray, u: FloatArray, sigma: float) -> FloatArray:
    """`_objective` for every row of draws of β (draws × p) and u (draws × T)."""
    hits, misses = problem.literate > 0, problem.literate < problem.n
    values = np.empty(len(beta))
    for start in range(0, len(beta), _DRAW_CHUNK):
        chunk = slice(start, start + _DRAW_CHUNK)
        eta = problem.x @ beta[chunk].T + u[chunk].T[problem.township]
        if problem.link == "logit":
            loglik = problem.literate @ eta - problem.n @ np.logaddexp(0.0, eta)
        else:
            # Most cells are small and have no literate respondent: skip the zero terms.
            failed = (problem.n - problem.literate)[misses]
            loglik = problem.literate[hits] @ special.log_ndtr(eta[hits])
            loglik = loglik + failed @ special.log_ndtr(-eta[misses])
        prior = 0.5 * np.einsum("dp,pq,dq->d", beta[chunk], problem.precision, beta[chunk])
        values[chunk] = prior + 0.5 * (u[chunk] ** 2).sum(axis=1) / sigma**2 - loglik
    return values


def _importance_resample(log_ratio: FloatArray, count: int, rng: np.random.Generator) -> IntArray:
    """Indices of `count` draws resampled in proportion to truncated importance weights.

    The Gaussian (Laplace) approximation is symmetric on the linear-predictor scale, while the
    posterior of a thinly sampled cell with few or no literate respondents is skewed (its
    likelihood is flat towards low shares and steep towards high ones): the approximation puts
    too much mass on high shares and biases small samples upwards. Weighting each draw by
    exact posterior / approximation corrects it (with plenty of data the weights are near
    equal). Weights are truncated at √S times their mean (Ionides 2008) so a few extreme draws
    cannot dominate; systematic resampling keeps the output a plain set of equal draws.
    """
    weight = np.exp(log_ratio - log_ratio.max())
    weight = np.minimum(weight, np.sqrt(len(weight)) * weight.mean())
    cumulative = np.cumsum(weight / weight.sum())
    points = (rng.random() + np.arange(count)) / count
    chosen = np.searchsorted(cumulative, points, side="right")
    return np.asarray(np.minimum(chosen, len(weight) - 1), dtype=np.int64)


def _poststratify(
    design: Design, pop: FloatArray, beta: FloatArray, u: FloatArray, link: Link
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Township and county share draws from draws of β and u, weighted by census cells, and
    the mean share of every census cell over the draws (T × K)."""
    counts = pop.reshape(len(pop), -1)
    totals = counts.sum(axis=1)
    p_cell = design.cell.shape[1]
    township = np.empty((len(beta), len(pop)))
    cell_sum = np.zeros(counts.shape)
    for start in range(0, len(beta), _DRAW_CHUNK):
        chunk = slice(start, start + _DRAW_CHUNK)
        fixed = beta[chunk, :p_cell] @ design.cell.T
        area = beta[chunk, p_cell:] @ design.covariates.T + u[chunk]
        prob = inverse_link(fixed[:, None, :] + area[:, :, None], link)
        township[chunk] = np.einsum("dtk,tk->dt", prob, counts)
        cell_sum += prob.sum(axis=0)
    county = township.sum(axis=1) / totals.sum()
    cell_share = cell_sum / max(len(beta), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return township / np.where(totals > 0, totals, np.nan), county, cell_share


def fit_mrp(
    cells: Cells,
    census: Any,
    *,
    covariates: Any = None,
    interactions: bool = True,
    link: Link = "probit",
    draws: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> MrpFit:
    """Fit the multilevel model to cell counts and post-stratify posterior draws to the census."""
    if link not in ("logit", "probit"):
        raise ValueError(f"unknown link {link!r}")
    pop = check_census(census, int(cells.township.max(initial=-1)) + 1)
    design = make_design(pop, covariates, interactions)
    problem = _problem(cells, pop, design, link)
    sigma, sigmas, weights, modes = _sigma_grid(problem)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(PROPOSALS_PER_DRAW * draws, weights)
    parts = [
        _draw_effects(problem, mode, float(s), int(k), rng)
        for mode, s, k in zip(modes, sigmas, counts, strict=True)
    ]
    chosen = _importance_resample(np.concatenate([r for _, _, r in parts]), draws, rng)
    beta = np.vstack([b for b, _, _ in parts])[chosen]
    u = np.vstack([v for _, v, _ in parts])[chosen]
    township, county, cell_share = _poststratify(design, pop, beta, u, link)
    best = modes[int(np.argmax(weights))]
    beta_sd = np.sqrt(np.diag(np.linalg.inv(best.schur)))
    return MrpFit(
        design.names,
        best.beta,
        beta_sd,
        sigma,
        sigmas,
        weights,
        township,
        county,
        summarise_draws(township, level),
        summarise_draws(county[:, None], level),
        cell_share,
    )


def fixed_effect_shares(
    cells: Cells,
    census: Any,
    covariates: Any = None,
    interactions: bool = True,
    link: Link = "probit",
) -> FloatArray:
    """Synthetic township shares from the fixed effects alone (no township effects)."""
    pop = check_census(census, int(cells.township.max(initial=-1)) + 1)
    design = make_design(pop, covariates, interactions)
    mode = _find_mode(_problem(cells, pop, design, link), SIGMA_BOUNDS[0] / 10, None)
    zero = np.zeros((1, len(pop)))
    township, _, _ = _poststratify(design, pop, mode.beta[None, :], zero, link)
    return township[0]
