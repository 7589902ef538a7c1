"""Synthetic county with known truth, and a repeated-run evaluation of the literacy estimators.

The county: 200 townships with census populations (ages 18-69) by age band × gender ×
education; rural townships are older and less educated. A resident's ability is
    θ = μ + age effect + education effect + gender effect (small) + township effect + N(0, 1),
where the township effect has a rural penalty plus independent noise. The assessment bank has
Rasch items per dimension with known difficulties; a form takes 12/6/6/6 items, one from each
difficulty stratum, so forms are comparable; P(correct) = logistic(θ − difficulty); a resident
is literate iff the weighted score (40/20/20/20) is at least 70. The true township share is the
exact expected literate share of the township's 18-69 population (Gauss-Hermite quadrature over
θ and an exact Poisson-binomial count over the strata), so it carries no Monte Carlo error.

Respondents opt in with propensity = age factor × education factor (young and college-educated
residents are many times likelier to take part); each township has 8-600 respondents
(log-uniform). Each respondent also gets a population group and a channel (self-initiated or an
organised campaign); neither affects the truth.

`python -m scripts.simulation [--runs N] [--first-seed S]` fits raw, raked, Fay-Herriot and MRP
estimates per run and prints bias, mean absolute error and 95% interval coverage for published
townships (at least 10 respondents, after complementary suppression) and for the county.
MRP is the published estimator; the reasons are in `scoring.estimation`'s docstring.

Small counties: `--townships T --respondents N` simulates T townships with N respondents in
all, spread over the townships in log-uniform proportions (so some have none);
`--small-counties` is the standard check, 50 counties (seeds 1-50) of 12 townships and 120
respondents, scored for raw, raked and the published MRP estimates.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from scoring.statistics.estimation import (
    AGE_BANDS,
    EDUCATIONS,
    GENDERS,
    GROUPS,
    Cells,
    Estimates,
    rake,
    rake_county,
    suppress,
    wilson_interval,
)
from scoring.statistics.estimation_fh import fay_herriot
from scoring.statistics.estimation_mrp import fit_mrp, fixed_effect_shares, township_covariates

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

TOWNSHIPS = 200
RESPONDENTS = (8, 600)
POPULATION = (6_000, 90_000)
# Dimensions: (name, points, items per form, items in the bank, mean difficulty).
DIMENSIONS = (
    ("knowledge", 40, 12, 60, 0.0),
    ("method", 20, 6, 30, 0.3),
    ("spirit", 20, 6, 30, 0.2),
    ("application", 20, 6, 30, 0.4),
)
LITERATE_SCORE = 70.0
ABILITY_MEAN = -0.7
AGE_EFFECT = np.array([0.0, -0.25, -0.55, -0.9, -1.3])
EDUCATION_EFFECT = np.array([0.0, 0.7, 1.4, 2.2])
GENDER_EFFECT = np.array([0.1, 0.0])
RURAL_PENALTY = 0.35
TOWNSHIP_SD = 0.25
# Opt-in propensity factors: young ×8 the oldest, college ×14 the least educated.
OPT_IN_AGE = np.array([4.0, 2.5, 1.5, 1.0, 0.5])
OPT_IN_EDUCATION = np.array([0.35, 1.0, 2.2, 5.0])
CHANNELS = ("self", "campaign")
SEEDS = tuple(range(1, 21))
SMALL_TOWNSHIPS = 12
SMALL_RESPONDENTS = 120
SMALL_SEEDS = tuple(range(1, 51))


@dataclass(frozen=True)
class County:
    """A synthetic county: census, generating parameters and the true literate shares."""

    census: FloatArray  # T × 5 × 2 × 4 residents aged 18-69
    rurality: FloatArray  # T, 0 urban … 1 rural
    township_effect: FloatArray  # T, on the ability scale
    cell_mean: FloatArray  # 5 × 2 × 4 mean ability before the township effect
    bank: tuple[FloatArray, ...]  # item difficulties per dimension, sorted
    true_share: FloatArray  # T
    true_county: float


@dataclass(frozen=True)
class Respondent:
    """One synthetic respondent, as another harness would register and answer for them."""

    township: int
    age_band: str
    gender: str
    education: str
    group: str
    channel: str
    ability: float

    def answer(self, difficulties: Sequence[float], rng: np.random.Generator) -> list[bool]:
        """Which of the served items (by Rasch difficulty) this respondent answers correctly."""
        return answer_items(self.ability, difficulties, rng)


@dataclass(frozen=True)
class Respondents:
    """All respondents of one draw as parallel arrays, with their assessment results."""

    township: IntArray
    age: IntArray
    gender: IntArray
    education: IntArray
    group: IntArray
    channel: IntArray
    ability: FloatArray
    correct: IntArray  # N × 4 correct answers per dimension
    score: FloatArray
    literate: BoolArray

    def records(self) -> list[Respondent]:
        """The respondents as simple records (labels instead of indices)."""
        return [
            Respondent(
                int(t), AGE_BANDS[a], GENDERS[g], EDUCATIONS[e], GROUPS[p], CHANNELS[c], float(v)
            )
            for t, a, g, e, p, c, v in zip(
                self.township,
                self.age,
                self.gender,
                self.education,
                self.group,
                self.channel,
                self.ability,
                strict=True,
            )
        ]


def answer_items(
    ability: float, difficulties: Sequence[float], rng: np.random.Generator
) -> list[bool]:
    """Rasch answers: item i is correct with probability logistic(ability − difficulty_i)."""
    chance = special.expit(ability - np.asarray(difficulties, dtype=float))
    return [bool(hit) for hit in rng.random(chance.shape) < chance]


def total_score(correct: IntArray) -> FloatArray:
    """Weighted 0-100 score from correct answers per dimension (N × 4)."""
    points = np.array([d[1] / d[2] for d in DIMENSIONS])
    return np.round(correct @ points, 9)


# ---------------------------------------------------------------------------------------------
# The county
# ---------------------------------------------------------------------------------------------


def _census(rng: np.random.Generator, rurality: FloatArray) -> FloatArray:
    """Population by township × age × gender × education, older and less educated if rural."""
    townships = len(rurality)
    base = np.array([0.21, 0.19, 0.21, 0.21, 0.18])
    tilt = np.exp(np.outer(rurality, [-0.7, -0.4, 0.0, 0.3, 0.5]))
    age = base * tilt * rng.lognormal(0, 0.1, (townships, 5))
    age /= age.sum(axis=1, keepdims=True)
    male = np.clip(0.51 + rng.normal(0, 0.01, townships), 0.45, 0.55)
    gender = np.column_stack([male, 1 - male])
    level = (
        np.array([1.2, 0.8, 0.2, -0.3, -0.9])[None, :, None] - 1.8 * (rurality - 0.5)[:, None, None]
    )
    level = level - 0.25 * (np.arange(5) >= 2)[None, :, None] * np.array([0, 1])[None, None, :]
    level = level + rng.normal(0, 0.3, townships)[:, None, None]
    cumulative = special.expit(np.array([-0.5, 1.0, 2.2]) - level[..., None])
    cumulative = np.concatenate([cumulative, np.ones((*cumulative.shape[:-1], 1))], axis=-1)
    education = np.diff(cumulative, axis=-1, prepend=0.0)
    population = np.exp(rng.uniform(np.log(POPULATION[0]), np.log(POPULATION[1]), townships))
    shares = age[:, :, None, None] * gender[:, None, :, None] * education
    return np.round(population[:, None, None, None] * shares)


def _bank(rng: np.random.Generator) -> tuple[FloatArray, ...]:
    """Sorted Rasch difficulties per dimension, centred on the dimension's mean difficulty."""
    banks = [rng.normal(0.0, 1.0, size) for _, _, _, size, _ in DIMENSIONS]
    return tuple(np.sort(b - b.mean() + d[4]) for b, d in zip(banks, DIMENSIONS, strict=True))


