"""Answer copying: identical wrong answers beyond what chance and the residents' abilities give.

The statistic (a generalized binomial test in the manner of van der Linden & Sotaridona 2006,
counting identical incorrect answers as Holland's 1996 K-index does) takes one attempt of a pair
as the source s and counts M, the shared items on which the other, c, chose exactly the same
wrong option keys as s. Under independent answering, given s's answers and c's ability θ_c,

    P(c matches s on item i) = P(c wrong on i | θ_c) × P(that wrong response | wrong on i),

so M is a Poisson-binomial count whose upper tail is the p-value. The first factor comes from a
2PL model fitted to the reference attempts (joint MAP estimation with weak priors, Mislevy 1986
style); it is what makes a high scorer's rare mistakes count for more than a low scorer's many.
The second is the popularity of s's exact wrong response among the item's wrong answers
elsewhere (other township-weeks, Jeffreys-smoothed), so matching on a popular distractor counts
for little and on a rare one for much: honest residents who share the popular wrong answers
are not copying, which is where the fixed 85 % match rule of Kuriakose & Robbins (2016) fails
(Simmons et al. 2016; Pew Research Center 2016). Matching right answers is never counted: it is
what ability predicts.

Two tests, both within a township-week and mode (the pairs that could have copied), only for
pairs sharing ≥ `MIN_SHARED_ITEMS` items and of different residents:

* Pair: p_pair = 2 min(p(s=a), p(s=b)) (Bonferroni over the two directions), significant when
  c_null × p_pair ≤ `PAIR_ALPHA` / (pairs compared in the township-week): the family-wise
  false-alarm rate over a township-week's pairs is ≤ 1 %.
* Ring: an answer sheet in a group chat spreads a few (often popular) wrong answers to many
  residents; each pair alone is weak evidence, but many partners matching one source is not.
  For a source s, a partner is a hit when p(s) ≤ `RING_PAIR_P`; given s's answers the partners
  answer independently under the null, each a hit with a probability r ≤ RING_PAIR_P computed
  exactly from its own Poisson-binomial, so the number of hits D is Poisson-binomial too.
  Significant when P(D ≥ d) ≤ `RING_ALPHA` / (sources in the township-week) and d ≥ 2. A ring
  says that someone copied, not who: a hit can be an honest resident who chose a few of the same
  popular wrong answers (Σr of them are expected per source). Members are the hits that repeat
  at least `CONSENSUS_SHARE` of the source's wrong answers on the items they hold, leaving out
  the source's own slips (answers the rest of the ring does not repeat), and the source when at
  least two hits are members.

Calibration: the model can be wrong (local misfit, ability-dependent distractor choice), so the
p-values are checked against a null that cannot contain copying, pairs of the same mode from
different township-weeks that share ≥ 5 items (`NULL_CENTRES` sources × up to `NULL_PARTNERS`
partners, sampled with a fixed seed). The inflation c_null = max(1, max_t F_null(t)/t) over the
levels t in `NULL_LEVELS` that expect ≥ 10 null pairs is applied to both tests' p-values (never
below 1: the model is not made more liberal than it claims). Its value is in every reason's detail.

Work is bounded: only pairs in one township-week and mode, and a source's partners are computed
together as arrays (O(partners × wrong items × wrong items)); a new attempt is screened with its
township-week as history, and the `CopyingModel` (items and calibration) from the night's run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import numpy as np
import numpy.typing as npt
from scipy import sparse, special

from scoring.integrity.items import GroupKey, IntArray, ItemModel, fit_items, group_key
from scoring.integrity.records import (
    AttemptRecord,
    Flag,
    FloatArray,
    ItemKey,
    Reason,
    Response,
    make_flag,
    poisson_binomial,
    strength_from_p,
    upper_tails,
)

PAIR_ALPHA: Final = 0.01
RING_ALPHA: Final = 0.01
RING_PAIR_P: Final = 0.01
MIN_SHARED_ITEMS: Final = 5
MIN_RING_HITS: Final = 2  # a ring is a source and at least two residents matching it
CONSENSUS_SHARE: Final = 0.5  # a ring member shares most of the ring's common wrong answers
NULL_CENTRES: Final = 2000
NULL_PARTNERS: Final = 10
NULL_LEVELS: Final = (1e-2, 1e-3)
MIN_NULL_EXPECTED: Final = 10.0
MAX_LISTED: Final = 10
BoolArray = npt.NDArray[np.bool_]


# ---------------------------------------------------------------------------------------------
# Attempts coded as arrays
# ---------------------------------------------------------------------------------------------


@dataclass
class _Coded:
    """Every attempt of the pool as arrays over global item columns: the response id (−1 right)
    and P(wrong); responses are coded per item, ids shared by all attempts."""

    attempts: Sequence[AttemptRecord]
    model: ItemModel
    columns: dict[ItemKey, int] = field(default_factory=dict)
    keys: list[ItemKey] = field(default_factory=list)  # column → item
    responses: list[dict[Response, int]] = field(default_factory=list)
    response_list: list[list[Response]] = field(default_factory=list)  # column, code → response
    items: list[IntArray] = field(default_factory=list)
    codes: list[IntArray] = field(default_factory=list)
    p_wrong: list[FloatArray] = field(default_factory=list)
    _popularity: dict[tuple[GroupKey, int, int], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        thetas = self.model.thetas(self.attempts)
        for attempt, theta in zip(self.attempts, thetas, strict=True):
            columns, codes, p_wrong = [], [], []
            for item in attempt.items:
                column = self.columns.setdefault(item.key, len(self.columns))
                if column == len(self.keys):
                    self.keys.append(item.key)
                    self.responses.append({})
                    self.response_list.append([])
                known = self.model.index.get(item.key)
                a, b = (1.0, 0.0) if known is None else (self.model.a[known], self.model.b[known])
                columns.append(column)
                codes.append(-1 if item.right else self._code(column, item.chosen))
                p_wrong.append(float(special.expit(-a * (theta - b))))
            self.items.append(np.asarray(columns, dtype=np.int64))
            self.codes.append(np.asarray(codes, dtype=np.int64))
            self.p_wrong.append(np.asarray(p_wrong))

    def _code(self, column: int, response: Response) -> int:
        code = self.responses[column].get(response)
        if code is None:
            code = self.responses[column][response] = len(self.response_list[column])
            self.response_list[column].append(response)
        return code

    def label(self, row: int, column: int) -> str:
        """ "question:version=keys" of the attempt's answer in the column (for reviewers)."""
        at = int(np.flatnonzero(self.items[row] == column)[0])
        response = self.response_list[column][int(self.codes[row][at])]
        question, version = self.keys[column]
        return f"{question}:{version}={''.join(response) or '-'}"

    def incidence(self) -> sparse.csr_matrix:
        rows = np.repeat(np.arange(len(self.attempts)), [c.size for c in self.items])
        cols = np.concatenate(self.items) if self.items else np.zeros(0, dtype=np.int64)
        return sparse.csr_matrix(
            (np.ones(rows.size), (rows, cols)), shape=(len(self.attempts), len(self.columns))
        )

    def popularity(self, column: int, code: int, group: GroupKey) -> float:
        cached = self._popularity.get((group, column, code))
        if cached is None:
            item = self.model.index.get(self.keys[column])
            cached = self.model.popularity(item, self.response_list[column][code], group)
            self._popularity[(group, column, code)] = cached
        return cached


