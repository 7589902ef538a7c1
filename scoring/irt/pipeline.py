"""From stored answers to stored parameters: the calibration job's computation, without I/O.

1. Responses: each resident's *first* answer to each question version, from attempts of every
   mode (a second sight of an item measures memory of its explanation, not ability). Right
   means full credit. An erased resident's attempts have no user id: each counts as a
   person of its own.
2. Calibration of the 2PL (calibration.calibrate) with each item's b prior from the editors'
   difficulty rating.
3. Linking: with an earlier scale, the items calibrated both then and now are the anchors and
   the new estimates are put on the old scale by Stocking–Lord, so a growing bank does not
   drift. Too few anchors is an error: the new figures could not be compared with the old.
4. DIF: Mantel–Haenszel per item for each contrast of groups (DIF_CONTRASTS), ETS classes.
5. The scale: kept once set (its reference form is fixed); the first calibration that
   covers the blueprint with calibrated published items creates it, with the θ of the cut,
   and `python -m server rescore` puts it in force."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from scoring.irt.calibration import MODEL_2PL, MODEL_RASCH, Calibration, calibrate
from scoring.irt.dif import MantelHaenszel, dif_scan
from scoring.irt.equating import build_reference_form, theta_for_total
from scoring.irt.linking import Linking, stocking_lord
from scoring.irt.model import LITERATE_TOTAL, difficulty_prior, item_bank

Document = dict[str, Any]
MIN_ANCHORS = 10
# Who is compared with whom: (focal group, reference group) by the attempt's profile.
DIF_CONTRASTS: dict[str, tuple[str, str]] = {
    "elderly": ("老年人", "其他人群"),
    "farmer": ("农民", "其他人群"),
    "gender": ("女性", "男性"),
    "age_60_plus": ("60岁及以上", "60岁以下"),
}
_CLASS_ORDER = {"A": 0, "B": 1, "C": 2}


class NotLinkable(ValueError):
    """Too few items shared with the previous calibration to put this one on its scale."""


@dataclass(frozen=True)
class ItemInfo:
    """What the bank says of a question version: its dimension, the editors' rating, and
    whether it is the version residents are served now."""

    dimension: str
    difficulty: int
    published: bool
    options: int = 0  # how many options the version has (0: unknown)


# A calibration holds each sampled resident's first answer to each item in memory, inside an
# app process: beyond this many residents a deterministic sample of them (by a hash of their
# id, the same every night) is used. 20,000 residents on 30-item forms recover b and a well
# (make eval runs 3,000).
MAX_PERSONS = 20_000
_BUCKETS = 1 << 32


def _bucket(person: str) -> int:
    return int.from_bytes(hashlib.blake2b(person.encode(), digest_size=4).digest(), "big")


class FirstResponses:
    """Each sampled person's first answer to each question (the first sight: a later version
    seen after the explanation of an earlier one is not a first sight), with the version and
    how many options were shown, and the profile of their first attempt.

    Answers are kept under integer keys (person index × 2^20 + question index), since a year
    of a county's attempts runs to millions of answers. Beyond `max_persons` people a bottom-k
    sample by hash is kept: whenever twice that many are held, those with the highest hash
    buckets are dropped (amortised: each drop halves what is held), and at the end the
    sample is cut to exactly `max_persons`. The result does not depend on the order attempts
    are read in. Attempts flagged as answered too fast are not read."""

    def __init__(self, max_persons: int = MAX_PERSONS) -> None:
        self.max_persons = max_persons
        self.attempts = 0
        self.skipped_too_fast = 0
        self._threshold = _BUCKETS  # persons whose bucket is below it are in the sample
        self._persons: dict[str, int] = {}  # person -> index
        self._next_person = 0
        self._buckets: dict[int, int] = {}  # person index -> hash bucket
        self._profiles: dict[int, tuple[datetime, Document]] = {}
        self._questions: dict[str, int] = {}  # question id -> index
        # answer key -> (when, right, version, options shown)
        self._answers: dict[int, tuple[datetime, bool, int, int]] = {}

    def add_all(self, attempts: Iterable[Document]) -> None:
        for attempt in attempts:
            self.add(attempt)

    def add(self, attempt: Document) -> None:
        self.attempts += 1
        if (attempt.get("review") or {}).get("too_fast"):
            self.skipped_too_fast += 1
            return
        person = self._person_index(str(attempt.get("user_id") or f"attempt:{attempt['_id']}"))
        if person is None:
            return
        at = attempt["submitted_at"]
        held = self._profiles.get(person)
        if held is None or at < held[0]:
            self._profiles[person] = (at, attempt.get("profile") or {})
        for item in attempt.get("items", []):
            question = self._questions.setdefault(item["question_id"], len(self._questions))
            answer_key = person << 20 | question
            first = self._answers.get(answer_key)
            if first is None or at < first[0]:
                shown = len(item.get("order") or ())
                self._answers[answer_key] = (at, item["mark"] >= 1.0, item["version"], shown)

    def _person_index(self, person: str) -> int | None:
        index = self._persons.get(person)
        if index is not None:
            return index
        bucket = _bucket(person)
        if bucket >= self._threshold:
            return None
        index = self._next_person
        self._next_person += 1
        self._persons[person] = index
        self._buckets[index] = bucket
        if len(self._buckets) >= 2 * self.max_persons:
            self._shrink()
        return self._persons.get(person)

    def _shrink(self) -> None:
        """Keep the max_persons lowest buckets; forget everyone else's answers."""
        if len(self._buckets) <= self.max_persons:
            return
        kept = sorted(self._buckets.values())[: self.max_persons]
        self._threshold = kept[-1] + 1
        dropped = {i for i, bucket in self._buckets.items() if bucket >= self._threshold}
        self._persons = {p: i for p, i in self._persons.items() if i not in dropped}
        self._buckets = {i: b for i, b in self._buckets.items() if i not in dropped}
        self._profiles = {i: v for i, v in self._profiles.items() if i not in dropped}
        self._answers = {k: v for k, v in self._answers.items() if k >> 20 not in dropped}

    @property
    def sample_share(self) -> float:
        """The share of all residents in the sample (1.0: everyone)."""
        self._shrink()
        return self._threshold / _BUCKETS

    def answers(self) -> Iterator[tuple[int, str, bool, int]]:
        """(person index, "id:version", right, options shown) of every kept first sight."""
        self._shrink()
        names = {index: question for question, index in self._questions.items()}
        for answer_key, (_, right, version, shown) in self._answers.items():
            yield answer_key >> 20, f"{names[answer_key & 0xFFFFF]}:{version}", right, shown

    def profile(self, person: int) -> Document:
        return self._profiles[person][1]


