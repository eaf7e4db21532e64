"""An interim IVF index that grows with its segment: rows are assigned to lists as they arrive.

faiss's IVF ``add`` only assigns each row to its nearest list and appends it
there, so once the lists are trained a segment's interim index keeps up with
its inserts at a fraction of their cost. The lists are trained once per
collection field (on the first segment that has enough rows, a few k-means
rounds over a sample) and every later segment of the field starts from a copy
of them, so a new growing segment is indexed from its first rows on.

Rows are stored as 8-bit scalar codes (a quarter of the bytes a scan reads;
for inner products and cosine faiss's direct codes over ranges Heron keeps,
`_interim_codes`) and a search takes `candidates` of them and re-scores those exactly from the
segment's own vectors, so the scores it returns are the exact ones.

Growing in place is not safe while faiss searches the same lists, so the
slow part of a growth (assigning the rows to lists) runs beside searches and
only the append itself holds them off, for the few milliseconds a copy of
the rows' codes takes (`_Gate`).

All segments of a field start from copies of the same trained lists, so a
search over several of them (`search_together`) assigns each query to its
nearest lists once, reads those lists in every segment (less those that
cannot hold a top-k row, `BOUND_LISTS`), and re-scores the best candidates
of all segments together exactly in one step.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import numpy as np

from .._types import DataType
from ._interim_assign import TwoStepAssigner, assigner_for, kmeans, remember
from ._interim_codes import DirectCodes, codes_for, remember_codes
from .index._exact import as_float32, normalized, select_topk
from .index._faiss import faiss, threads_for

#: Most IVF lists an interim index has (fewer where its sample has fewer than `TRAIN_PER_LIST` rows per list).
IVF_NLIST = 1024
#: Sample rows per list the lists are trained on.
TRAIN_PER_LIST = 16
#: k-means rounds the lists are trained with: 3 gave the recall of 10 in a third of the time, and 5 or 8 no
#: more than 3 (100k MiniLM rows, nprobe 48).
TRAIN_ROUNDS = 3
#: Of those, the rounds that compare each row with every centre where the lists are `TWO_STEP_TRAIN_LISTS` or more;
#: the others assign rows in two steps (`_interim_assign.kmeans`): 0.29 s instead of 0.47 s for 16,384 x 384 rows
#: and 1,024 lists, read as well (recall@10 0.976 against 0.977 at 48 lists of 100k MiniLM rows).
TRAIN_EXACT_ROUNDS = 1
#: Fewest lists trained with two-step rounds. A round's cost grows with the square of the lists (16 sample rows
#: a list): at 256 lists all rounds together take 0.03 s, and two-step rounds cost a little recall there (0.945
#: against 0.95-0.96 on 6,000 MiniLM rows).
TWO_STEP_TRAIN_LISTS = 1024
#: Lists a search reads per query (of `IVF_NLIST`): recall@10 0.95 at 32, 0.948-0.976 at 48 and 0.965-0.978 at
#: 64 on 100k x 384 MiniLM rows, by the k-means draw (faiss's k-means, with other seeds, spreads as much);
#: 1.0 on 128-d clustered rows from 32 on.
IVF_NPROBE = 48
#: Of those, a search skips the lists that cannot hold a top-k row (L2 and COSINE): every row of a list lies
#: within the list's radius (its farthest row from its centre) of the centre, so a list whose centre is
#: farther from the query than ``U`` plus its radius holds no row nearer than ``U``; and ``U``, the distance
#: within which `k` rows surely lie, is the least centre distance plus radius of the `BOUND_LISTS` nearest
#: lists that hold `k` rows or more. On 100k x 128 clustered rows a query then reads 4.8 lists on average
#: (recall@10 1.000); on 100k x 384 MiniLM rows all 48 (the lists are as wide as the gaps between them).
#: No top-k row is lost: the lists skipped hold none.
BOUND_LISTS = 8


def candidates(k: int) -> int:
    """How many rows a search takes from the lists to re-score exactly for a top-`k`."""
    return max(4 * k, 40)


class _Gate:
    """Searches share the lists; appends wait until none runs and hold new ones off meanwhile.

    Appends to different indexes of the same lists may run at once (the interim workers each grow
    a segment of their own): searches wait until the last of them has ended, and an append does not
    join one under way while searches wait, so a search waits for the appends under way only.
    """

    __slots__ = ("cv", "readers", "writers", "waiting")

    def __init__(self) -> None:
        self.cv = threading.Condition(threading.Lock())
        self.readers = 0
        self.writers = 0
        self.waiting = 0

    def enter(self) -> None:
        with self.cv:
            if self.writers:
                self.waiting += 1
                try:
                    while self.writers:
                        self.cv.wait()
                finally:
                    self.waiting -= 1
            self.readers += 1

    def leave(self) -> None:
        with self.cv:
            self.readers -= 1
            if self.readers == 0:
                self.cv.notify_all()

    def write_begin(self) -> None:
        with self.cv:
            while self.writers and self.waiting:
                self.cv.wait()
            self.writers += 1
            self.cv.wait_for(lambda: self.readers == 0)

    def write_end(self) -> None:
        with self.cv:
            self.writers -= 1
            if self.writers == 0:
                self.cv.notify_all()


def enter_gates(ivfs: list[Any]) -> list[_Gate]:
    """Enter the gates of `ivfs`' lists, each once (none of them grows until `leave_gates`); the gates entered."""
    entered: list[_Gate] = []
    try:
        for gate in {id(ivf._gate): ivf._gate for ivf in ivfs}.values():
            gate.enter()
            entered.append(gate)
    except BaseException:
        leave_gates(entered)
        raise
    return entered