@dataclass(frozen=True)
class _SourceTest:
    """One source against its partners: p-values, hit probabilities, matches, expectations."""

    partners: IntArray  # pool rows
    matches: IntArray
    expected: FloatArray
    p_values: FloatArray
    hit_chance: FloatArray  # P(p ≤ RING_PAIR_P) under the null
    matched_columns: list[IntArray]
    on_form: BoolArray  # partners × the source's wrong items: the partner had the item
    same: BoolArray  # ... and chose the source's wrong response


def _source_test(coded: _Coded, source: int, partners: IntArray, group: GroupKey) -> _SourceTest:
    """The source's wrong answers against each partner's answers (module docstring)."""
    wrong = coded.codes[source] >= 0
    columns = coded.items[source][wrong]
    codes = coded.codes[source][wrong]
    popularity = np.array(
        [coded.popularity(c, k, group) for c, k in zip(columns, codes, strict=True)]
    )
    n, width = partners.size, columns.size
    on_form = np.zeros((n, width), dtype=bool)
    same = np.zeros((n, width), dtype=bool)
    p_wrong = np.zeros((n, width))
    for row, partner in enumerate(partners):
        position = {int(c): i for i, c in enumerate(coded.items[partner])}
        for j, column in enumerate(columns):
            at = position.get(int(column))
            if at is not None:
                on_form[row, j] = True
                same[row, j] = coded.codes[partner][at] == codes[j]
                p_wrong[row, j] = coded.p_wrong[partner][at]
    chance = on_form * p_wrong * popularity
    matches = same.sum(axis=1)
    tails = upper_tails(poisson_binomial(chance)) if n else np.zeros((0, width + 1))
    p_values = tails[np.arange(n), matches] if n else np.zeros(0)
    below = tails <= RING_PAIR_P
    first = np.where(below.any(axis=1), below.argmax(axis=1), width + 1)
    padded = np.concatenate([tails, np.zeros((n, 1))], axis=1)
    return _SourceTest(
        partners=partners,
        matches=matches.astype(np.int64),
        expected=chance.sum(axis=1),
        p_values=p_values,
        hit_chance=padded[np.arange(n), first],
        matched_columns=[columns[row] for row in same],
        on_form=on_form,
        same=same,
    )


