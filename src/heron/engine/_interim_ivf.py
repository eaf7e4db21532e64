"""An interim IVF index that grows with its segment: rows are assigned to lists as they arrive.

faiss's IVF ``add`` only assigns each row to its nearest list and appends it
there, so once the lists are trained a segment's interim index keeps up with
its inserts at a fraction of their cost. The lists are trained once per
collection field (on the first segment that has enough rows, a few k-means
rounds over a sample) and every later segment of the field starts from a copy
of them, so a new growing segment is indexed from its first rows on.

Rows are stored as 8-bit scalar codes (a quarter of the bytes a scan reads)
and a search takes `candidates` of them and re-scores those exactly from the
segment's own vectors, so the scores it returns are the exact ones.

Growing in place is not safe while faiss searches the same lists, so the
slow part of a growth (assigning the rows to lists) runs beside searches and
only the append itself holds them off, for the few milliseconds a copy of
the rows' codes takes (`_Gate`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .._types import DataType
from .index._exact import as_float32, normalized, select_topk
from .index._faiss import faiss, threads_for

#: Most IVF lists an interim index has (fewer where its sample has fewer than `TRAIN_PER_LIST` rows per list).
IVF_NLIST = 1024
#: Sample rows per list the lists are trained on.
TRAIN_PER_LIST = 16
#: k-means rounds the lists are trained with: 3 gave the recall of 10 (0.977 at nprobe 48 on 100k
#: MiniLM rows) in a third of the time.
TRAIN_ROUNDS = 3
#: Lists a search reads per query (of `IVF_NLIST`): recall@10 0.95 at 32, 0.977 at 48, 0.986 at 64
#: on 100k x 384 MiniLM rows; 1.0 on 128-d clustered rows from 32 on.
IVF_NPROBE = 48


def candidates(k: int) -> int:
    """How many rows a search takes from the lists to re-score exactly for a top-`k`."""
    return max(4 * k, 40)


class _Gate:
    """Searches share the lists; an append waits until none runs and holds new ones off meanwhile."""

    __slots__ = ("cv", "readers", "writing")

    def __init__(self) -> None:
        self.cv = threading.Condition(threading.Lock())
        self.readers = 0
        self.writing = False

    def enter(self) -> None:
        with self.cv:
            while self.writing:
                self.cv.wait()
            self.readers += 1

    def leave(self) -> None:
        with self.cv:
            self.readers -= 1
            if self.readers == 0:
                self.cv.notify_all()

    def write_begin(self) -> None:
        with self.cv:
            self.writing = True
            self.cv.wait_for(lambda: self.readers == 0)

    def write_end(self) -> None:
        with self.cv:
            self.writing = False
            self.cv.notify_all()


def _metric(metric: str) -> int:
    return faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT


def prepared(dtype: DataType, metric: str, vectors: Any) -> np.ndarray:
    """`vectors` of type `dtype` as IVF lists of `metric` take them: float32, unit length for COSINE."""
    x = as_float32(dtype, vectors)
    return normalized(x) if metric == "COSINE" else np.ascontiguousarray(x)


def train_lists(dim: int, metric: str, sample: np.ndarray) -> Any:
    """An empty, trained IVF (8-bit codes) whose lists come from a few k-means rounds over `sample`."""
    nlist = max(1, min(IVF_NLIST, sample.shape[0] // TRAIN_PER_LIST))
    quantizer = faiss.IndexFlatL2(dim) if metric == "L2" else faiss.IndexFlatIP(dim)
    idx = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, _metric(metric),
                                        False)
    idx.cp.niter = TRAIN_ROUNDS
    idx.cp.max_points_per_centroid = TRAIN_PER_LIST * 16
    idx.cp.min_points_per_centroid = 1  # fewer rows per list than faiss advises: no warning, it is on purpose
    idx.train(np.ascontiguousarray(sample, dtype=np.float32))
    return idx


class GrowingIVF:
    """One segment field's interim index: rows ``[0, ntotal)`` of the segment, grown by `grow`."""

    def __init__(self, dtype: DataType, dim: int, metric: str, trained: Any) -> None:
        self.dtype = dtype
        self.dim = dim
        self.metric = metric
        self._index = faiss.clone_index(trained)
        self._gate = _Gate()
        self._ntotal = 0

    @property
    def ntotal(self) -> int:
        """Rows indexed: the segment's first `ntotal` rows."""
        return self._ntotal

    def prepared(self, vectors: Any) -> np.ndarray:
        """`vectors` as the lists hold them (float32; unit length for COSINE)."""
        return prepared(self.dtype, self.metric, vectors)

    def grow(self, vectors: Any) -> None:
        """Append `vectors` as rows ``ntotal, ntotal + 1, ...`` (one thread grows an index at a time)."""
        x = self.prepared(vectors)
        n = x.shape[0]
        if n == 0:
            return
        lists = np.ascontiguousarray(self._index.quantizer.assign(x, 1).ravel(), dtype=np.int64)
        ids = np.arange(self._ntotal, self._ntotal + n, dtype=np.int64)
        g = self._gate
        g.write_begin()
        try:
            self._index.add_core(n, faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
            self._ntotal += n
        finally:
            g.write_end()

    def search(self, vectors: Any, queries: np.ndarray, k: int, n: int,
               allow: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact scores of the best `k` of the candidates among rows ``[0, min(n, ntotal))``.

        `vectors` are the segment's rows (for re-scoring); `allow` (length `n`,
        if given) the rows a search may return. None where a query got fewer
        candidates than `k` (a selective filter): scan exactly instead.
        """
        want = candidates(k)
        q = self.prepared(queries)
        g = self._gate
        g.enter()
        try:  # the rows it holds cannot change meanwhile
            top = min(n, self._ntotal)
            nprobe = IVF_NPROBE
            bits = None
            if allow is not None:
                bits = np.packbits(allow[:top], bitorder="little")
                kept = int(np.count_nonzero(allow[:top]))
                if kept < top:  # the allowed rows lie farther out: read more lists
                    nprobe = int(np.ceil(IVF_NPROBE / np.sqrt(max(kept, 1) / top)))
                sel = faiss.IDSelectorBitmap(bits.shape[0], faiss.swig_ptr(bits))
            elif top < self._ntotal:
                sel = faiss.IDSelectorRange(0, top)
            else:
                sel = None
            sp = faiss.SearchParametersIVF(nprobe=min(nprobe, self._index.nlist)) if sel is None else \
                faiss.SearchParametersIVF(nprobe=min(nprobe, self._index.nlist), sel=sel)
            with threads_for(q.shape[0]):
                _, rows = self._index.search(q, want, params=sp)
        finally:
            g.leave()
        del bits
        if int(np.count_nonzero(rows >= 0, axis=1).min()) < min(k, top):
            return None
        return self._rescored(vectors, queries, rows, k)

    def _rescored(self, vectors: Any, queries: np.ndarray, rows: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        nq, want = rows.shape
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        x = as_float32(self.dtype, vectors[safe.ravel()]).reshape(nq, want, self.dim)
        q = as_float32(self.dtype, queries)
        if self.metric == "L2":
            diff = x - q[:, None, :]
            scores = np.einsum("qkd,qkd->qk", diff, diff)
            worst = np.float32(np.inf)
        else:
            scores = np.einsum("qkd,qd->qk", x, normalized(q) if self.metric == "COSINE" else q)
            if self.metric == "COSINE":
                norms = np.sqrt(np.einsum("qkd,qkd->qk", x, x))
                scores /= np.maximum(norms, np.float32(1e-30))
            worst = np.float32(-np.inf)
        scores = np.where(valid, scores, worst).astype(np.float32, copy=False)
        best, pos = select_topk(scores, min(k, want), self.metric)
        out_rows = np.take_along_axis(rows, pos, axis=1)
        out_rows[~np.isfinite(best)] = -1
        return best, out_rows