def leave_gates(entered: list[_Gate]) -> None:
    for gate in entered:
        gate.leave()


#: The gate of each set of trained lists (by the lists' id, while they live): all their indexes share it.
_GATES: dict[int, tuple[weakref.ref[Any], _Gate]] = {}
_GATES_LOCK = threading.Lock()


def _gate_for(trained: Any) -> _Gate:
    """The one gate of the indexes grown from `trained` lists: a growth holds off the searches of all of them.

    A growth appends for milliseconds; a search of many segments then enters
    one gate rather than one per segment.
    """
    with _GATES_LOCK:
        got = _GATES.get(id(trained))
        if got is not None and got[0]() is trained:
            return got[1]
        for key in [k for k, (ref, _) in _GATES.items() if ref() is None]:
            _GATES.pop(key, None)
        gate = _Gate()
        _GATES[id(trained)] = (weakref.ref(trained), gate)
        return gate


_PLAIN: dict[int, Any] = {}


def _plain_params(nprobe: int) -> Any:
    """Search parameters reading `nprobe` lists, no selector: made once per count (faiss only reads them)."""
    sp = _PLAIN.get(nprobe)
    if sp is None:
        sp = _PLAIN[nprobe] = faiss.SearchParametersIVF(nprobe=nprobe)
    return sp


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
    qtype = faiss.ScalarQuantizer.QT_8bit if metric == "L2" else faiss.ScalarQuantizer.QT_8bit_direct_signed
    idx = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qtype, _metric(metric), False)
    x = np.ascontiguousarray(sample, dtype=np.float32)
    # The lists' centres by Heron's k-means (`_interim_assign.kmeans`, faiss's rounds at a third of the time, the
    # rounds after the first `TRAIN_EXACT_ROUNDS` in two steps); with its quantizer so filled, faiss's `train` trains
    # only the codes (L2: their ranges).
    quantizer.add(kmeans(x, nlist, TRAIN_ROUNDS, l2=metric == "L2", spherical=metric != "L2",
                         max_per_centre=TRAIN_PER_LIST * 16,
                         exact_rounds=TRAIN_EXACT_ROUNDS if nlist >= TWO_STEP_TRAIN_LISTS else None))
    idx.train(x)
    remember(idx, metric, x)
    if metric != "L2":
        remember_codes(idx, DirectCodes(x))  # the codes' ranges (`_interim_codes`)
    return idx