def _stratum_chance(theta: FloatArray, bank: tuple[FloatArray, ...]) -> FloatArray:
    """P(correct) per form slot (difficulty stratum) given θ: the stratum's average chance."""
    slots = []
    for difficulties, (_, _, items, _, _) in zip(bank, DIMENSIONS, strict=True):
        strata = difficulties.reshape(items, -1)
        slots.append(special.expit(theta[:, None, None] - strata[None]).mean(axis=2))
    return np.concatenate(slots, axis=1)


def literate_chance(theta: FloatArray, bank: tuple[FloatArray, ...]) -> FloatArray:
    """Exact P(literate | θ) over random stratified forms (every item is worth 10/3 points)."""
    points = {d[1] / d[2] for d in DIMENSIONS}
    assert len(points) == 1, "the exact count assumes equal points per item"
    chance = _stratum_chance(theta, bank)
    counts = np.zeros((len(theta), chance.shape[1] + 1))
    counts[:, 0] = 1.0
    for slot in range(chance.shape[1]):
        p = chance[:, slot : slot + 1]
        counts[:, 1:] = counts[:, 1:] * (1 - p) + counts[:, :-1] * p
        counts[:, 0] *= 1 - p[:, 0]
    needed = int(np.ceil(LITERATE_SCORE / points.pop() - 1e-9))
    return counts[:, needed:].sum(axis=1)


