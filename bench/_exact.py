"""Exact nearest neighbours: the ground truth every recall figure is checked against."""

from __future__ import annotations

import numpy as np


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows left as they are), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms == 0, 1, norms), dtype=np.float32)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Ids of the ``k`` nearest base rows for each query, best first; ``-1`` pads.

    COSINE ranks by inner product of normalized vectors; L2 by squared
    distance. Uses a faiss flat index when faiss is installed, numpy otherwise.
    """
    nq = queries.shape[0]
    if k <= 0 or base.shape[0] == 0:
        return np.full((nq, max(k, 0)), -1, dtype=np.int64)
    cosine = metric.upper() == "COSINE"
    b = normalized(base) if cosine else np.ascontiguousarray(base, dtype=np.float32)
    q = normalized(queries) if cosine else np.ascontiguousarray(queries, dtype=np.float32)
    try:
        import faiss
    except ImportError:
        return _numpy_topk(b, q, k, cosine)
    index = faiss.IndexFlatIP(b.shape[1]) if cosine else faiss.IndexFlatL2(b.shape[1])
    index.add(b)
    _, ids = index.search(q, k)
    return ids.astype(np.int64)


def _numpy_topk(b: np.ndarray, q: np.ndarray, k: int, cosine: bool) -> np.ndarray:
    out = np.full((q.shape[0], k), -1, dtype=np.int64)
    kk = min(k, b.shape[0])
    for start in range(0, q.shape[0], 256):
        qq = q[start : start + 256]
        scores = -(qq @ b.T) if cosine else (qq * qq).sum(1, keepdims=True) - 2 * qq @ b.T + (b * b).sum(1)
        part = np.argpartition(scores, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(scores, part, 1).argsort(1, kind="stable")
        out[start : start + 256, :kk] = np.take_along_axis(part, order, 1)
    return out


def recall_at(found: list[list[int]], truth: np.ndarray, k: int) -> float:
    """Mean fraction of each query's true top-``k`` present in its first ``k`` results."""
    if not found:
        return float("nan")
    total = 0.0
    for got, true in zip(found, truth):
        want = {int(t) for t in true[:k] if t >= 0}
        if not want:
            total += 1.0
            continue
        total += len(want.intersection(int(g) for g in list(got)[:k])) / len(want)
    return total / len(found)
