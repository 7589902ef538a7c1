"""The logistic two-parameter model (2PL) and the pieces every other IRT module shares.

    P(correct | θ) = 1 / (1 + exp(-a (θ - b)))

is the *logistic* metric: there is no 1.7 scaling constant, so a slope here is about 1.7 times
the same item's slope on the normal-ogive metric. Ability θ has the prior N(0, 1), which also
fixes the scale of a calibration that holds no item fixed.

Responses are sparse triples (person_index, item_index, correct) because forms are incomplete
designs: a resident answers about 30 items of a bank of hundreds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import sparse, special

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
StrArray: TypeAlias = npt.NDArray[np.str_]

# The assessment's blueprint and dimension weights (scoring.assessment.scoring holds the same
# figures; they are repeated so that this package stays free of project imports).
DIMENSIONS = ("knowledge", "method", "spirit", "application")
BLUEPRINT = {"knowledge": 12, "method": 6, "spirit": 6, "application": 6}
DIMENSION_WEIGHTS = {"knowledge": 40.0, "method": 20.0, "spirit": 20.0, "application": 20.0}
LITERATE_TOTAL = 70.0

# Editors' difficulty rating (1 easy … 5 hard) → prior mean of b in logits.
_RATING_TO_B = {1: -1.5, 2: -0.75, 3: 0.0, 4: 0.75, 5: 1.5}


def difficulty_prior(rating: int) -> float:
    """Prior mean of an item's difficulty b from the editors' 1..5 rating (3 = medium = 0)."""
    if rating not in _RATING_TO_B:
        raise ValueError(f"difficulty rating must be 1..5, not {rating!r}")
    return _RATING_TO_B[rating]


def as_floats(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def probability(theta: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """P(correct); the arguments broadcast against each other."""
    return as_floats(special.expit(as_floats(a) * (as_floats(theta) - as_floats(b))))


def information(theta: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Fisher information a² P (1 - P) of the 2PL; for one item it peaks at θ = b."""
    p = probability(theta, a, b)
    return as_floats(a) ** 2 * p * (1.0 - p)


@dataclass(frozen=True)
class Quadrature:
    """Fixed nodes on the θ axis with normalised weights of the population density."""

    nodes: FloatArray
    weights: FloatArray

    @property
    def log_weights(self) -> FloatArray:
        return np.log(self.weights)


def normal_quadrature(
    points: int = 61, bound: float = 5.0, mean: float = 0.0, sd: float = 1.0
) -> Quadrature:
    """Equally spaced nodes on [-bound, bound] weighted by the N(mean, sd) density."""
    nodes = np.linspace(-bound, bound, points)
    return Quadrature(nodes, normal_weights(nodes, mean, sd))


def normal_weights(nodes: FloatArray, mean: float, sd: float) -> FloatArray:
    log_density = -0.5 * ((nodes - mean) / sd) ** 2
    weights = np.exp(log_density - log_density.max())
    return as_floats(weights / weights.sum())


@dataclass(frozen=True)
class Responses:
    """Dichotomous answers as equal-length arrays; one row per (person, item) answer."""

    person: IntArray
    item: IntArray
    correct: BoolArray
    n_persons: int
    n_items: int

    def __len__(self) -> int:
        return int(self.person.size)


def responses(
    person_index: npt.ArrayLike,
    item_index: npt.ArrayLike,
    correct: npt.ArrayLike,
    n_persons: int | None = None,
    n_items: int | None = None,
) -> Responses:
    """Validated responses; a person answering the same item twice is refused, because a
    second answer would count as independent evidence when it is not."""
    person = np.asarray(person_index).astype(np.int64, copy=False).ravel()
    item = np.asarray(item_index).astype(np.int64, copy=False).ravel()
    right = np.asarray(correct).ravel()
    if not person.size == item.size == right.size:
        raise ValueError("person_index, item_index and correct must have equal lengths")
    if right.size and not np.isin(right, (0, 1)).all():
        raise ValueError("correct must hold only 0/1 or booleans")
    if person.size and (person.min() < 0 or item.min() < 0):
        raise ValueError("indices must be non-negative")
    persons = int(person.max(initial=-1)) + 1 if n_persons is None else n_persons
    items = int(item.max(initial=-1)) + 1 if n_items is None else n_items
    if person.size and (person.max() >= persons or item.max() >= items):
        raise ValueError("an index is beyond n_persons or n_items")
    if np.unique(person * items + item).size != person.size:
        raise ValueError("a person answered the same item more than once")
    return Responses(person, item, right.astype(bool), persons, items)


@dataclass(frozen=True)
class ResponseDesign:
    """The responses as a sparse persons × (2·items) incidence matrix: column i marks a right
    answer to item i and column items + i a wrong one. A person's log-likelihood at every
    quadrature node is then one sparse product with the stacked [log P; log Q] table, and the
    expected counts of the EM's E-step are the transposed product with the posteriors."""

    by_person: sparse.csr_matrix
    by_column: sparse.csr_matrix
    n_persons: int
    n_items: int


def response_design(data: Responses) -> ResponseDesign:
    column = data.item + np.where(data.correct, 0, data.n_items)
    shape = (data.n_persons, 2 * data.n_items)
    by_person = sparse.csr_matrix((np.ones(len(data)), (data.person, column)), shape=shape)
    return ResponseDesign(by_person, by_person.T.tocsr(), data.n_persons, data.n_items)


def log_likelihood_table(nodes: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """[log P; log Q] at every node, (2·items) × nodes, computed without overflow."""
    z = a[:, None] * (nodes[None, :] - b[:, None])
    return np.vstack([special.log_expit(z), special.log_expit(-z)])


def person_log_likelihoods(design: ResponseDesign, table: FloatArray) -> FloatArray:
    """Each person's log-likelihood at each node, persons × nodes."""
    return np.asarray(design.by_person @ table, dtype=np.float64)


def posteriors(
    log_likelihoods: FloatArray, log_weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Normalised posteriors over the nodes and each person's marginal log-likelihood."""
    joint = log_likelihoods + log_weights[None, :]
    marginal = special.logsumexp(joint, axis=1)
    return np.exp(joint - marginal[:, None]), as_floats(marginal)


@dataclass(frozen=True)
class ItemBank:
    """Calibrated items as parallel arrays; `ids` are the caller's own identifiers."""

    ids: tuple[str, ...]
    dimension: StrArray
    a: FloatArray
    b: FloatArray

    def __post_init__(self) -> None:
        if not len(self.ids) == self.dimension.size == self.a.size == self.b.size:
            raise ValueError("ids, dimension, a and b must have equal lengths")

    def __len__(self) -> int:
        return len(self.ids)

    def information(self, theta: float) -> FloatArray:
        return information(theta, self.a, self.b)


def item_bank(
    ids: list[str] | tuple[str, ...],
    dimension: list[str] | tuple[str, ...] | StrArray,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
) -> ItemBank:
    return ItemBank(tuple(ids), np.asarray(dimension, dtype=np.str_), as_floats(a), as_floats(b))
