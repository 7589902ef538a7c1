"""Calibration of the 2PL by marginal maximum likelihood with EM (Bock & Aitkin, 1981).

Each EM cycle integrates θ over a fixed quadrature grid (61 nodes on [-5, 5] weighted by the
population density, N(0, 1) unless items are held fixed):

* E-step: every person's log-likelihood at every node is one sparse product (see
  model.ResponseDesign), the posteriors follow by log-sum-exp, and the expected counts
  r_ik (right answers to item i at node k) and n_ik (answers) are the transposed product.
* M-step: a few Fisher-scoring steps on all items at once, on (log a, b), maximising
  Σ_k r_ik log P_ik + (n_ik - r_ik) log Q_ik plus the log priors
  log a ~ N(0, 0.5) and b ~ N(μ_b,i, σ_b), where μ_b,i may come from the editors' rating
  (model.difficulty_prior). The priors make the estimates MAP rather than pure ML; they keep
  items that everybody (or nobody) gets right finite.

Items are calibrated according to how much evidence they have: at least `min_responses_2pl`
answers → "2pl"; at least `min_responses` → "rasch" (slope held at the geometric mean slope of
the 2PL items, 1.0 when there are none, only b estimated); fewer → "prior" (a = 1, b = its
prior mean, not calibrated, left out of the E-step so that guessed parameters do not move
anybody's posterior). Items given in `fixed` keep their (a, b) → "fixed"; with any fixed item
the population mean and SD are estimated as well, since the fixed items then define the scale.

Standard errors come from the cross-product of the persons' marginal score contributions
(the empirical, "XPD", information of the marginal likelihood) plus the priors' curvature;
it carries the information lost to not knowing θ, which the complete-data information of the
M-step would ignore. The item fit is diagnostics.grouped_fit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import special

from scoring.irt.diagnostics import ResponseDiagnostics, grouped_fit, response_diagnostics
from scoring.irt.model import (
    BoolArray,
    FloatArray,
    IntArray,
    ResponseDesign,
    Responses,
    as_floats,
    log_likelihood_table,
    normal_quadrature,
    normal_weights,
    person_log_likelihoods,
    posteriors,
    response_design,
    responses,
)

MODEL_2PL = "2pl"
MODEL_RASCH = "rasch"
MODEL_PRIOR = "prior"
MODEL_FIXED = "fixed"
# A Fisher-scoring step larger than this is cut back: early EM cycles can propose wild steps
# for items whose expected counts are still far from the data.
_MAX_LOG_SLOPE_STEP = 0.5
_MAX_DIFFICULTY_STEP = 1.0


@dataclass(frozen=True)
class CalibrationOptions:
    """Priors (b ~ N(μ_b, b_prior_sd), log a ~ N(log_a_prior_mean, log_a_prior_sd)), the
    evidence an item needs for each model, the quadrature grid and the EM's stopping rule."""

    b_prior_sd: float = 1.0
    log_a_prior_mean: float = 0.0
    log_a_prior_sd: float = 0.5
    min_responses: int = 30
    min_responses_2pl: int = 200
    quadrature_points: int = 61
    quadrature_bound: float = 5.0
    max_iterations: int = 500
    tolerance: float = 1e-4  # on the largest change of any a, b (or population moment)
    newton_steps: int = 2
    fit_groups: int = 10


@dataclass(frozen=True)
class ItemEstimate:
    a: float
    b: float
    se_a: float
    se_b: float
    n: int
    model: str
    fit_statistic: float
    fit_df: int
    fit_p: float


@dataclass(frozen=True)
class Calibration:
    """Per-item arrays (indexed by item_index) and the EM's convergence figures.

    se_a is 0 for a slope that was held ("rasch", "fixed") and se_b is 0 for a "fixed" item;
    a "prior" item reports its prior SDs (se_a = a · log_a_prior_sd, se_b = b_prior_sd) and
    NaN for its fit (df 0). population_mean/sd are 0/1 unless items were held fixed."""

    a: FloatArray
    b: FloatArray
    se_a: FloatArray
    se_b: FloatArray
    n: IntArray
    model: tuple[str, ...]
    fit_statistic: FloatArray
    fit_df: IntArray
    fit_p: FloatArray
    iterations: int
    max_change: float
    converged: bool
    log_likelihood: float
    population_mean: float
    population_sd: float

    @property
    def calibrated(self) -> BoolArray:
        return np.isin(np.asarray(self.model), (MODEL_2PL, MODEL_RASCH))

    def item(self, index: int) -> ItemEstimate:
        return ItemEstimate(
            float(self.a[index]),
            float(self.b[index]),
            float(self.se_a[index]),
            float(self.se_b[index]),
            int(self.n[index]),
            self.model[index],
            float(self.fit_statistic[index]),
            int(self.fit_df[index]),
            float(self.fit_p[index]),
        )

    def with_parameters(
        self,
        a: FloatArray,
        b: FloatArray,
        se_a: FloatArray,
        se_b: FloatArray,
        mean: float,
        sd: float,
    ) -> Calibration:
        return replace(self, a=a, b=b, se_a=se_a, se_b=se_b, population_mean=mean, population_sd=sd)