@dataclass(frozen=True)
class Outcome:
    params: list[Document]
    scale: Document | None  # a new scale (None: the existing one is kept, or none yet)
    summary: Document


def compute(
    responses: FirstResponses,
    items: Mapping[str, ItemInfo],
    *,
    previous: Mapping[str, Document],
    scale: Document | None,
    job_id: str,
    now: datetime,
) -> Outcome:
    """The whole calibration: parameters per item version, a new scale if none existed, and
    the summary the job reports. `previous` are the stored parameters by "id:version"."""
    # Only answers to the full set of options: the elderly are shown fewer options outside the
    # assessment, an easier item than the one calibrated (and a bias in the elderly DIF check).
    kept = [
        (p, item, right)
        for p, item, right, shown in responses.answers()
        if item in items and (shown == 0 or items[item].options in (0, shown))
    ]
    keys = sorted({item for _, item, _ in kept})
    if not keys:
        return Outcome([], None, {"attempts": responses.attempts, "responses": 0, "persons": 0})
    index = {key: i for i, key in enumerate(keys)}
    persons = sorted({p for p, _, _ in kept})
    person_index = {p: i for i, p in enumerate(persons)}
    person = np.fromiter((person_index[p] for p, _, _ in kept), dtype=np.int64, count=len(kept))
    item_of = np.fromiter((index[item] for _, item, _ in kept), dtype=np.int64, count=len(kept))
    correct = np.fromiter((right for _, _, right in kept), dtype=bool, count=len(kept))
    priors = np.array([difficulty_prior(items[k].difficulty) for k in keys])
    result = calibrate(person, item_of, correct, n_items=len(keys), b_prior_mean=priors)
    linking: Document = {"method": "new scale"}
    if scale is not None:
        result, linking = _link(result, keys, previous)
    dif = _dif(result, person, item_of, correct, [responses.profile(p) for p in persons])
    params = [_param_doc(key, i, result, dif.get(i), job_id, now) for i, key in enumerate(keys)]
    new_scale = None if scale is not None else _new_scale(result, keys, items, job_id, now)
    summary = {
        "attempts": responses.attempts,
        "responses": int(correct.size),
        "persons": len(persons),
        "persons_sample_share": round(responses.sample_share, 4),
        "skipped_too_fast": responses.skipped_too_fast,
        "items": len(keys),
        "models": {m: result.model.count(m) for m in sorted(set(result.model))},
        "iterations": result.iterations,
        "converged": result.converged,
        "linking": linking,
        "dif_c": sum(1 for p in params if (p.get("dif") or {}).get("class") == "C"),
        "scale": "created, in force after rescore"
        if new_scale
        else ("kept" if scale is not None else "not yet"),
    }
    return Outcome(params, new_scale, summary)


