"""Range search on HNSW indexes finds every row within range, however wide the range (as Milvus's does).

faiss's own HNSW range search keeps to the neighbourhood its beam reaches
(about a thousand rows whatever the radius), which search iterators, paging
by range, would silently cut short.
"""

from __future__ import annotations

import numpy as np
import pytest

from heron._types import DataType
from heron.engine.index._vector_index import build_index, exact_range_search

F32 = DataType.FLOAT_VECTOR


@pytest.mark.parametrize("index_type", ["HNSW", "HNSW_SQ", "HNSW_PQ"])
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_wide_range_search_on_hnsw_finds_every_row_in_range(index_type: str, metric: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.random((6000, 8)).astype(np.float32)
    q = x[:2]
    params = {"M": 16, "efConstruction": 64}
    if index_type == "HNSW_SQ":
        params["sq_type"] = "SQ8"
    if index_type == "HNSW_PQ":
        params.update(m=4, nbits=8)
    idx = build_index(F32, 8, index_type, metric, params, x)
    far = 3e38 if metric == "L2" else -3e38
    mid = 0.9 if metric == "L2" else (1.6 if metric == "IP" else 0.8)
    allow = np.zeros(len(x), dtype=bool)
    allow[::3] = True
    for radius, mask in ((far, None), (mid, None), (mid, allow)):
        got = idx.range_search(q, radius=radius, allow=mask, params={"ef": 64})
        want = exact_range_search(F32, metric, x, q, radius=radius, allow=mask)
        for (_, gr), (_, wr) in zip(got, want):
            if index_type == "HNSW":  # exact vectors behind the graph: exactly the exact answer
                assert set(gr.tolist()) == set(wr.tolist())
            else:  # quantized vectors: distances move, but far more than a beam's neighbourhood is found
                assert len(set(gr.tolist()) & set(wr.tolist())) >= 0.5 * len(wr), (radius, len(gr), len(wr))
            if radius == far:
                assert len(gr) == (len(x) if mask is None else int(mask.sum()))