@dataclass(frozen=True)
class _Priors:
    log_a_mean: float
    log_a_var: float
    b_mean: FloatArray
    b_var: float


def calibrate(
    person_index: npt.ArrayLike,
    item_index: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_items: int | None = None,
    b_prior_mean: npt.ArrayLike = 0.0,
    fixed: Mapping[int, tuple[float, float]] | None = None,
    options: CalibrationOptions | None = None,
) -> Calibration:
    """Calibrate every item of the bank from sparse responses; see the module's docstring.

    b_prior_mean is a scalar or one prior mean per item (e.g. difficulty_prior(rating));
    fixed maps item indices to the (a, b) they must keep, for fixed-anchor calibration."""
    settings = options or CalibrationOptions()
    data = responses(person_index, item_index, correct, n_items=n_items)
    fixed = fixed or {}
    priors = _Priors(
        settings.log_a_prior_mean,
        settings.log_a_prior_sd**2,
        np.broadcast_to(as_floats(b_prior_mean), (data.n_items,)).copy(),
        settings.b_prior_sd**2,
    )
    counts = np.bincount(data.item, minlength=data.n_items)
    models = _item_models(counts, fixed, settings)
    return _run_em(data, models, counts, priors, fixed, settings)


def _item_models(
    counts: IntArray, fixed: Mapping[int, tuple[float, float]], settings: CalibrationOptions
) -> npt.NDArray[np.str_]:
    models = np.full(counts.size, MODEL_PRIOR, dtype="<U5")
    models[counts >= settings.min_responses] = MODEL_RASCH
    models[counts >= settings.min_responses_2pl] = MODEL_2PL
    models[list(fixed)] = MODEL_FIXED
    return models


def _starting_values(
    data: Responses,
    counts: IntArray,
    models: npt.NDArray[np.str_],
    priors: _Priors,
    fixed: Mapping[int, tuple[float, float]],
) -> tuple[FloatArray, FloatArray]:
    """log a at the prior's median; b from the share answered right, pulled half-way to its
    prior (with a = 1 and θ ~ N(0, 1), logit p ≈ -b / 1.2); a "prior" item stays at its prior."""
    right = np.bincount(data.item, weights=data.correct.astype(float), minlength=data.n_items)
    share = (right + 0.5) / (counts + 1.0)
    b = 0.5 * np.clip(-1.2 * special.logit(share), -4.0, 4.0) + 0.5 * priors.b_mean
    b = np.where(models == MODEL_PRIOR, priors.b_mean, b)
    log_a = np.full(data.n_items, priors.log_a_mean)
    for index, (a_fixed, b_fixed) in fixed.items():
        log_a[index], b[index] = np.log(a_fixed), b_fixed
    return log_a, as_floats(b)


@dataclass(frozen=True)
class _Problem:
    """What stays the same through the EM cycles."""

    design: ResponseDesign
    nodes: FloatArray
    models: npt.NDArray[np.str_]
    answered: BoolArray  # persons with at least one answer in the E-step
    priors: _Priors
    settings: CalibrationOptions
    estimate_population: bool

    @property
    def in_e_step(self) -> BoolArray:
        return ~np.isin(self.models, MODEL_PRIOR)

    @property
    def slope_free(self) -> BoolArray:
        return np.isin(self.models, MODEL_2PL)

    @property
    def difficulty_free(self) -> BoolArray:
        return np.isin(self.models, (MODEL_2PL, MODEL_RASCH))