def _link(
    result: Calibration, keys: list[str], previous: Mapping[str, Document]
) -> tuple[Calibration, Document]:
    """Stocking–Lord onto the previous scale through the items calibrated both times, except
    those held for DIF; anchors whose linked difficulty moved more than DRIFT_SE standard
    errors (and DRIFT_MIN logits) are dropped and the link is made again once: an item that
    became easier through exposure would otherwise drag the whole scale with it."""
    calibrated = result.calibrated
    anchors = [
        i
        for i, key in enumerate(keys)
        if calibrated[i]
        and previous.get(key, {}).get("model") in ("2pl", "rasch")
        and (previous[key].get("dif") or {}).get("class") != "C"
    ]
    linking = _stocking_lord(result, keys, previous, anchors)
    linked = linking.apply(result)
    drifted = [i for i in anchors if _drifted(linked, i, previous[keys[i]])]
    if drifted:
        anchors = [i for i in anchors if i not in set(drifted)]
        linking = _stocking_lord(result, keys, previous, anchors)
        linked = linking.apply(result)
    method = {
        "method": "Stocking–Lord",
        "anchors": len(anchors),
        "anchors_dropped_for_drift": len(drifted),
        "slope": round(linking.slope, 4),
        "intercept": round(linking.intercept, 4),
    }
    return linked, method


DRIFT_SE = 3.0
DRIFT_MIN = 0.5


def _drifted(linked: Calibration, i: int, before: Document) -> bool:
    se = float(np.hypot(linked.se_b[i], before.get("se_b") or 0.0))
    return abs(float(linked.b[i]) - float(before["b"])) > max(DRIFT_SE * se, DRIFT_MIN)


def _stocking_lord(
    result: Calibration, keys: list[str], previous: Mapping[str, Document], anchors: list[int]
) -> Linking:
    if len(anchors) < MIN_ANCHORS:
        raise NotLinkable(
            f"only {len(anchors)} items were calibrated before and now; {MIN_ANCHORS} needed"
        )
    old_a = [previous[keys[i]]["a"] for i in anchors]
    old_b = [previous[keys[i]]["b"] for i in anchors]
    return stocking_lord(result.a[anchors], result.b[anchors], old_a, old_b)


