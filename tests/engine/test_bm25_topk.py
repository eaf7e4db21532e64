"""BM25 top-k selection: the k best of a segment, ties at the cut to the lower row, with and without a filter.

`Bm25Terms.topk` takes the k best from a floor sampled from the scores
(``_candidates``) or, with MaxScore, from the candidates it keeps; both must
give what sorting every row's score by (score desc, row asc) gives. Rows that
repeat the same document score exactly alike, so the corpora below hold many
ties, also at the k-th place.
"""

from __future__ import annotations

import numpy as np
import pytest

from heron.data import _sparse as sp
from heron.engine.functions._bm25 import term_frequencies
from heron.engine.index import _bm25 as bm25_index
from heron.engine.index._bm25 import Bm25Terms, top_of

K1, B = 1.2, 0.75


def _corpus(seed: int, n: int, distinct: int, vocab: int = 30) -> sp.csr_matrix:
    """``n`` rows drawn from ``distinct`` documents: many rows score exactly alike."""
    rng = np.random.default_rng(seed)
    docs = [[f"t{t}" for t in rng.integers(0, vocab, rng.integers(1, 8))] for _ in range(distinct)]
    return term_frequencies([docs[i] for i in rng.integers(0, distinct, n)])


def _expected(full: np.ndarray, k: int, allow: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero((full > 0) & (True if allow is None else allow))
    order = np.lexsort((rows, -full[rows].astype(np.float32)))[:k]
    return full[rows[order]], rows[order]


@pytest.mark.parametrize("sort_max", [0, 512])
@pytest.mark.parametrize("prune_min", [0, 10**9])  # MaxScore from the first term on; never
@pytest.mark.parametrize(("n", "distinct"), [(5, 3), (90, 4), (3000, 25), (3000, 400)])
def test_topk_is_the_sorted_scores_with_lower_rows_first_on_ties(sort_max, prune_min, n, distinct, monkeypatch):
    monkeypatch.setattr(bm25_index, "PRUNE_MIN_POSTINGS", prune_min)
    monkeypatch.setattr(bm25_index, "PRUNE_MIN_PER_ROW", 0.0 if prune_min == 0 else 4.0)
    monkeypatch.setattr(bm25_index, "SORT_MAX", sort_max)
    terms = Bm25Terms.from_rows(_corpus(n + distinct, n, distinct))
    queries = _corpus(7, 12, 12)
    queries.data = queries.data * np.float32(1.5)  # weights as prepared queries carry them
    full = terms.scores(queries, 3.0, K1, B).toarray()
    rng = np.random.default_rng(n)
    for allow in (None, rng.random(n) < 0.4, np.zeros(n, bool)):
        for k in (1, 3, 10, 64):
            s, r = terms.topk(queries, k, allow, 3.0, K1, B)
            assert s.shape == r.shape == (queries.shape[0], k)
            for i in range(queries.shape[0]):
                want_s, want_r = _expected(full[i], k, allow)
                got = r[i] >= 0
                np.testing.assert_array_equal(r[i][got], want_r, err_msg=f"query {i}, k={k}")
                np.testing.assert_allclose(s[i][got], want_s, rtol=1e-5)
                assert not got[len(want_r):].any()


@pytest.mark.parametrize("sort_max", [0, 512])  # partitioned first; sorted outright
def test_top_of_breaks_ties_by_lower_id(sort_max, monkeypatch):
    monkeypatch.setattr(bm25_index, "SORT_MAX", sort_max)
    scores = np.array([1.0, 3.0, 2.0, 2.0, 2.0, 0.0, 2.0, 3.0], np.float64)
    ids = np.array([2, 5, 10, 30, 31, 33, 40, 41])
    for k, want in ((3, [5, 41, 10]), (4, [5, 41, 10, 30]), (7, [5, 41, 10, 30, 31, 40, 2]), (8, [5, 41, 10, 30, 31, 40, 2])):
        s, r = top_of(scores, ids, k)
        assert r.tolist() == want
        assert s.tolist() == sorted(scores[np.searchsorted(ids, want)].tolist(), reverse=True)
    s, r = top_of(np.zeros(4), np.arange(4), 2)  # nothing scores: no hits
    assert len(s) == len(r) == 0
