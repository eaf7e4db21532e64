"""The token index of one VARCHAR field (``enable_match``): token -> rows, with positions.

Kept per segment (`TextIndexes`) and used by ``text_match`` and
``phrase_match``: a growing segment's covers its first rows and grows with
later queries, a sealed segment's is made once, on first use; a source
without one is indexed on the fly by the same code, so the answers are the
same with and without a kept index.

Layout: one entry per token occurrence, sorted by (token id, row,
position), in three numpy arrays; ``starts[i]:starts[i + 1]`` are the
entries of token ``i``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa

from ..functions._analyzer import Analyzer, cached_analyzer


class TextIndex:
    """Token occurrences of a column's texts; build with `TextIndex.build`."""

    def __init__(self, n: int, vocab: dict[str, int], starts: np.ndarray, rows: np.ndarray,
                 positions: np.ndarray) -> None:
        self.n = n
        self.vocab = vocab
        self.starts = starts
        self.rows = rows
        self.positions = positions

    @classmethod
    def build(cls, analyzer: Analyzer, texts: Any) -> TextIndex:
        """The index of ``texts`` (an Arrow string array or a list; nulls have no tokens)."""
        values = texts.to_pylist() if isinstance(texts, (pa.Array, pa.ChunkedArray)) else list(texts)
        n = len(values)
        analyzed = analyzer.analyze_many([v if isinstance(v, str) else "" for v in values])
        lengths = np.fromiter((len(t) for t, _ in analyzed), dtype=np.int64, count=n)
        flat = [tok for toks, _ in analyzed for tok in toks]
        if not flat:
            return cls(n, {}, np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        encoded = pa.array(flat, pa.string()).dictionary_encode()
        ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        vocab = {tok: i for i, tok in enumerate(encoded.dictionary.to_pylist())}
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        positions = np.fromiter((p for _, ps in analyzed for p in ps), dtype=np.int64, count=len(flat))
        order = np.lexsort((positions, rows, ids))
        ids, rows, positions = ids[order], rows[order], positions[order]
        starts = np.searchsorted(ids, np.arange(len(vocab) + 1))
        return cls(n, vocab, starts, rows, positions)

    def joined(self, part: TextIndex) -> TextIndex:
        """This index followed by ``part`` (the index of the rows after these)."""
        if not part.vocab:
            return TextIndex(self.n + part.n, self.vocab, self.starts, self.rows, self.positions)
        vocab = dict(self.vocab)
        remap = np.fromiter((vocab.setdefault(tok, len(vocab)) for tok in part.vocab), np.int64, len(part.vocab))
        ids = np.concatenate([np.repeat(np.arange(len(self.vocab), dtype=np.int64), np.diff(self.starts)),
                              np.repeat(remap, np.diff(part.starts))])
        rows = np.concatenate([self.rows, part.rows + self.n])
        positions = np.concatenate([self.positions, part.positions])
        order = np.lexsort((positions, rows, ids))
        ids, rows, positions = ids[order], rows[order], positions[order]
        return TextIndex(self.n + part.n, vocab, np.searchsorted(ids, np.arange(len(vocab) + 1)), rows, positions)

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows and positions where ``token`` occurs (sorted by row, then position)."""
        i = self.vocab.get(token)
        if i is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        s, e = self.starts[i], self.starts[i + 1]
        return self.rows[s:e], self.positions[s:e]

    def match_any(self, tokens: tuple[str, ...]) -> np.ndarray:
        """Rows holding at least one of ``tokens``."""
        hit = np.zeros(self.n, dtype=bool)
        for token in tokens:
            hit[self.postings(token)[0]] = True
        return hit

    def match_phrase(self, tokens: tuple[str, ...], offsets: tuple[int, ...], slop: int) -> np.ndarray:
        """Rows where ``tokens`` occur at positions ``p_i`` with ``max(p_i - offsets_i) - min(...) <= slop``.

        ``offsets`` are the tokens' positions in the phrase. With ``slop`` 0 the
        tokens must stand exactly as in the phrase; a larger slop allows words
        between them and, from 2 on, swapped words (Milvus's phrase_match).
        """
        hit = np.zeros(self.n, dtype=bool)
        if not tokens:
            return hit
        lists = [self.postings(t) for t in tokens]
        if any(len(r) == 0 for r, _ in lists):
            return hit
        candidates = reduce(np.intersect1d, [np.unique(r) for r, _ in lists])
        if len(candidates) == 0:
            return hit
        shifted = []
        for (r, p), q in zip(lists, offsets):
            keep = np.isin(r, candidates)
            shifted.append((r[keep], p[keep] - q))
        if slop == 0:
            keys = [(r << 32) + (a + (1 << 31)) for r, a in shifted]
            common = reduce(np.intersect1d, keys)
            hit[common >> 32] = True
            return hit
        bounds = [(np.searchsorted(r, candidates), np.searchsorted(r, candidates, side="right")) for r, _ in shifted]
        for j, row in enumerate(candidates.tolist()):
            events = [(int(a), i) for i, ((_, adj), (lo, hi)) in enumerate(zip(shifted, bounds))
                      for a in adj[lo[j]:hi[j]]]
            if window_within(events, len(tokens), slop):
                hit[row] = True
        return hit


def window_within(events: list[tuple[int, int]], k: int, slop: int) -> bool:
    """Whether some window of ``(value, term)`` events holds all ``k`` terms with values spread <= ``slop``."""
    events.sort()
    counts = [0] * k
    have = left = 0
    for value, term in events:
        if counts[term] == 0:
            have += 1
        counts[term] += 1
        while have == k:
            if value - events[left][0] <= slop:
                return True
            first = events[left][1]
            counts[first] -= 1
            if counts[first] == 0:
                have -= 1
            left += 1
    return False


class TextIndexes:
    """The token indexes of one segment's ``enable_match`` fields.

    A growing segment's index covers its first rows and is extended as later
    views ask (rows below a view's end never change). A sealed segment's is
    made on first use, from the growing one (or, for a merged segment, from
    the segment it started from), and then kept: sealing itself (on the insert
    path) does no analysis.
    """

    def __init__(self, schema: Any) -> None:
        self.fields = {f.name: f.analyzer_params for f in schema.fields if getattr(f, "enable_match", False)}
        self.built: dict[str, TextIndex] = {}
        self._lock = threading.Lock()

    def start_from(self, other: TextIndexes, n: int) -> None:
        """Begin with ``other``'s indexes that cover exactly the first ``n`` rows."""
        self.built = {k: v for k, v in other.built.items() if v.n == n}

    def get(self, name: str, n: int, texts: Callable[[str, int, int], Any]) -> TextIndex | None:
        """The index of field ``name`` over rows ``0..n`` (None: not an enable_match field, or an older view)."""
        if name not in self.fields:
            return None
        have = self.built.get(name)
        if have is not None and have.n == n:
            return have
        with self._lock:  # one thread analyzes; the others wait for its index
            have = self.built.get(name)
            index = extend_text_index(have, self.fields[name], name, n, texts)
            if index is not None and (have is None or index.n > have.n):
                self.built[name] = index
            return index


def extend_text_index(have: TextIndex | None, analyzer_params: Any, name: str, n: int,
                      texts: Callable[[str, int, int], Any]) -> TextIndex | None:
    """``have`` (an index of the first rows, or None) extended to rows ``0..n``; None if it covers more."""
    if have is not None and have.n == n:
        return have
    if have is not None and have.n > n:
        return None
    analyzer = cached_analyzer(analyzer_params)
    start = 0 if have is None else have.n
    part = TextIndex.build(analyzer, texts(name, start, n))
    return part if have is None else have.joined(part)