def _different_residents(
    attempts: Sequence[AttemptRecord], source: int, rows: IntArray
) -> BoolArray:
    user = attempts[source].user_id
    if user is None:
        return np.ones(rows.size, dtype=bool)
    return np.array([attempts[r].user_id != user for r in rows], dtype=bool)


# ---------------------------------------------------------------------------------------------
# Calibration on pairs that cannot have copied
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyingModel:
    items: ItemModel
    inflation: float  # c_null ≥ 1, applied to every p-value
    null_pairs: int
    null_rates: Mapping[float, float]  # level t → share of null pairs with p ≤ t


def _null_calibration(coded: _Coded, seed: int) -> tuple[float, int, dict[float, float]]:
    attempts = coded.attempts
    if not attempts:
        return 1.0, 0, {}
    groups = [group_key(a) for a in attempts]
    rng = np.random.default_rng(seed)
    centres = rng.permutation(len(attempts))[:NULL_CENTRES]
    incidence = coded.incidence()
    shared = (incidence[centres] @ incidence.T).tocsr()
    p_values: list[float] = []
    for row, centre in enumerate(centres):
        start, end = shared.indptr[row], shared.indptr[row + 1]
        candidates = shared.indices[start:end][shared.data[start:end] >= MIN_SHARED_ITEMS]
        mode = attempts[centre].mode
        candidates = np.array(
            [c for c in candidates if groups[c] != groups[centre] and groups[c][2] == mode],
            dtype=np.int64,
        )
        if candidates.size == 0:
            continue
        candidates = candidates[_different_residents(attempts, int(centre), candidates)]
        chosen = rng.permutation(candidates)[:NULL_PARTNERS]
        if chosen.size:
            p_values.extend(_source_test(coded, int(centre), chosen, groups[centre]).p_values)
    values = np.asarray(p_values)
    rates = {
        t: float(np.mean(values <= t)) for t in NULL_LEVELS if values.size * t >= MIN_NULL_EXPECTED
    }
    inflation = max([1.0, *(rate / t for t, rate in rates.items())])
    return inflation, int(values.size), rates


def fit_copying_model(reference: Sequence[AttemptRecord], *, seed: int = 0) -> CopyingModel:
    """The item model and the null calibration from reference attempts (a night's batch and
    its history); pass it to `copying` to screen new attempts against it cheaply."""
    items = fit_items(reference)
    inflation, pairs, rates = _null_calibration(_Coded(reference, items), seed)
    return CopyingModel(items, inflation, pairs, rates)


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------


@dataclass
class _Evidence:
    """What one attempt collected: significant pairs and rings it belongs to."""

    pairs: list[dict[str, object]] = field(default_factory=list)
    rings: list[dict[str, object]] = field(default_factory=list)
    strength: float = 0.0