def _true_cell_shares(
    cell_mean: FloatArray, effect: FloatArray, bank: tuple[FloatArray, ...]
) -> FloatArray:
    """Expected literate share per township × cell: quadrature of P(literate | θ) over θ."""
    grid = np.linspace(-8, 10, 3601)
    chance = literate_chance(grid, bank)
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    means = effect[:, None, None, None] + cell_mean[None]
    return np.interp(means[..., None] + nodes, grid, chance) @ weights


def build_county(seed: int, townships: int = TOWNSHIPS) -> County:
    """A synthetic county with census, generating parameters and exact true shares."""
    rng = np.random.default_rng([seed, 0])
    rurality = rng.uniform(0, 1, townships)
    census = _census(rng, rurality)
    effect = -RURAL_PENALTY * (rurality - 0.5) + rng.normal(0, TOWNSHIP_SD, townships)
    cell_mean = (
        ABILITY_MEAN
        + AGE_EFFECT[:, None, None]
        + GENDER_EFFECT[None, :, None]
        + EDUCATION_EFFECT[None, None, :]
    )
    bank = _bank(rng)
    cell_share = _true_cell_shares(cell_mean, effect, bank)
    totals = census.reshape(townships, -1).sum(axis=1)
    literate = (cell_share * census).reshape(townships, -1).sum(axis=1)
    return County(
        census,
        rurality,
        effect,
        cell_mean,
        bank,
        literate / totals,
        float(literate.sum() / totals.sum()),
    )


# ---------------------------------------------------------------------------------------------
# Respondents
# ---------------------------------------------------------------------------------------------


def _sample_sizes(rng: np.random.Generator, townships: int, total: int | None = None) -> IntArray:
    """Respondents per township: log-uniform over RESPONDENTS, or when a total is given, that
    many respondents spread over the townships in log-uniform proportions."""
    low, high = np.log(RESPONDENTS[0]), np.log(RESPONDENTS[1] + 1)
    sizes = np.exp(rng.uniform(low, high, townships))
    if total is None:
        return np.floor(sizes).astype(np.int64)
    return rng.multinomial(total, sizes / sizes.sum()).astype(np.int64)


