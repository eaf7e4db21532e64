"""Settled interim lists of wide inner-product rows copied as 4-bit codes that faiss scans in registers.

On 384-d text embeddings most of a fresh search is faiss's scan of the 8-bit
codes of the lists it reads (`_interim_codes`): 48 of 1,024 lists of 100k
MiniLM rows are ~4,800 codes of 384 bytes, 280 µs a query on one core. faiss's
"fast scan" product quantizer (``IndexIVFPQFastScan``: half a byte per
`SUB_DIMS` components, codes laid out 32 rows to a block and scored through
lookup tables held in SIMD registers) reads the same lists' rows as ``dim / 4``-byte codes
in ~70 µs. Its codes rank rows about as well for a
shortlist that is then re-scored exactly: on those rows, 40 candidates from
each gave recall@10 0.959 against 0.957 for the 8-bit codes.

Encoding them costs more than the 8-bit codes (about 2 µs a row of 384 dims
on one core by table lookup, `_interim_grid`, against faiss's own 5.4-6 µs and
the 8-bit codes' fraction of one), too much for the
interim thread that must keep up with inserts. So the 4-bit codes are made
on the thread of the copies of settled lists (`_interim_merged.Merged`), from the
segments' stored vectors: `encode_ahead` encodes each interim index's rows once
it has caught up with its segment (rows not in the lists yet are scanned exactly
by every search: the interim thread comes first), and the copy made once the
lists settle encodes only what is left; the rows of each list are those the interim
indexes put there, in the copy's id order, packed into faiss's blocks in one
array step (`pack_blocks`). The product quantizer is trained once per set of
trained lists, on a sample of the first rows encoded.

This applies to inner-product and cosine lists (the 8-bit codes of L2 lists
are faiss's trained ones) of `FAST_DIM` or more components, where the scan is
most of a search; narrower rows keep the 8-bit copy. On 128-d rows in tight
clusters (``bench.mixed_load``'s, cosine) codes of two components lose the
order within a cluster (recall@10 0.15-0.37 from 80 candidates), and codes of
one component with offsets from the centre keep it (0.990 at 1M rows) but
cut a query by 15% only (266 against 304-320 µs), for a copy of 6.3 s.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .._types import DataType
from ._interim_codes import codes_for
from ._interim_grid import GridCodes
from ._interim_ivf import prepared
from .index._faiss import faiss

#: Fewest components whose settled lists are copied as 4-bit codes.
FAST_DIM = 256
#: Components per 4-bit code (a field's width must be a multiple of it). Four would halve the bytes to
#: encode and to scan, but asks twice the candidates for the same recall (160: 0.956 on 100k MiniLM rows),
#: and gathering and re-scoring them cost what the scan saved: searches ran no faster.
SUB_DIMS = 2
#: Rows the product quantizer is trained on (faiss asks for 39 per centroid: 16 centroids per sub-quantizer).
TRAIN_ROWS = 2048
#: k-means rounds per sub-quantizer (faiss's default is 25).
TRAIN_ROUNDS = 10
#: Rows encoded at a time while a copy is made.
ENCODE_STEP = 8192
#: Rows per block of faiss's 4-bit layout.
BLOCK_ROWS = 32
#: Candidates a search takes from the 4-bit codes per hit asked for, and at least (re-scored exactly).
CANDIDATES_PER_HIT = 8
LEAST_CANDIDATES = 80  # 0.957 on 100k MiniLM rows, as the 8-bit codes' 40 (40 of 4-bit codes: 0.953)


def fast_candidates(k: int) -> int:
    """How many rows a search takes from a 4-bit copy to re-score exactly for a top-`k`."""
    return max(CANDIDATES_PER_HIT * k, LEAST_CANDIDATES)


def fast_eligible(trained: Any, dim: int) -> bool:
    """Whether the copies of `trained` lists (of `dim`-component rows) hold 4-bit codes."""
    return dim >= FAST_DIM and dim % SUB_DIMS == 0 and codes_for(trained) is not None


#: The trained empty 4-bit index of each set of trained lists and its rows' coder (by the lists' id, while they live).
_TEMPLATES: dict[int, tuple[weakref.ref[Any], Any, GridCodes]] = {}
_lock = threading.Lock()


def _template(trained: Any, sample: Callable[[], np.ndarray]) -> tuple[Any, GridCodes]:
    """The empty 4-bit index of `trained` lists (their centres, a product quantizer trained once on `sample()`)
    and the coder of rows into its codes (`_interim_grid`)."""
    with _lock:
        got = _TEMPLATES.get(id(trained))
        if got is not None and got[0]() is trained:
            return got[1], got[2]
    d, nlist = trained.d, trained.nlist
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(trained.quantizer.reconstruct_n(0, nlist))
    index = faiss.IndexIVFPQFastScan(quantizer, d, nlist, d // SUB_DIMS, 4, faiss.METRIC_INNER_PRODUCT, BLOCK_ROWS)
    index.by_residual = False  # rows, not their offsets from a centre: one set of lookup tables per query
    index.pq.cp.niter = TRAIN_ROUNDS
    rows = sample()
    index.train(rows)  # the quantizer holds its centres already: this trains the product quantizer alone
    index.referenced_objects = [quantizer]
    coder = GridCodes(index.pq, rows)
    with _lock:
        for key in [k for k, (ref, _, _) in _TEMPLATES.items() if ref() is None]:
            _TEMPLATES.pop(key, None)
        _TEMPLATES[id(trained)] = (weakref.ref(trained), index, coder)
    return index, coder


def sample_rows(dtype: DataType, metric: str, vectors: list[Any], counts: tuple[int, ...]) -> np.ndarray:
    """About `TRAIN_ROWS` rows spread evenly over the first `counts[j]` rows of each of `vectors`, prepared."""
    total = sum(counts)
    take = []
    for v, n in zip(vectors, counts):
        share = max(1, round(TRAIN_ROWS * n / max(total, 1))) if n else 0
        if share:
            take.append(prepared(dtype, metric, v[np.linspace(0, n - 1, min(share, n)).astype(np.int64)]))
    return np.ascontiguousarray(np.concatenate(take))


def encode(ivf: Any, vectors: Any, n: int, coder: GridCodes) -> np.ndarray:
    """The 4-bit codes of the first `n` rows of `ivf` (its segment's `vectors`), encoding only those it has not kept.

    Rows only ever append, so the codes kept (``ivf.fast_codes``, a view of a
    buffer that doubles as it fills) stay valid as a prefix. Called on the
    copies' one thread (`_interim_merged`) only.
    """
    have = ivf.fast_codes
    code_size = coder.code_size
    done = 0 if have is None or have.shape[1] != code_size else have.shape[0]
    if done >= n:
        return have
    buf = ivf.fast_buffer if done else None
    if buf is None or buf.shape[0] < n:
        grown = np.empty((max(n, 2 * done), code_size), dtype=np.uint8)
        if done:
            grown[:done] = have
        buf = ivf.fast_buffer = grown
    dtype, metric = ivf.dtype, ivf.metric
    for lo in range(done, n, ENCODE_STEP):
        hi = min(n, lo + ENCODE_STEP)
        buf[lo:hi] = coder.codes(prepared(dtype, metric, vectors[lo:hi]))
        ivf.fast_codes = buf[:hi]  # a view: the rows past it may still be written, never the rows in it
    return ivf.fast_codes


def encode_ahead(ivf: Any, vectors: Any) -> None:
    """Encode the rows `ivf` holds that it has not kept 4-bit codes of yet (`vectors`: its segment's stored rows).

    While a load goes on, so that the copy made once the lists settle has few
    rows left to encode. The first call for a set of trained lists trains the
    product quantizer on the rows it has.
    """
    if not fast_eligible(ivf.lists, ivf.dim):
        return
    n = min(ivf.ntotal, len(vectors))
    if n == 0:
        return
    dtype, metric = ivf.dtype, ivf.metric
    _, coder = _template(ivf.lists, lambda: sample_rows(dtype, metric, [vectors], (n,)))
    encode(ivf, vectors, n, coder)


def fast_copy(ivfs: list[Any], vectors: list[Any], counts: tuple[int, ...], bases: np.ndarray,
              row_lists: list[np.ndarray]) -> tuple[Any, int]:
    """One 4-bit index of the first `counts[j]` rows of each of `ivfs`, row ``r`` of the ``j``-th as id ``bases[j] + r``.

    `vectors` are the segments' stored rows; `row_lists` the list each row is
    in (as the interim indexes put it). Returns the index and its code size.
    """
    first = ivfs[0]
    dtype, metric = first.dtype, first.metric
    template, coder = _template(first.lists, lambda: sample_rows(dtype, metric, vectors, counts))
    index = faiss.clone_index(template)
    code_size = int(index.pq.code_size)
    total = int(bases[-1])
    codes = np.empty((total, code_size), dtype=np.uint8)
    for j, (ivf, v, n) in enumerate(zip(ivfs, vectors, counts)):
        codes[bases[j] : bases[j] + n] = encode(ivf, v, n, coder)[:n]
    lists = np.concatenate(row_lists) if row_lists else np.empty(0, dtype=np.int64)
    order = np.argsort(lists, kind="stable")  # ids in order within each list
    sizes = np.bincount(lists, minlength=index.nlist)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    # each list's rows from a whole block on, the rest of its last block zeros, all packed at once
    padded = np.concatenate([[0], np.cumsum(-(-sizes // BLOCK_ROWS) * BLOCK_ROWS)])
    in_list = lists[order]
    flat = np.zeros((int(padded[-1]), code_size), dtype=np.uint8)
    flat[padded[in_list] + np.arange(total) - starts[in_list]] = codes[order]
    inv = faiss.downcast_InvertedLists(index.invlists)
    packed = pack_blocks(flat)
    for lst in np.flatnonzero(sizes).tolist():
        ids = np.ascontiguousarray(order[starts[lst] : starts[lst + 1]], dtype=np.int64)
        inv.add_entries(lst, ids.shape[0], faiss.swig_ptr(ids), faiss.swig_ptr(packed[padded[lst] * code_size :]))
    index.ntotal = total
    return index, code_size


#: faiss's order of a block's rows within each half of a byte column (``pq4_pack_codes``).
_PERM = np.array([0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15])
_ROWS = np.concatenate([_PERM, _PERM + 16])


def pack_blocks(codes: np.ndarray) -> np.ndarray:
    """4-bit codes ``[blocks * BLOCK_ROWS, code_size]`` laid out as faiss's fast scan reads them, a block after another.

    faiss's ``pq4_pack_codes`` for all blocks at once: per block and byte column
    of its rows' codes, 16 bytes of low halves (the nibbles of rows ``_PERM[j]``
    and ``_PERM[j] + 16``), then 16 of high halves. faiss's Python face packs
    one block per call (the lists' ``CodePacker.pack_all``), 27 µs each at 384
    dims: more than the rest of a copy. Tests hold the two to the same bytes.
    """
    n, code_size = codes.shape
    blocks = n // BLOCK_ROWS
    c = codes.reshape(blocks, BLOCK_ROWS, code_size)[:, _ROWS]
    a, b = c[:, :16], c[:, 16:]  # per block: rows _PERM[j], and rows _PERM[j] + 16
    out = np.empty((blocks, code_size, BLOCK_ROWS), dtype=np.uint8)  # per block, per byte column: 32 bytes
    out[:, :, :16] = ((a & 15) | (b << 4)).transpose(0, 2, 1)
    out[:, :, 16:] = ((a >> 4) | (b & 0xF0)).transpose(0, 2, 1)
    return out.reshape(-1)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
