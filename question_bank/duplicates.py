"""Exact and near-duplicate detection for questions.

Exact: a hash of the normalised stem and the set of option texts (option order and
punctuation don't matter). Near: Jaccard similarity of the segmented stem + options token
sets; pairs at or above `NEAR_DUPLICATE_THRESHOLD` (0.8) are reported. Candidate pairs come
from prefix filtering: if J(A, B) ≥ t then B contains one of A's |A| − ⌈t·|A|⌉ + 1 rarest
tokens, so only those tokens' postings are examined, never all pairs."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NEAR_DUPLICATE_THRESHOLD = 0.8
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return _NOISE.sub("", unicodedata.normalize("NFKC", text).lower())


def content_hash(content: dict[str, Any]) -> str:
    options = sorted(normalise(option["text"]) for option in content["options"])
    key = "\x1f".join([content["type"], normalise(content["stem"]), *options])
    return hashlib.sha256(key.encode()).hexdigest()


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class NearDuplicateIndex:
    """Token sets of live questions with an inverted index for prefix-filtered lookups."""

    _sets: dict[str, frozenset[str]] = field(default_factory=dict)
    _postings: dict[str, set[str]] = field(default_factory=dict)

    def put(self, doc_id: str, tokens: Iterable[str]) -> None:
        self.remove(doc_id)
        token_set = frozenset(tokens)
        self._sets[doc_id] = token_set
        for token in token_set:
            self._postings.setdefault(token, set()).add(doc_id)

    def remove(self, doc_id: str) -> None:
        for token in self._sets.pop(doc_id, frozenset()):
            ids = self._postings.get(token)
            if ids is not None:
                ids.discard(doc_id)
                if not ids:
                    del self._postings[token]

    def _prefix(self, tokens: frozenset[str], threshold: float) -> list[str]:
        ordered = sorted(tokens, key=lambda t: (len(self._postings.get(t, ())), t))
        return ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]

    def similar_to(
        self,
        tokens: Iterable[str],
        *,
        threshold: float = NEAR_DUPLICATE_THRESHOLD,
        exclude: str | None = None,
    ) -> list[tuple[str, float]]:
        token_set = frozenset(tokens)
        if not token_set:
            return []
        candidates: set[str] = set()
        for token in self._prefix(token_set, threshold):
            candidates |= self._postings.get(token, set())
        found = []
        for other in candidates - {exclude}:
            score = jaccard(token_set, self._sets[other])
            if score >= threshold:
                found.append((other, round(score, 4)))
        return sorted(found, key=lambda item: (-item[1], item[0]))

    def all_pairs(
        self, *, threshold: float = NEAR_DUPLICATE_THRESHOLD
    ) -> list[tuple[str, str, float]]:
        pairs: dict[tuple[str, str], float] = {}
        for doc_id, token_set in self._sets.items():
            for other, score in self.similar_to(token_set, threshold=threshold, exclude=doc_id):
                pairs[(min(doc_id, other), max(doc_id, other))] = score
        return sorted(((a, b, s) for (a, b), s in pairs.items()), key=lambda p: (-p[2], p[0], p[1]))