def _focal_groups(profiles: list[Document]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per contrast: (in the contrast, in the focal group) masks over persons."""
    group = np.array([p.get("group") for p in profiles], dtype=object)
    gender = np.array([p.get("gender") for p in profiles], dtype=object)
    band = [p.get("age_band") for p in profiles]
    known_age = np.array([b is not None for b in band])
    older = np.array([b is not None and b[:2].isdigit() and int(b[:2]) >= 60 for b in band])
    everyone = group != None  # noqa: E711 (element-wise over an object array)
    return {
        "elderly": (everyone, group == "elderly"),
        "farmer": (everyone, group == "farmer"),
        "gender": ((gender == "female") | (gender == "male"), gender == "female"),
        "age_60_plus": (known_age, older),
    }


def _dif(
    result: Calibration,
    person: np.ndarray,
    item_of: np.ndarray,
    correct: np.ndarray,
    profiles: list[Document],
) -> dict[int, Document]:
    """Per item index: {"class": worst ETS class, "groups": {contrast: figures}}."""
    found: dict[int, Document] = {}
    for contrast, (included, focal) in _focal_groups(profiles).items():
        if focal[included].all() or not focal[included].any():
            continue  # nobody on one side: nothing to compare
        rows = included[person]
        scans = dif_scan(person[rows], item_of[rows], correct[rows], focal, result.a, result.b)
        for item, scan in enumerate(scans):
            if scan is not None and scan.n_focal and scan.n_reference:
                _merge(found.setdefault(item, {"class": "A", "groups": {}}), contrast, scan)
    return found


def _merge(entry: Document, contrast: str, scan: MantelHaenszel) -> None:
    entry["groups"][contrast] = {
        "class": scan.category,
        "delta": _finite(scan.delta),
        "se": _finite(scan.se_delta),
        "p": _finite(scan.p_value),
        "n_focal": scan.n_focal,
        "n_reference": scan.n_reference,
    }
    if _CLASS_ORDER[scan.category] > _CLASS_ORDER[entry["class"]]:
        entry["class"] = scan.category


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def _param_doc(
    key: str, i: int, result: Calibration, dif: Document | None, job_id: str, now: datetime
) -> Document:
    estimate = result.item(i)
    question_id, version = key.rsplit(":", 1)
    return {
        "question_id": question_id,
        "version": int(version),
        "a": round(estimate.a, 4),
        "b": round(estimate.b, 4),
        "se_a": _finite(estimate.se_a),
        "se_b": _finite(estimate.se_b),
        "n": estimate.n,
        "model": estimate.model,
        "fit": {
            "statistic": _finite(estimate.fit_statistic),
            "df": estimate.fit_df,
            "p": _finite(estimate.fit_p),
        },
        "dif": dif,
        "calibrated_at": now,
        "job_id": job_id,
    }


def _new_scale(
    result: Calibration,
    keys: list[str],
    items: Mapping[str, ItemInfo],
    job_id: str,
    now: datetime,
) -> Document | None:
    """The fixed reference form from the calibrated published items, or None while a
    dimension has too few of them (assessments stay on percent scoring until then)."""
    eligible = np.array(
        [
            items[k].published and model in (MODEL_2PL, MODEL_RASCH)
            for k, model in zip(keys, result.model, strict=True)
        ]
    )
    bank = item_bank(keys, [items[k].dimension for k in keys], result.a, result.b)
    try:
        reference = build_reference_form(bank, eligible=eligible)
    except ValueError:
        return None
    return {
        "reference": [
            {"item": keys[int(i)], "a": float(a), "b": float(b), "weight": float(w)}
            for i, a, b, w in zip(
                reference.items, reference.a, reference.b, reference.weight, strict=True
            )
        ],
        "theta_cut": theta_for_total(LITERATE_TOTAL, reference),
        "calibrated_at": now,
        "job_id": job_id,
        "active": False,  # until `rescore` puts it in force (question_bank.item_params)
    }


def item_infos(bank_docs: Iterable[Document]) -> dict[str, ItemInfo]:
    """ItemInfo for every version a question ever had, from the bank's documents: a version
    other than the current one takes the current dimension and rating (editors rarely change
    them, and a calibration only uses them as a prior and to group the reference form)."""
    infos: dict[str, ItemInfo] = {}
    for doc in bank_docs:
        content = doc.get("published") or doc.get("content") or {}
        published_version = doc.get("published_version")
        live = doc.get("status") != "retired" and not doc.get("deleted_at")
        for version in range(1, int(doc.get("version", 1)) + 1):
            infos[f"{doc['_id']}:{version}"] = ItemInfo(
                dimension=str(content.get("dimension", "knowledge")),
                difficulty=int(content.get("difficulty", 3)),
                published=live and version == published_version,
                options=len(content.get("options") or ()),
            )
    return infos