def _who_opts_in(
    rng: np.random.Generator, census: FloatArray, sizes: IntArray
) -> tuple[IntArray, IntArray]:
    """Township and flat census cell of every respondent, drawn with opt-in propensities."""
    propensity = OPT_IN_AGE[:, None, None] * OPT_IN_EDUCATION[None, None, :] * np.ones((1, 2, 1))
    chance = (census * propensity).reshape(len(census), -1)
    chance /= chance.sum(axis=1, keepdims=True)
    counts = np.vstack([rng.multinomial(n, p) for n, p in zip(sizes, chance, strict=True)])
    township, cell = np.nonzero(counts)
    repeats = counts[township, cell]
    return np.repeat(township, repeats), np.repeat(cell, repeats)


def _groups(
    rng: np.random.Generator, age: IntArray, education: IntArray, rural: BoolArray
) -> IntArray:
    """Population group of each respondent: a plausible mix, not part of the truth."""
    draw = rng.random(len(age))
    group = np.where(rural & (education <= 1) & (draw < 0.7), 0, np.where(draw < 0.45, 1, 5))
    group = np.where((education == 3) & (rng.random(len(age)) < 0.35), 4, group)
    group = np.where((age == 0) & (rng.random(len(age)) < 0.5), 3, group)
    return np.where((age == 4) & (rng.random(len(age)) < 0.8), 2, group).astype(np.int64)


def _answer_forms(
    rng: np.random.Generator, ability: FloatArray, bank: tuple[FloatArray, ...]
) -> IntArray:
    """Correct answers per dimension on a stratified random form for every respondent."""
    correct = []
    for difficulties, (_, _, items, size, _) in zip(bank, DIMENSIONS, strict=True):
        per = size // items
        chosen = np.arange(items) * per + rng.integers(0, per, (len(ability), items))
        chance = special.expit(ability[:, None] - difficulties[chosen])
        correct.append((rng.random(chance.shape) < chance).sum(axis=1))
    return np.column_stack(correct).astype(np.int64)


def draw_respondents(county: County, seed: int, total: int | None = None) -> Respondents:
    """Opt-in respondents of the county with their abilities and assessment results (`total`
    respondents in all when given, else 8-600 per township)."""
    rng = np.random.default_rng([seed, 1])
    sizes = _sample_sizes(rng, len(county.census), total)
    township, cell = _who_opts_in(rng, county.census, sizes)
    age, gender, education = np.unravel_index(cell, county.census.shape[1:])
    mean = county.cell_mean[age, gender, education] + county.township_effect[township]
    ability = mean + rng.standard_normal(len(township))
    group = _groups(rng, age, education, county.rurality[township] > 0.5)
    campaign = np.where(np.isin(group, (1, 4)), 0.5, 0.25)
    channel = (rng.random(len(township)) < campaign).astype(np.int64)
    correct = _answer_forms(rng, ability, county.bank)
    score = total_score(correct)
    return Respondents(
        township.astype(np.int64),
        age.astype(np.int64),
        gender.astype(np.int64),
        education.astype(np.int64),
        group,
        channel,
        ability,
        correct,
        score,
        score >= LITERATE_SCORE,
    )


def to_cells(respondents: Respondents) -> Cells:
    """Aggregate respondents to township × age × gender × education × group cells."""
    key = np.ravel_multi_index(
        (
            respondents.township,
            respondents.age,
            respondents.gender,
            respondents.education,
            respondents.group,
        ),
        (int(respondents.township.max()) + 1, 5, 2, 4, len(GROUPS)),
    )
    unique, inverse = np.unique(key, return_inverse=True)
    n = np.bincount(inverse)
    literate = np.bincount(inverse, weights=respondents.literate).astype(np.int64)
    township, age, gender, education, group = np.unravel_index(
        unique, (int(respondents.township.max()) + 1, 5, 2, 4, len(GROUPS))
    )
    return Cells(township, age, gender, education, group, n, literate)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

ESTIMATORS = ("raw", "raked", "fay-herriot", "mrp-logit", "mrp-probit")
SMALL_ESTIMATORS = ("raw", "raked", "mrp-probit")
PUBLISHED = "mrp-probit"