def copying(
    attempts: Sequence[AttemptRecord],
    *,
    history: Sequence[AttemptRecord] = (),
    model: CopyingModel | None = None,
    seed: int = 0,
    grouping: Callable[[AttemptRecord], GroupKey | None] = group_key,
    code: str = "copying",
) -> list[Flag]:
    """`copying` flags: the batch's attempts (and their history partners) in a significant pair
    or ring within their township-week and mode. `grouping` names other groups to test within
    (None: the attempt is in none) and `code` their reason (scoring.integrity.helpers)."""
    pool = [*attempts, *history]
    targets = set(range(len(attempts)))
    groups: dict[GroupKey, list[int]] = {}
    for row, attempt in enumerate(pool):
        if (group := grouping(attempt)) is not None:
            groups.setdefault(group, []).append(row)
    if not any(len(members) >= 2 and targets.intersection(members) for members in groups.values()):
        return []
    if model is None:
        model = fit_copying_model(pool, seed=seed)
    coded = _Coded(pool, model.items)
    incidence = coded.incidence()
    evidence: dict[int, _Evidence] = {}
    for group, members in groups.items():
        if len(members) < 2 or not targets.intersection(members):
            continue
        _screen_group(
            coded, model, group, np.asarray(members, dtype=np.int64), incidence, targets, evidence
        )
    flags = []
    for row, found in evidence.items():
        flags.append(make_flag(pool[row].attempt_id, [_reason(found, model, code)]))
    return flags


def _screen_group(
    coded: _Coded,
    model: CopyingModel,
    group: GroupKey,
    members: IntArray,
    incidence: sparse.csr_matrix,
    targets: set[int],
    evidence: dict[int, _Evidence],
) -> None:
    attempts = coded.attempts
    shared = np.asarray((incidence[members] @ incidence[members].T).todense())
    np.fill_diagonal(shared, 0)
    partners_of = {}
    for i, row in enumerate(members):
        candidates = np.flatnonzero(shared[i] >= MIN_SHARED_ITEMS)
        rows = members[candidates]
        partners_of[int(row)] = rows[_different_residents(attempts, int(row), rows)]
    pairs = {(min(r, int(p)), max(r, int(p))) for r, ps in partners_of.items() for p in ps}
    sources = sum(1 for ps in partners_of.values() if ps.size)
    if not pairs:
        return
    tests = {r: _source_test(coded, r, ps, group) for r, ps in partners_of.items() if ps.size}
    directed: dict[tuple[int, int], tuple[float, int, float, IntArray]] = {}
    for source, test in tests.items():
        for k, partner in enumerate(test.partners):
            directed[(source, int(partner))] = (
                float(test.p_values[k]),
                int(test.matches[k]),
                float(test.expected[k]),
                test.matched_columns[k],
            )
    c = model.inflation
    pair_threshold = PAIR_ALPHA / (c * len(pairs))
    for first, second in pairs:
        if first not in targets and second not in targets:
            continue
        one, other = directed[(first, second)], directed[(second, first)]
        best = one if one[0] <= other[0] else other
        p_pair = min(1.0, 2.0 * best[0])
        if p_pair > pair_threshold:
            continue
        strength = strength_from_p(c * p_pair * len(pairs), PAIR_ALPHA)
        for me, partner in ((first, second), (second, first)):
            found = evidence.setdefault(me, _Evidence())
            found.pairs.append(
                {
                    "partner_id": attempts[partner].attempt_id,
                    "shared_items": _shared(coded, me, partner),
                    "identical_wrong": best[1],
                    "expected_identical_wrong": round(best[2], 3),
                    "p_value": p_pair,
                    "threshold": pair_threshold,
                    "pairs_compared": len(pairs),
                    "matched": [coded.label(me, int(col)) for col in best[3]][:MAX_LISTED],
                }
            )
            found.strength = max(found.strength, strength)
    ring_threshold = RING_ALPHA / max(sources, 1)
    for source, test in tests.items():
        hits = test.p_values <= RING_PAIR_P
        d = int(hits.sum())
        if d < MIN_RING_HITS:
            continue
        chance = np.minimum(1.0, c * test.hit_chance)
        p_ring = float(upper_tails(poisson_binomial(chance))[0, d])
        if p_ring > ring_threshold:
            continue
        hit_rows = [int(r) for r in test.partners[hits]]
        if not targets.intersection([source, *hit_rows]):
            continue
        ring = {
            "source_id": attempts[source].attempt_id,
            "size": d + 1,
            "expected_hits": round(float(chance.sum()), 3),
            "partners_tested": int(test.partners.size),
            "p_value": p_ring,
            "threshold": ring_threshold,
        }
        strength = strength_from_p(p_ring * sources, RING_ALPHA)
        confirmed = _consensus_members(test.on_form[hits], test.same[hits])
        ring_members = [h for h, ok in zip(hit_rows, confirmed, strict=True) if ok]
        if len(ring_members) < MIN_RING_HITS:
            continue
        for member in [*ring_members, source]:
            counterparts = hit_rows if member == source else [source]
            p_best, partner = min((_pair_p(directed, member, cp), cp) for cp in counterparts)
            best = min(directed[(member, partner)], directed[(partner, member)], key=lambda x: x[0])
            found = evidence.setdefault(member, _Evidence())
            found.rings.append(
                {
                    "partner_id": attempts[partner].attempt_id,
                    "shared_items": _shared(coded, member, partner),
                    "identical_wrong": best[1],
                    "expected_identical_wrong": round(best[2], 3),
                    "p_value": p_best,
                    "matched": [coded.label(member, int(col)) for col in best[3]][:MAX_LISTED],
                    "ring": ring,
                }
            )
            found.strength = max(found.strength, strength)


