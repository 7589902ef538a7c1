"""Chinese full-text search shared by the question bank and the articles: one jieba
tokenizer with the domain dictionary, and an in-memory BM25 index.

Segmentation is jieba's search mode, which also emits the dictionary words inside a longer
word (高血压 → 血压, 高血压), so a query for 高血压 reaches text that only says 血压偏高.
Nothing cleverer (synonyms, pinyin) is attempted."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

USER_DICT = Path(__file__).with_name("userdict.txt")

# Function words and quiz boilerplate that say nothing about a question's subject.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 或 及 等 也 都 就 而 被 把 对 从 为 以 于 之 其 这 那 哪 个 些 吗 呢 吧 啊 "
    "一 不 有 会 能 要 可以 应 应该 哪些 哪个 下列 以下 关于 说法 正确 错误 做法 什么 怎么 如何 "
    "我们 你 他 她 它 我".split()
)
_WORD = re.compile(r"\w", re.UNICODE)


@functools.cache
def tokenizer() -> jieba.Tokenizer:
    """The process's one tokenizer. Loading jieba's dictionary takes about a second, so it
    is done once per process (at app start-up, off the event loop) and then shared: the
    tokenizer is immutable after loading, unlike app state."""
    instance = jieba.Tokenizer()
    instance.initialize()
    with USER_DICT.open("rb") as handle:  # jieba leaves a path it opens itself unclosed
        instance.load_userdict(handle)
    return instance


def terms(text: str) -> list[str]:
    """Search-mode tokens of `text`, lower-cased, without punctuation and stopwords."""
    if not text:
        return []
    result = []
    for token in tokenizer().cut_for_search(text.lower()):
        token = token.strip()
        if token and _WORD.search(token) and token not in STOPWORDS:
            result.append(token)
    return result


@dataclass
class _Posting:
    length: float
    freqs: dict[str, float]


@dataclass
class SearchIndex:
    """BM25 over weighted fields (BM25F-style: a field's term counts are multiplied by its
    weight before saturation). Documents are replaced whole; the index is rebuilt from
    storage at start-up and kept current by the owning cache."""

    weights: dict[str, float]
    k1: float = 1.2
    b: float = 0.75
    _docs: dict[str, _Posting] = field(default_factory=dict)
    _postings: dict[str, set[str]] = field(default_factory=dict)
    _total_length: float = 0.0

    def __len__(self) -> int:
        return len(self._docs)

    def put(self, doc_id: str, fields: dict[str, list[str]]) -> None:
        self.remove(doc_id)
        freqs: dict[str, float] = {}
        for name, tokens in fields.items():
            weight = self.weights.get(name, 1.0)
            for token in tokens:
                freqs[token] = freqs.get(token, 0.0) + weight
        posting = _Posting(length=sum(freqs.values()), freqs=freqs)
        self._docs[doc_id] = posting
        self._total_length += posting.length
        for term in freqs:
            self._postings.setdefault(term, set()).add(doc_id)

    def remove(self, doc_id: str) -> None:
        posting = self._docs.pop(doc_id, None)
        if posting is None:
            return
        self._total_length -= posting.length
        for term in posting.freqs:
            ids = self._postings.get(term)
            if ids is not None:
                ids.discard(doc_id)
                if not ids:
                    del self._postings[term]

    def document_frequency(self, term: str) -> int:
        return len(self._postings.get(term, ()))

    def search(
        self, query_terms: Iterable[str], *, accept: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """Ids with their BM25 score, best first; `accept` filters ids before scoring."""
        unique = list(dict.fromkeys(query_terms))
        if not unique or not self._docs:
            return []
        n = len(self._docs)
        average = self._total_length / n or 1.0
        scores: dict[str, float] = {}
        for term in unique:
            ids = self._postings.get(term)
            if not ids:
                continue
            idf = math.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5))
            for doc_id in ids:
                if accept is not None and not accept(doc_id):
                    continue
                posting = self._docs[doc_id]
                tf = posting.freqs[term]
                norm = tf + self.k1 * (1 - self.b + self.b * posting.length / average)
                scores[doc_id] = scores.get(doc_id, 0.0) + idf * tf * (self.k1 + 1) / norm
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