@dataclass(frozen=True)
class RunMetrics:
    """One estimator in one run: township errors (published townships) and the county error."""

    errors: FloatArray
    covered: BoolArray
    county_error: float
    county_covered: bool


@dataclass(frozen=True)
class Summary:
    """One estimator over all runs (errors in percentage points)."""

    bias: float
    mae: float
    worst_mae: float
    coverage: float
    townships: int
    county_bias: float
    county_mae: float
    county_coverage: float


def estimate_all(
    cells: Cells, census: FloatArray, seed: int = 0, estimators: Sequence[str] = ESTIMATORS
) -> dict[str, tuple[Estimates, Estimates]]:
    """Township and county estimates of the chosen estimators (all by default)."""
    townships = len(census)
    n = np.bincount(cells.township, weights=cells.n, minlength=townships)
    hits = np.bincount(cells.township, weights=cells.literate, minlength=townships)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = wilson_interval(hits / n, n)
    result = {"raw": (raw, wilson_interval(hits.sum() / n.sum(), n.sum()))}
    raking = rake(cells, census)
    result["raked"] = (raking.township, rake_county(cells, census).township)
    covariates = township_covariates(census)
    if "fay-herriot" in estimators:
        synthetic = fixed_effect_shares(cells, census, covariates)
        fh_x = np.column_stack([np.arcsin(np.sqrt(synthetic)), covariates])
        population = census.reshape(townships, -1).sum(axis=1)
        estimates = raking.township.estimate
        fh = fay_herriot(estimates, raking.township.n_eff, fh_x, population, seed=seed)
        result["fay-herriot"] = (fh.township, fh.county)
    for link in ("logit", "probit"):
        if f"mrp-{link}" in estimators:
            fit = fit_mrp(cells, census, covariates=covariates, link=link, seed=seed)
            result[f"mrp-{link}"] = (fit.township, fit.county)
    return {name: result[name] for name in estimators}


def _metrics(
    estimates: tuple[Estimates, Estimates], county: County, published: BoolArray
) -> RunMetrics:
    """Errors and coverage of one estimator against the truth."""
    township, whole = estimates
    truth = county.true_share[published]
    errors = township.estimate[published] - truth
    covered = (township.lower[published] <= truth) & (truth <= township.upper[published])
    county_error = float(whole.estimate.ravel()[0]) - county.true_county
    county_covered = bool(whole.lower.ravel()[0] <= county.true_county <= whole.upper.ravel()[0])
    return RunMetrics(errors, covered, county_error, county_covered)


def evaluate_run(
    seed: int,
    townships: int = TOWNSHIPS,
    respondents: int | None = None,
    estimators: Sequence[str] = ESTIMATORS,
) -> dict[str, RunMetrics]:
    """Simulate one county and score the estimators on it (`respondents` in all when given)."""
    county = build_county(seed, townships)
    cells = to_cells(draw_respondents(county, seed, respondents))
    counts = np.bincount(cells.township, weights=cells.n, minlength=len(county.census))
    published = ~suppress(counts, total_published=True).rows
    estimates = estimate_all(cells, county.census, seed, estimators)
    return {name: _metrics(estimates[name], county, published) for name in estimators}


def evaluate_small_counties(
    seeds: Sequence[int] = SMALL_SEEDS,
    townships: int = SMALL_TOWNSHIPS,
    respondents: int = SMALL_RESPONDENTS,
) -> list[dict[str, RunMetrics]]:
    """Small counties: raw, raked and published estimates of one county per seed."""
    return [evaluate_run(seed, townships, respondents, SMALL_ESTIMATORS) for seed in seeds]


