"""The BM25 function: an analyzed VARCHAR field to a SPARSE_FLOAT_VECTOR field of term frequencies.

At write time each text becomes one sparse row: its analyzer's tokens, each
keyed by a 32-bit hash of the token (FNV-1a over the token's UTF-8 bytes,
taken modulo ``2**32 - 1`` so that it stays a valid sparse index; Milvus keys
its BM25 rows the same way), with the token's count as the value. An empty
text (or one without tokens) gives an empty row.

At search time a query text becomes a row of the same shape (the query's own
term counts). The scoring, with the collection's global statistics, is the
BM25 index's work (`engine/index/_bm25.py`): documents and queries here carry
raw counts only, so rows never need rewriting when the statistics change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..._errors import ParamError
from ...data import _sparse as sp
from ..index._bm25 import QueryRows
from ._analyzer import build_analyzer
from ._base import FunctionDef, register

_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)
_MOD = 2**32 - 1
_CACHE_MAX = 1 << 20


def hash_tokens(tokens: list[str]) -> np.ndarray:
    """The sparse index (``int64``) of each token: FNV-1a 32 of its UTF-8 bytes, modulo ``2**32 - 1``.

    Vectorised over the tokens: one pass per byte position, not per byte.
    """
    if not tokens:
        return np.empty(0, np.int64)
    raw = [t.encode("utf-8") for t in tokens]
    lens = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    width = int(lens.max()) if len(raw) else 0
    buf = np.frombuffer(b"".join(raw), dtype=np.uint8)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    h = np.full(len(raw), _FNV_OFFSET, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for pos in range(width):
            live = lens > pos
            if live.all():
                h ^= buf[starts + pos]
                h *= _FNV_PRIME
            else:
                idx = np.flatnonzero(live)
                hv = h[idx] ^ buf[starts[idx] + pos]
                h[idx] = hv * _FNV_PRIME
    return (h.astype(np.int64) % _MOD).astype(np.int64)


class TokenHasher:
    """`hash_tokens` with a memo of the tokens seen, so that each distinct token is hashed once."""

    def __init__(self) -> None:
        self._memo: dict[str, int] = {}

    def ids(self, tokens: list[str]) -> np.ndarray:
        memo = self._memo
        new = [t for t in dict.fromkeys(tokens) if t not in memo]  # only the distinct tokens are looked up twice
        if len(memo) + len(new) > _CACHE_MAX:
            memo = self._memo = {}  # start over with this call's tokens
            new = list(dict.fromkeys(tokens))
        if new:
            memo.update(zip(new, hash_tokens(new).tolist()))
        return np.fromiter(map(memo.__getitem__, tokens), dtype=np.int64, count=len(tokens))

    def id_list(self, tokens: list[str]) -> list[int]:
        """`ids` as a list of ints (for a few tokens: no array costs)."""
        memo = self._memo
        try:
            return list(map(memo.__getitem__, tokens))  # every token seen before: the common case
        except KeyError:
            pass
        return self.ids(tokens).tolist()


def term_frequencies(token_lists: list[list[str]], hasher: TokenHasher | None = None) -> sp.csr_matrix:
    """One CSR row per token list: hashed token -> count (float32), indices sorted, duplicates summed."""
    n = len(token_lists)
    lens = np.fromiter(map(len, token_lists), dtype=np.int64, count=n)
    flat = [t for toks in token_lists for t in toks]
    ids = (hasher or TokenHasher()).ids(flat)
    if not ids.size:
        return sp.csr_matrix((np.empty(0, np.float32), np.empty(0, np.int64), np.zeros(n + 1, np.int64)),
                             shape=(n, 1))
    if n == 1 and ids.size <= 64:  # one short text (a query): counted without numpy's per-call costs
        return _one_row(ids.tolist()).csr()
    # one int64 key per (row, term), the row above the 32-bit term id: sort once, count the runs
    key = np.repeat(np.arange(n, dtype=np.int64) << 32, lens)
    key |= ids
    key.sort()
    start = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    counts = np.diff(np.append(start, key.size)).astype(np.float32)
    first = key[start]
    terms = first & 0xFFFFFFFF
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(first >> 32, minlength=n), out=indptr[1:])
    return sp.csr_matrix((counts, terms, indptr), shape=(n, int(terms.max()) + 1))


def _one_row(ids: list[int]) -> QueryRows:
    """One row of term counts from its term ids (at least one)."""
    order = sorted(set(ids))
    if len(order) == len(ids):  # no token twice: the common case, without counting
        counts = np.array([1.0] * len(order), dtype=np.float32)
    else:
        counted = Counter(ids)
        counts = np.array(list(map(counted.__getitem__, order)), dtype=np.float32)
    return QueryRows(np.array([0, len(order)], dtype=np.int64), np.array(order, dtype=np.int64), counts,
                     (1, order[-1] + 1))


def _texts(values: Any, name: str) -> list[str]:
    if hasattr(values, "to_pylist"):
        values = values.to_pylist()
    out = list(values)
    for i, v in enumerate(out):
        if v is None:
            out[i] = ""
        elif not isinstance(v, str):
            raise ParamError(f"{name}[{i}]: BM25 needs text, got {type(v).__name__} {v!r}")
    return out


class BM25Function:
    """A BM25 function of one schema: see the module docstring."""

    def __init__(self, definition: FunctionDef, schema: Any) -> None:
        self.definition = definition
        ins, outs = definition.input_field_names, definition.output_field_names
        if len(ins) != 1 or len(outs) != 1:
            raise ParamError(f"function {definition.name!r}: BM25 takes one input field and one output field, "
                             f"got inputs {list(ins)} and outputs {list(outs)}")
        self.input_name, self.output_name = ins[0], outs[0]
        params = None
        field = schema.field(self.input_name) if schema is not None and hasattr(schema, "field") else None
        if field is not None:
            params = getattr(field, "analyzer_params", None)
        self.analyzer = build_analyzer(params)
        self._hasher = TokenHasher()

    def compute(self, columns: dict[str, Any]) -> dict[str, Any]:
        """The output field's term-frequency rows for the batch's input texts."""
        if self.input_name not in columns:
            raise ParamError(f"function {self.definition.name!r}: input field {self.input_name!r} is missing "
                             f"from the data")
        texts = _texts(columns[self.input_name], self.input_name)
        return {self.output_name: self.vectorize(texts)}

    def query(self, data: list[Any]) -> sp.csr_matrix:
        """Query rows (term counts) for search texts."""
        return self.vectorize(_texts(data, "data"))

    def query_rows(self, data: list[Any]) -> QueryRows:
        """`query` as `QueryRows`: what a BM25 index searches with, made without a sparse matrix's costs."""
        tokens = self.analyzer.tokenize_many(_texts(data, "data"))
        if len(tokens) == 1 and 0 < len(tokens[0]) <= 64:  # one query text, the common case
            return _one_row(self._hasher.id_list(tokens[0]))
        m = term_frequencies(tokens, self._hasher)
        return QueryRows(m.indptr, m.indices, m.data, m.shape)

    def vectorize(self, texts: list[str]) -> sp.csr_matrix:
        """Term-frequency rows for ``texts``."""
        return term_frequencies(self.analyzer.tokenize_many(texts), self._hasher)


register("BM25", BM25Function)
