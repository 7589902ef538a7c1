"""Per-response quantities at a calibration's final posteriors: the persons' score
contributions (for the standard errors) and a leave-one-out grouped item-fit statistic.

Item fit (documented choice): for every answer to item i, the person's posterior *without
that answer* gives θ̃ (its mean) and e = E[P_i(θ)] (the predictive probability of a right
answer). The item's respondents are cut into `groups` equal-sized groups by θ̃, and

    X²_i = Σ_g (O_g - E_g)² / Σ_{p∈g} e_p (1 - e_p)

compares the observed right answers O_g with their predicted sum E_g. Leaving the answer
out is what makes this honest: grouping on (or predicting from) a posterior that already
contains the answer would pull observed and expected together, and grouping on it would
sort right answers into the high groups. Under the model each term is approximately a
squared standard normal, so X²_i is referred to χ² with (groups - free parameters) degrees
of freedom, as Orlando & Thissen's S-X² is; (X² - df) / √(2 df) is its standardized value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from scoring.irt.model import FloatArray, IntArray, Responses, as_floats

_CHUNK = 4096  # responses per block: keeps the responses × nodes temporaries in cache (~2 MB)


@dataclass(frozen=True)
class ResponseDiagnostics:
    score_log_a: FloatArray  # ∂ log L_p / ∂ log a_i for each response
    score_b: FloatArray  # ∂ log L_p / ∂ b_i
    loo_expected: FloatArray  # E[P_i(θ)] under the posterior without this response
    loo_theta: FloatArray  # E[θ] under the same posterior


@dataclass(frozen=True)
class ItemFit:
    statistic: FloatArray
    df: IntArray
    p_value: FloatArray

    @property
    def standardized(self) -> FloatArray:
        df = np.maximum(self.df, 1)
        return as_floats((self.statistic - df) / np.sqrt(2.0 * df))


def response_diagnostics(
    data: Responses, post: FloatArray, nodes: FloatArray, a: FloatArray, b: FloatArray
) -> ResponseDiagnostics:
    z = a[:, None] * (nodes[None, :] - b[:, None])
    tables = _ItemTables(a, z, special.expit(z), special.expit(-z), nodes)
    parts = [
        _chunk_diagnostics(data, post, tables, slice(start, start + _CHUNK))
        for start in range(0, len(data), _CHUNK)
    ]
    if not parts:
        empty = np.zeros(0)
        return ResponseDiagnostics(empty, empty, empty, empty)
    return ResponseDiagnostics(*(np.concatenate(column) for column in zip(*parts, strict=True)))


@dataclass(frozen=True)
class _ItemTables:
    """z, P and Q of every item at every node: gathering rows of these is much cheaper than
    evaluating the logistic once per response."""

    a: FloatArray
    z: FloatArray
    p: FloatArray
    q: FloatArray
    nodes: FloatArray


def _chunk_diagnostics(
    data: Responses, post: FloatArray, tables: _ItemTables, rows: slice
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    item = data.item[rows]
    weights = post[data.person[rows]]
    right = data.correct[rows][:, None]
    z, p, q = tables.z[item], tables.p[item], tables.q[item]
    residual = np.where(right, q, -p)  # x - P without cancellation
    weighted_residual = weights * residual
    # A person's marginal score for item i is the posterior mean of the complete-data score.
    score_log_a = (weighted_residual * z).sum(axis=1)
    score_b = -tables.a[item] * weighted_residual.sum(axis=1)
    # Dividing out this answer's likelihood factor leaves the posterior without it.
    without = weights / np.where(right, p, q)
    norm = without.sum(axis=1)
    loo_expected = (without * p).sum(axis=1) / norm
    loo_theta = (without @ tables.nodes) / norm
    return as_floats(score_log_a), as_floats(score_b), as_floats(loo_expected), as_floats(loo_theta)


def grouped_fit(
    data: Responses, diagnostics: ResponseDiagnostics, free_parameters: IntArray, groups: int
) -> ItemFit:
    """The leave-one-out grouped χ² of every item (module docstring), vectorised over items."""
    n_items = data.n_items
    order = np.lexsort((diagnostics.loo_theta, data.item))
    item = data.item[order]
    counts = np.bincount(data.item, minlength=n_items)
    starts = np.cumsum(counts) - counts
    rank = np.arange(item.size) - starts[item]
    cell = item * groups + rank * groups // np.maximum(counts[item], 1)
    size = n_items * groups

    def per_cell(values: FloatArray) -> FloatArray:
        return as_floats(np.bincount(cell, weights=values, minlength=size)).reshape(n_items, groups)

    expected_p = diagnostics.loo_expected[order]
    observed = per_cell(data.correct[order].astype(float))
    expected = per_cell(expected_p)
    variance = per_cell(expected_p * (1.0 - expected_p))
    occupied = variance > 0
    terms = np.where(occupied, (observed - expected) ** 2 / np.where(occupied, variance, 1.0), 0.0)
    statistic = terms.sum(axis=1)
    df = np.maximum(occupied.sum(axis=1) - free_parameters, 1).astype(np.int64)
    return ItemFit(as_floats(statistic), df, as_floats(stats.chi2.sf(statistic, df)))