def summarise(runs: Sequence[dict[str, RunMetrics]]) -> dict[str, Summary]:
    """Average bias and MAE over runs, pooled coverage, in percentage points.

    Township bias and MAE average the runs' means over runs with published townships (a small
    county may publish none); NaN when no run has any.
    """
    result = {}
    for name in runs[0]:
        metrics = [run[name] for run in runs]
        filled = [m for m in metrics if m.errors.size]
        biases = [100 * np.mean(m.errors) for m in filled]
        maes = [100 * np.mean(np.abs(m.errors)) for m in filled]
        covered = np.concatenate([m.covered for m in metrics])
        county = np.array([m.county_error for m in metrics])
        result[name] = Summary(
            float(np.mean(biases)) if filled else float("nan"),
            float(np.mean(maes)) if filled else float("nan"),
            float(np.max(maes)) if filled else float("nan"),
            float(np.mean(covered)) if covered.size else float("nan"),
            int(covered.size),
            float(100 * county.mean()),
            float(100 * np.abs(county).mean()),
            float(np.mean([m.county_covered for m in metrics])),
        )
    return result


def format_table(
    summary: dict[str, Summary],
    seeds: Sequence[int],
    townships: int = TOWNSHIPS,
    respondents: int | None = None,
) -> str:
    """A plain-text table of the summary."""
    sizes = (
        f"{RESPONDENTS[0]}-{RESPONDENTS[1]} respondents each"
        if respondents is None
        else f"{respondents} respondents in all"
    )
    lines = [
        f"Synthetic county: {townships} townships, {sizes}, opt-in bias by age and education; "
        f"{len(seeds)} runs, seeds {_seed_range(seeds)}.",
        "Township figures: published townships (>= 10 respondents after suppression), pooled "
        "over runs; errors in percentage points.",
        f"{'estimator':<12} {'bias':>6} {'MAE':>6} {'worst':>6} {'cover':>6} {'towns':>6} "
        f"| {'county bias':>11} {'county MAE':>10} {'county cover':>12}",
    ]
    for name, s in summary.items():
        lines.append(
            f"{name:<12} {s.bias:>6.2f} {s.mae:>6.2f} {s.worst_mae:>6.2f} {s.coverage:>6.1%} "
            f"{s.townships:>6d} | {s.county_bias:>11.2f} {s.county_mae:>10.2f} "
            f"{s.county_coverage:>12.0%}"
        )
    return "\n".join(lines)


def _seed_range(seeds: Sequence[int]) -> str:
    """Seeds as "a-b" when consecutive, else as a list."""
    listed = list(seeds)
    if len(listed) > 2 and listed == list(range(listed[0], listed[-1] + 1)):
        return f"{listed[0]}-{listed[-1]}"
    return str(listed)


def main() -> None:
    """Run the repeated-run evaluation and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="default 20 (50 small counties)")
    parser.add_argument("--first-seed", type=int, default=SEEDS[0])
    parser.add_argument("--townships", type=int, default=None, help=f"default {TOWNSHIPS}")
    parser.add_argument(
        "--respondents", type=int, default=None, help="respondents in the whole county"
    )
    parser.add_argument(
        "--small-counties",
        action="store_true",
        help=f"{len(SMALL_SEEDS)} counties of {SMALL_TOWNSHIPS} townships and "
        f"{SMALL_RESPONDENTS} respondents; raw, raked and published estimates",
    )
    args = parser.parse_args()
    small = args.small_counties
    runs_default = len(SMALL_SEEDS) if small else len(SEEDS)
    seeds = list(range(args.first_seed, args.first_seed + (args.runs or runs_default)))
    townships = args.townships or (SMALL_TOWNSHIPS if small else TOWNSHIPS)
    respondents = args.respondents or (SMALL_RESPONDENTS if small else None)
    estimators = SMALL_ESTIMATORS if small else ESTIMATORS
    started = time.perf_counter()
    runs = [evaluate_run(seed, townships, respondents, estimators) for seed in seeds]
    print(format_table(summarise(runs), seeds, townships, respondents))
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