@dataclass(frozen=True)
class _Estimates:
    log_a: FloatArray
    b: FloatArray
    mean: float
    sd: float

    def change_from(self, other: _Estimates) -> float:
        return max(
            float(np.abs(np.exp(self.log_a) - np.exp(other.log_a)).max(initial=0.0)),
            float(np.abs(self.b - other.b).max(initial=0.0)),
            abs(self.mean - other.mean),
            abs(self.sd - other.sd),
        )


def _run_em(
    data: Responses,
    models: npt.NDArray[np.str_],
    counts: IntArray,
    priors: _Priors,
    fixed: Mapping[int, tuple[float, float]],
    settings: CalibrationOptions,
) -> Calibration:
    in_e_step = models != MODEL_PRIOR
    # "prior" items are left out of the E-step: their guessed parameters are no evidence.
    active = data if in_e_step.all() else _subset(data, in_e_step[data.item])
    problem = _Problem(
        design=response_design(active),
        nodes=normal_quadrature(settings.quadrature_points, settings.quadrature_bound).nodes,
        models=models,
        answered=np.bincount(active.person, minlength=active.n_persons) > 0,
        priors=priors,
        settings=settings,
        estimate_population=bool(fixed),
    )
    estimates = _Estimates(*_starting_values(data, counts, models, priors, fixed), 0.0, 1.0)
    change, iterations, log_likelihood = np.inf, 0, 0.0
    while iterations < settings.max_iterations and change > settings.tolerance:
        iterations += 1
        updated, log_likelihood = _em_cycle(problem, estimates)
        change, estimates = updated.change_from(estimates), updated
    return _result(problem, active, estimates, counts, iterations, change, log_likelihood)


def _em_cycle(problem: _Problem, estimates: _Estimates) -> tuple[_Estimates, float]:
    """One E-step and M-step; returns the new estimates and the log-likelihood of the old."""
    post, marginal = _posteriors(problem, estimates)
    right, total = _expected_counts(problem.design, post)
    log_a, b = _m_step(estimates.log_a, estimates.b, right, total, problem)
    log_a[problem.models == MODEL_RASCH] = _common_slope(log_a, problem)
    mean, sd = estimates.mean, estimates.sd
    if problem.estimate_population:
        mean, sd = _population_moments(post[problem.answered], problem.nodes)
    return _Estimates(log_a, b, mean, sd), float(marginal[problem.answered].sum())


def _posteriors(problem: _Problem, estimates: _Estimates) -> tuple[FloatArray, FloatArray]:
    table = log_likelihood_table(problem.nodes, np.exp(estimates.log_a), estimates.b)
    table[np.concatenate([~problem.in_e_step, ~problem.in_e_step])] = 0.0
    log_weights = np.log(normal_weights(problem.nodes, estimates.mean, estimates.sd))
    return posteriors(person_log_likelihoods(problem.design, table), log_weights)


def _result(
    problem: _Problem,
    active: Responses,
    estimates: _Estimates,
    counts: IntArray,
    iterations: int,
    change: float,
    log_likelihood: float,
) -> Calibration:
    """Standard errors and item fit at the final estimates, and the result."""
    post, _ = _posteriors(problem, estimates)
    a, b = np.exp(estimates.log_a), estimates.b
    diagnostics = response_diagnostics(active, post, problem.nodes, a, b)
    se_a, se_b = _standard_errors(diagnostics, active, a, problem.models, problem.priors)
    fit = grouped_fit(
        active, diagnostics, _free_parameters(problem.models), problem.settings.fit_groups
    )
    fitted = problem.in_e_step
    return Calibration(
        a=a,
        b=b,
        se_a=se_a,
        se_b=se_b,
        n=counts.astype(np.int64),
        model=tuple(str(m) for m in problem.models),
        fit_statistic=np.where(fitted, fit.statistic, np.nan),
        fit_df=np.where(fitted, fit.df, 0).astype(np.int64),
        fit_p=np.where(fitted, fit.p_value, np.nan),
        iterations=iterations,
        max_change=change,
        converged=change <= problem.settings.tolerance,
        log_likelihood=log_likelihood,
        population_mean=estimates.mean,
        population_sd=estimates.sd,
    )


def _subset(data: Responses, keep: BoolArray) -> Responses:
    return replace(data, person=data.person[keep], item=data.item[keep], correct=data.correct[keep])


def _common_slope(log_a: FloatArray, problem: _Problem) -> float:
    """The geometric mean slope of the 2PL items, which the Rasch-like items share: a slope
    of 1.0 would misfit a bank whose items are all steeper (or flatter) than that."""
    free = problem.slope_free
    return float(log_a[free].mean()) if free.any() else problem.priors.log_a_mean