def _consensus_members(on_form: BoolArray, same: BoolArray) -> list[bool]:
    """Which hits of a significant ring are members: those repeating at least
    `CONSENSUS_SHARE` of the source's wrong answers on the items they hold, leaving out the
    items the rest of the ring (the other hits holding them, at least two) mostly does not
    repeat: the source's own slips. A resident who matched a few popular wrong answers of a
    proxy-answered batch is a hit by chance but repeats a minority of its wrong answers; a
    copier of a sheet repeats nearly all of them. Each hit is judged without its own answers."""
    members = []
    for row in range(on_form.shape[0]):
        holders = on_form.sum(axis=0) - on_form[row]
        repeats = same.sum(axis=0) - same[row]
        slips = (holders >= 2) & (repeats < CONSENSUS_SHARE * holders)
        relevant = on_form[row] & ~slips
        count = int(relevant.sum())
        members.append(count > 0 and int((same[row] & relevant).sum()) >= CONSENSUS_SHARE * count)
    return members


def _pair_p(
    directed: Mapping[tuple[int, int], tuple[float, int, float, IntArray]], first: int, second: int
) -> float:
    """Both directions' p-values of a pair, Bonferroni-combined."""
    return min(1.0, 2.0 * min(directed[(first, second)][0], directed[(second, first)][0]))


def _shared(coded: _Coded, first: int, second: int) -> int:
    return int(np.intersect1d(coded.items[first], coded.items[second]).size)


def _reason(found: _Evidence, model: CopyingModel, code: str) -> Reason:
    pairs = sorted(found.pairs, key=lambda p: cast(float, p["p_value"]))
    rings = sorted(found.rings, key=lambda r: cast(dict[str, float], r["ring"])["p_value"])
    detail: dict[str, object] = {}
    if pairs:
        detail.update(pairs[0])
        detail["partners"] = [
            {
                k: p[k]
                for k in ("partner_id", "identical_wrong", "expected_identical_wrong", "p_value")
            }
            for p in pairs[:MAX_LISTED]
        ]
    if rings:
        if not pairs:
            detail.update({k: v for k, v in rings[0].items() if k != "ring"})
        detail["ring"] = rings[0]["ring"]
        detail["rings"] = len(rings)
    detail["null_inflation"] = round(model.inflation, 3)
    detail["null_pairs"] = model.null_pairs
    return Reason(code, detail, found.strength)