class GrowingIVF:
    """One segment field's interim index: rows ``[0, ntotal)`` of the segment, grown by `grow`."""

    def __init__(self, dtype: DataType, dim: int, metric: str, trained: Any) -> None:
        self.dtype = dtype
        self.dim = dim
        self.metric = metric
        #: The trained lists it started from: indexes with the same lists share one coarse assignment.
        self.lists = trained
        self._index = faiss.clone_index(trained)
        #: Shared by the indexes of the same trained lists: a search of several of them enters one gate.
        self._gate = _gate_for(trained)
        nlist = self._index.nlist
        #: The lists' centres' squared norms (for the distance of a row or a query to a centre, COSINE).
        self._centre_sq = (np.square(trained.quantizer.reconstruct_n(0, nlist)).sum(axis=1, dtype=np.float32)
                           if metric == "COSINE" else None)
        #: Per list, the farthest (L2) any row it holds lies from its centre (raised before rows go in) and how
        #: many rows it holds (raised after): a search reads them without the gate, and both err safe.
        self.radius = np.zeros(nlist, dtype=np.float32)
        self.sizes = np.zeros(nlist, dtype=np.int64)
        self._ntotal = 0
        #: When it last grew (`time.monotonic`): indexes that stopped growing are copied into one (`_interim_merged`).
        self.grown_at = time.monotonic()
        #: Assigns rows to lists in two steps where there are many lists (`_interim_assign`); else the quantizer.
        self.assigner: TwoStepAssigner | None = assigner_for(trained)
        #: The lists' own code ranges (inner products; `_interim_codes`), or None: faiss's trained codes.
        self.codes: DirectCodes | None = codes_for(trained)
        #: The 4-bit codes of its first rows, kept by the copies of settled lists that encoded them
        #: (`_interim_fast`): a later copy encodes only the rows that came since.
        self.fast_codes: np.ndarray | None = None
        #: The buffer `fast_codes` is a view of (with room for more rows).
        self.fast_buffer: np.ndarray | None = None

    @property
    def ntotal(self) -> int:
        """Rows indexed: the segment's first `ntotal` rows."""
        return self._ntotal

    def prepared(self, vectors: Any) -> np.ndarray:
        """`vectors` as the lists hold them (float32; unit length for COSINE)."""
        return prepared(self.dtype, self.metric, vectors)

    def coded(self, q: np.ndarray) -> np.ndarray:
        """Prepared queries `q` as they score the lists' codes (the same where faiss's trained codes are kept)."""
        return q if self.codes is None else self.codes.queries(q)

    def grow(self, vectors: Any) -> None:
        """Append `vectors` as rows ``ntotal, ntotal + 1, ...`` (one thread grows an index at a time)."""
        x = self.prepared(vectors)
        n = x.shape[0]
        if n == 0:
            return
        lists, dist = self._assigned(x)
        if dist is not None:
            np.maximum.at(self.radius, lists, dist * np.float32(1.001))
        ids = np.arange(self._ntotal, self._ntotal + n, dtype=np.int64)
        coded = x if self.codes is None else self.codes.rows(x)
        g = self._gate
        g.write_begin()
        try:
            self._index.add_core(n, faiss.swig_ptr(coded), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
            self._ntotal += n
            self.sizes += np.bincount(lists, minlength=self.sizes.shape[0])
        finally:
            g.write_end()
        self.grown_at = time.monotonic()

    def _assigned(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Each prepared row's list and (not IP) its L2 distance to the list's centre.

        Rows the two-step assigner puts farther from their list's centre than
        the list's radius so far are assigned again against every centre, so
        that a row a little off its nearest list widens none (`_interim_assign`).
        """
        a = self.assigner
        if a is None:
            near, lists = self._index.quantizer.search(x, 1)
            lists = np.ascontiguousarray(lists.ravel(), dtype=np.int64)
            return lists, None if self.metric == "IP" else self._distance(near.ravel(), lists)
        near, lists = a.assign(x)
        if self.metric == "IP":
            return lists, None
        dist = self._distance(near, lists)
        reach = self.radius if a.reach is None else np.maximum(self.radius, a.reach)
        far = np.flatnonzero(dist > reach[lists])
        if far.size:
            near_f, lists_f = a.nearest(x[far])
            lists[far] = lists_f
            dist[far] = self._distance(near_f, lists_f)
        return lists, dist

    def _distance(self, near: np.ndarray, lists: np.ndarray) -> np.ndarray:
        """L2 distances of rows to the centres of their `lists`, from their scores `near` (not IP)."""
        sq = near if self._centre_sq is None else 1 + self._centre_sq[lists] - 2 * near
        return np.sqrt(np.maximum(sq, 0)).astype(np.float32, copy=False)

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
            nprobe = min(nprobe, self._index.nlist)
            sp = faiss.SearchParametersIVF(nprobe=nprobe) if sel is None else \
                faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
            nq = q.shape[0]
            dist = np.empty((nq, want), dtype=np.float32)
            rows = np.empty((nq, want), dtype=np.int64)
            qc = self.coded(q)  # held while faiss reads it
            with threads_for(nq):
                coarse, assign = self._index.quantizer.search(q, nprobe)
                self._index.search_preassigned_c(nq, faiss.swig_ptr(qc), want, faiss.swig_ptr(assign),
                                                 faiss.swig_ptr(coarse), faiss.swig_ptr(dist), faiss.swig_ptr(rows),
                                                 False, sp)
        finally:
            g.leave()
        del bits
        if int(np.count_nonzero(rows >= 0, axis=1).min()) < min(k, top):
            return None
        return self._rescored(vectors, queries, rows, k)

    def assign(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The `IVF_NPROBE` lists nearest each of prepared queries `q` and their scores: ``(scores, lists)``."""
        return self._index.quantizer.search(q, min(IVF_NPROBE, self._index.nlist))  # trained once: never changes

    def centre_distances(self, scores: np.ndarray, lists: np.ndarray) -> np.ndarray:
        """L2 distances from prepared queries to the centres of `lists`, from their `assign` `scores` (not IP)."""
        sq = scores if self._centre_sq is None else 1 + self._centre_sq[lists] - 2 * scores
        return np.sqrt(np.maximum(sq, 0))

    def search_assigned(self, q: np.ndarray, want: int, assign: np.ndarray, coarse: np.ndarray, top: int,
                        scores: np.ndarray, rows: np.ndarray) -> None:
        """The `want` best of rows ``[0, min(top, ntotal))`` by their codes, in the lists `assign` names.

        `q` are prepared queries; `assign` and `coarse` the lists of the
        trained lists' quantizer nearest each query and their scores
        (``[nq, nprobe]``); `scores` and `rows` (C-contiguous ``[nq, want]``)
        receive the approximate scores and the rows (-1: none).
        """
        g = self._gate
        g.enter()
        try:  # the rows it holds cannot change meanwhile
            n = min(top, self._ntotal)
            sp = _plain_params(assign.shape[1]) if n >= self._ntotal else \
                faiss.SearchParametersIVF(nprobe=assign.shape[1], sel=faiss.IDSelectorRange(0, n))
            qc = self.coded(q)  # held while faiss reads it
            self._index.search_preassigned_c(q.shape[0], faiss.swig_ptr(qc), want, faiss.swig_ptr(assign),
                                             faiss.swig_ptr(coarse), faiss.swig_ptr(scores), faiss.swig_ptr(rows),
                                             False, sp)
        finally:
            g.leave()

    def _rescored(self, vectors: Any, queries: np.ndarray, rows: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        nq, want = rows.shape
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        x = as_float32(self.dtype, vectors[safe.ravel()]).reshape(nq, want, self.dim)
        best, pos = exact_scores(self.dtype, self.metric, x, queries, valid, k)
        out_rows = np.take_along_axis(rows, pos, axis=1)
        out_rows[~np.isfinite(best)] = -1
        return best, out_rows


def exact_scores(dtype: DataType, metric: str, x: np.ndarray, queries: np.ndarray, valid: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` of candidates `x` (``[nq, want, dim]`` float32; those not `valid` left out) by their exact scores.

    Returns ``(scores, positions)`` ``[nq, k]``, best first (non-finite scores past the last valid one).
    """
    q = as_float32(dtype, queries)
    if metric == "L2":
        diff = x - q[:, None, :]
        scores = np.einsum("qkd,qkd->qk", diff, diff)
        worst = np.float32(np.inf)
    else:
        scores = np.einsum("qkd,qd->qk", x, normalized(q) if metric == "COSINE" else q)
        if metric == "COSINE":
            norms = np.sqrt(np.einsum("qkd,qkd->qk", x, x))
            scores /= np.maximum(norms, np.float32(1e-30))
        worst = np.float32(-np.inf)
    scores = np.where(valid, scores, worst).astype(np.float32, copy=False)
    return select_topk(scores, min(k, x.shape[1]), metric)


#: The lists' radii and sizes over the last few sets of indexes searched together, by their rows (`_combined`).
_COMBINED: dict[tuple[tuple[int, int], ...], tuple[list[weakref.ref[GrowingIVF]], np.ndarray, np.ndarray]] = {}
_COMBINED_KEPT = 8


def _combined(ivfs: list[GrowingIVF]) -> tuple[np.ndarray, np.ndarray]:
    """Per list, the largest radius and the total rows over `ivfs` (kept while none of them grows)."""
    if len(ivfs) == 1:
        return ivfs[0].radius, ivfs[0].sizes
    # An index's radii are raised before its rows go in and its sizes after: read at one row count, both err
    # safe for the rows counted; once it grows, the count and so the key change.
    # Weak references: an id is only the same index's while that index lives, and the cache keeps none alive.
    key = tuple((id(ivf), ivf.ntotal) for ivf in ivfs)
    got = _COMBINED.get(key)
    if got is not None and all(ref() is ivf for ref, ivf in zip(got[0], ivfs)):
        return got[1], got[2]
    radius = np.max([ivf.radius for ivf in ivfs], axis=0)
    sizes = np.sum([ivf.sizes for ivf in ivfs], axis=0)
    if len(_COMBINED) >= _COMBINED_KEPT:
        _COMBINED.clear()
    _COMBINED[key] = ([weakref.ref(ivf) for ivf in ivfs], radius, sizes)
    return radius, sizes


def _bounded(parts: list[tuple[GrowingIVF, Any, int]], coarse: np.ndarray, assign: np.ndarray,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """`coarse` and `assign` less the lists that cannot hold a query's top `k` (-1; see `BOUND_LISTS`)."""
    if assign.shape[1] <= 1:
        return coarse, assign
    first = parts[0][0]
    radius, sizes = _combined([ivf for ivf, _, _ in parts])
    centre = first.centre_distances(coarse, assign)
    width = radius[assign]
    head = assign[:, :BOUND_LISTS]
    reach = np.where(sizes[head] >= k, centre[:, : head.shape[1]] + width[:, : head.shape[1]], np.inf)
    far = centre - width > reach.min(axis=1, keepdims=True)
    if not far.any():
        return coarse, assign
    keep = assign.shape[1] - int(far.all(axis=0)[::-1].argmin())  # less the columns no query reads
    assign = assign.copy()
    assign[far] = -1
    return np.ascontiguousarray(coarse[:, :keep]), np.ascontiguousarray(assign[:, :keep])


def search_together(parts: list[tuple[GrowingIVF, Any, int]], queries: np.ndarray,
                    k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Exact scores of the best `k` of the candidates several interim indexes with the same lists give together.

    `parts` are ``(index, vectors, top)``: an interim index, its segment's rows
    (for re-scoring) and how many of them to search. Each query is assigned
    to its `IVF_NPROBE` nearest lists once, those lists are read in every
    index for its `candidates` best rows by their codes, and the `candidates`
    best of all of those (by their codes: as many as one index over all the
    rows would give) are re-scored exactly at once. Returns ``(scores, parts, rows)`` ``[nq, k]``,
    best first (row -1 past the last), or None where a query got fewer than
    `k` candidates.
    """
    first = parts[0][0]
    dtype, metric, dim = first.dtype, first.metric, first.dim
    want = candidates(k)
    q = first.prepared(queries)
    nq, count = q.shape[0], len(parts)
    approx = np.empty((count, nq, want), dtype=np.float32)
    found = np.empty((count, nq, want), dtype=np.int64)
    whole = all(top >= ivf.ntotal for ivf, _, top in parts)
    with threads_for(nq):
        coarse, assign = first.assign(q)
        if metric != "IP" and whole:
            coarse, assign = _bounded(parts, coarse, assign, k)
        if whole and count > 1:
            at, rows = _stacked([ivf for ivf, _, _ in parts]).search(q, want, assign, coarse)
        else:
            for i, (ivf, _, top) in enumerate(parts):
                ivf.search_assigned(q, want, assign, coarse, top, approx[i], found[i])
            at, rows = _shortlist(metric, approx, found, want)
    if int(np.count_nonzero(rows >= 0, axis=1).min()) < min(k, sum(top for _, _, top in parts)):
        return None
    x = np.empty((nq, rows.shape[1], dim), dtype=np.float32)
    valid = rows >= 0
    x[valid] = _gathered(dtype, [vectors for _, vectors, _ in parts], at[valid], rows[valid])
    best, pos = exact_scores(dtype, metric, x, queries, valid, k)
    out_rows = np.take_along_axis(rows, pos, axis=1)
    out_rows[~np.isfinite(best)] = -1
    return best, np.take_along_axis(at, pos, axis=1), out_rows


class _Stacked:
    """Several interim indexes with the same trained lists read as one: their lists one after the other.

    List ``l`` of the ``j``-th index is list ``j * nlist + l`` of the stack
    (faiss reads each in place), so one faiss search reads the lists of all of
    them (instead of one search per index) once each query's lists are named
    in every index, and its results name ``(stacked list, position)`` pairs:
    the index is the stacked list's ``// nlist``, the row the id at that
    position of its list.
    """

    def __init__(self, ivfs: list[GrowingIVF]) -> None:
        self.refs = [weakref.ref(ivf) for ivf in ivfs]
        self._lists = faiss.InvertedListsPtrVector()
        for ivf in ivfs:
            self._lists.push_back(ivf._index.invlists)
        # Holds no index: the lists are the indexes' own, read while each of them is searched (its gate held).
        self._stack = faiss.VStackInvertedLists(self._lists.size(), self._lists.data())
        trained = ivfs[0].lists
        self.nlist = trained.nlist
        reader = faiss.IndexIVFScalarQuantizer(trained.quantizer, trained.d, self.nlist * len(ivfs),
                                               faiss.ScalarQuantizer.QT_8bit, trained.metric_type, False)
        reader.sq = trained.sq
        reader.is_trained = True  # its lists are the stack's; with unencoded residuals it reads no centre
        reader.replace_invlists(self._stack, False)
        self._reader = reader
        self._codes: DirectCodes | None = codes_for(trained)
        #: Each index's first stacked list: added to a query's lists to name them in every index.
        self._firsts = np.arange(len(ivfs), dtype=np.int64)[:, None] * self.nlist

    def search(self, q: np.ndarray, want: int, assign: np.ndarray,
               coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The `want` best rows by their codes over all the indexes: ``(index, row)`` ``[nq, want]`` (row -1: none).

        `assign` and `coarse` (``[nq, nprobe]``) name each query's lists (-1: none) in the trained lists.
        """
        ivfs = [ref() for ref in self.refs]
        nq, nprobe = assign.shape
        count = len(ivfs)
        lists = (assign[:, None, :] + self._firsts[None]).reshape(nq, count * nprobe)
        if (assign < 0).any():
            lists[np.broadcast_to((assign < 0)[:, None, :], (nq, count, nprobe)).reshape(nq, -1)] = -1
        dis = np.ascontiguousarray(np.broadcast_to(coarse[:, None, :], (nq, count, nprobe)).reshape(nq, -1))
        scores = np.empty((nq, want), dtype=np.float32)
        pairs = np.empty((nq, want), dtype=np.int64)
        entered = enter_gates([ivf for ivf in ivfs if ivf is not None])
        try:  # no index grows meanwhile: the stacked lists hold still
            qc = q if self._codes is None else self._codes.queries(q)
            self._reader.search_preassigned_c(nq, faiss.swig_ptr(qc), want, faiss.swig_ptr(lists),
                                              faiss.swig_ptr(dis), faiss.swig_ptr(scores), faiss.swig_ptr(pairs),
                                              True, _plain_params(count * nprobe))
            valid = pairs >= 0
            hit_lists, pos = pairs[valid] >> 32, pairs[valid] & 0xFFFFFFFF
            stack = self._stack
            found = [stack.get_single_id(lst, p) for lst, p in zip(hit_lists.tolist(), pos.tolist())]
        finally:
            leave_gates(entered)
        out_at = np.zeros((nq, want), dtype=np.int64)
        out_rows = np.full((nq, want), -1, dtype=np.int64)
        out_at[valid] = hit_lists // self.nlist
        out_rows[valid] = found
        return out_at, out_rows


#: Stacked readers of the last few sets of indexes searched together (`_stacked`).
_STACKED: dict[tuple[int, ...], _Stacked] = {}


def _stacked(ivfs: list[GrowingIVF]) -> _Stacked:
    """A `_Stacked` reader of `ivfs`, made once per set of indexes (while all of them live)."""
    key = tuple(id(ivf) for ivf in ivfs)
    got = _STACKED.get(key)
    if got is None or not all(ref() is ivf for ref, ivf in zip(got.refs, ivfs)):
        if len(_STACKED) >= _COMBINED_KEPT:
            _STACKED.clear()
        got = _STACKED[key] = _Stacked(ivfs)
    return got


def _gathered(dtype: DataType, vectors: list[Any], at: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows[i]`` of ``vectors[at[i]]`` as float32, in that order (one read per segment that holds any)."""
    out = np.empty((rows.shape[0], vectors[0].shape[1]), dtype=np.float32)
    order = np.argsort(at, kind="stable")
    bounds = np.searchsorted(at[order], np.arange(len(vectors) + 1)).tolist()
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        if hi > lo:
            mine = order[lo:hi]
            out[mine] = as_float32(dtype, vectors[i][rows[mine]])
    return out


def _shortlist(metric: str, approx: np.ndarray, found: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
    """The `want` best candidates of each query over all indexes by their codes' scores: ``(index, row)`` ``[nq, want]``.

    `approx` and `found` are ``[indexes, nq, want]``. The indexes are copies of the same trained lists, whose
    codes score alike, so the candidates of all of them rank together as those of one index over their rows.
    """
    count, nq, _ = approx.shape
    if count == 1:
        return np.zeros((nq, want), dtype=np.int64), found[0]
    rows = found.transpose(1, 0, 2).reshape(nq, count * want)
    worst = np.float32(np.inf) if metric == "L2" else np.float32(-np.inf)
    scores = np.where(rows >= 0, approx.transpose(1, 0, 2).reshape(nq, count * want), worst)
    pick = np.argpartition(scores if metric == "L2" else -scores, want - 1, axis=1)[:, :want]
    return pick // want, np.take_along_axis(rows, pick, axis=1)