def _expected_counts(design: ResponseDesign, post: FloatArray) -> tuple[FloatArray, FloatArray]:
    """r_ik and n_ik: the posterior mass at node k of the persons who answered item i (right)."""
    by_column = np.asarray(design.by_column @ post, dtype=np.float64)
    right = by_column[: design.n_items]
    return right, right + by_column[design.n_items :]


def _population_moments(post: FloatArray, nodes: FloatArray) -> tuple[float, float]:
    mean_theta = post @ nodes
    mean = float(mean_theta.mean())
    second = float((post @ nodes**2).mean())
    return mean, float(np.sqrt(max(second - mean**2, 1e-6)))


def _m_step(
    log_a: FloatArray, b: FloatArray, right: FloatArray, total: FloatArray, problem: _Problem
) -> tuple[FloatArray, FloatArray]:
    """Fisher scoring on (log a, b) for all items at once, from the expected counts.

    With z = a (θ - b): ∂z/∂log a = z and ∂z/∂b = -a, so the gradient is Σ (r - nP)(z, -a)
    and the expected information Σ nPQ (z, -a)ᵀ(z, -a), each plus its prior's term."""
    priors, nodes = problem.priors, problem.nodes
    slope_free, difficulty_free = problem.slope_free, problem.difficulty_free
    log_a, b = log_a.copy(), b.copy()
    for _ in range(problem.settings.newton_steps):
        a = np.exp(log_a)
        z = a[:, None] * (nodes[None, :] - b[:, None])
        p = special.expit(z)
        residual = right - total * p
        weight = total * p * (1.0 - p)
        grad_log_a = (residual * z).sum(axis=1) - (log_a - priors.log_a_mean) / priors.log_a_var
        grad_b = -a * residual.sum(axis=1) - (b - priors.b_mean) / priors.b_var
        info_log_a = (weight * z * z).sum(axis=1) + 1.0 / priors.log_a_var
        info_b = a * a * weight.sum(axis=1) + 1.0 / priors.b_var
        info_cross = -a * (weight * z).sum(axis=1)
        det = info_log_a * info_b - info_cross**2
        step_log_a = (info_b * grad_log_a - info_cross * grad_b) / det
        step_b = np.where(
            slope_free, (info_log_a * grad_b - info_cross * grad_log_a) / det, grad_b / info_b
        )
        log_a += np.where(
            slope_free, np.clip(step_log_a, -_MAX_LOG_SLOPE_STEP, _MAX_LOG_SLOPE_STEP), 0.0
        )
        b += np.where(
            difficulty_free, np.clip(step_b, -_MAX_DIFFICULTY_STEP, _MAX_DIFFICULTY_STEP), 0.0
        )
    return log_a, b


def _standard_errors(
    diagnostics: ResponseDiagnostics,
    data: Responses,
    a: FloatArray,
    models: npt.NDArray[np.str_],
    priors: _Priors,
) -> tuple[FloatArray, FloatArray]:
    """SEs from the XPD information plus the priors' curvature; the slope's SE by the delta
    method from log a's (se_a = a · se_log_a)."""

    def summed(values: FloatArray) -> FloatArray:
        return as_floats(np.bincount(data.item, weights=values, minlength=data.n_items))

    info_log_a = summed(diagnostics.score_log_a**2) + 1.0 / priors.log_a_var
    info_b = summed(diagnostics.score_b**2) + 1.0 / priors.b_var
    info_cross = summed(diagnostics.score_log_a * diagnostics.score_b)
    det = info_log_a * info_b - info_cross**2
    se_a = np.where(models == MODEL_2PL, a * np.sqrt(info_b / det), 0.0)
    se_b = np.where(models == MODEL_2PL, np.sqrt(info_log_a / det), 1.0 / np.sqrt(info_b))
    prior = models == MODEL_PRIOR
    se_a[prior] = a[prior] * np.sqrt(priors.log_a_var)
    se_b[prior] = np.sqrt(priors.b_var)
    se_b[models == MODEL_FIXED] = 0.0
    return as_floats(se_a), as_floats(se_b)


def _free_parameters(models: npt.NDArray[np.str_]) -> IntArray:
    free = np.zeros(models.size, dtype=np.int64)
    free[models == MODEL_2PL] = 2
    free[models == MODEL_RASCH] = 1
    return free
