"""The `VectorIndex` contract shared by every index family, its filter planner and its file format.

A `VectorIndex` answers top-k and range queries over one segment's vectors
(rows ``0..ntotal-1``). It is immutable once built, so any number of threads
may search it at once.

Files: one ``.npz`` archive (zip, uncompressed) holding a JSON header and the
arrays of the index. The zip CRCs let a damaged file be told from a good one;
`read_index_file` raises `IndexFileError` for a missing, truncated or
otherwise damaged file, and the engine then rebuilds the index from its
segment.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from typing import Any, ClassVar

import faiss as _faiss
import numpy as np
import scipy.sparse as sp

from .._errors import HeronError, ParamError
from .._types import DataType
from ._vindex_exact import _check_k, check_range, empty_result
from ._vindex_params import normalize_search_params

faiss: Any = _faiss  # the stubs shipped with faiss lack most of its API

FORMAT_VERSION = 1

#: Below this many queries a search runs on the calling thread alone.
#: faiss parallelises flat and IVF scans over OpenMP threads even for one
#: query; for a single 128-d query over 100k rows that costs more than it
#: saves (3.8 ms with 2 threads vs 2.4 ms with 1, measured on 2 cores).
#: OpenMP keeps the thread count per calling thread (libgomp's nthreads-var
#: is a per-thread setting), so lowering it here does not affect searches
#: running on other threads.
SINGLE_THREAD_BELOW_NQ = 4

_MEMBER = "arr_"


class IndexFileError(HeronError):
    """An index file is missing or damaged; the index must be rebuilt from its segment."""


_omp = threading.local()


def detach_interrupt_check() -> None:
    """Stop faiss from taking the GIL inside its searches to look for Ctrl-C.

    faiss's Python module installs a callback that every index search calls
    (at least once per call) and that takes the GIL to check for signals. With
    many concurrent searches each one then queues for the GIL in the middle of
    a call that had released it: measured on 2 cores, 32 concurrent searches
    through the server spent about a sixth of their time there. Heron's
    searches take well under a second and index builds run on a background
    thread, so nothing is lost. The setting is process-wide: a user's own
    faiss calls in the same process no longer stop on Ctrl-C either.
    """
    faiss.InterruptCallback.clear_instance()


@contextlib.contextmanager
def threads_for(nq: int) -> Iterator[None]:
    """Run faiss on this thread alone while a small batch of queries is answered.

    Every faiss call releases the GIL, and under many concurrent searches
    getting it back costs far more than the call, so Heron's own worker
    threads (named ``heron-...``) keep the setting between searches and only
    change it when the batch size asks for the other one. Any other thread
    gets its own setting back on exit.
    """
    small = nq < SINGLE_THREAD_BELOW_NQ
    if threading.current_thread().name.startswith("heron-"):
        state = getattr(_omp, "state", None)
        if state is None:
            state = _omp.state = [faiss.omp_get_max_threads(), False]
        if state[1] != small:
            faiss.omp_set_num_threads(1 if small else state[0])
            state[1] = small
        yield
        return
    if not small:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def count_rows(queries: Any) -> int:
    if sp.issparse(queries):
        return int(queries.shape[0])
    a = np.asarray(queries)
    return 1 if a.ndim == 1 else int(a.shape[0])


class VectorIndex:
    """A built index over one segment's vectors; see the module docstring.

    Subclasses implement `_search`, `_range` and `_arrays`; this class
    validates arguments, applies the filter planner and handles files.
    """

    family: ClassVar[str] = ""

    def __init__(
        self, dtype: DataType, dim: int, index_type: str, metric: str, params: dict[str, Any], ntotal: int
    ) -> None:
        self.dtype = DataType(dtype)
        self.dim = int(dim)
        self.index_type = index_type
        self.metric = metric
        self.params = dict(params)
        self.ntotal = int(ntotal)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.index_type} {self.metric} ntotal={self.ntotal}>"

    # -- search --------------------------------------------------------------

    def search(
        self, queries: Any, k: int, *, allow: np.ndarray | None = None, params: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` rows for each query, best first, never a row `allow` rejects.

        Returns ``(scores float32 [nq, k], rows int64 [nq, k])``; unfilled
        slots hold row -1 and the worst score for the metric. Raises
        `ParamError` for bad `k`, `allow` or search parameters.
        """
        k = _check_k(k)
        sparams = normalize_search_params(self.index_type, params)
        nq = count_rows(queries)
        allow, kept = self._check_allow(allow)
        if kept == 0:
            return empty_result(nq, k, self.metric)
        with threads_for(nq):
            return self._search(queries, k, allow, kept, sparams)

    def range_search(
        self,
        queries: Any,
        *,
        radius: float,
        range_filter: float | None = None,
        allow: np.ndarray | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, ``(scores, rows)`` of the allowed rows within range, best first.

        Milvus semantics: for L2, HAMMING and JACCARD ``range_filter <= d <
        radius``; for IP and COSINE ``radius < s <= range_filter``. An
        approximate index may miss rows an exact scan would find.
        """
        radius_f, filt = check_range(self.metric, radius, range_filter)
        sparams = normalize_search_params(self.index_type, params)
        nq = count_rows(queries)
        allow, kept = self._check_allow(allow)
        if kept == 0:
            return [(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in range(nq)]
        with threads_for(nq):
            return self._range(queries, radius_f, filt, allow, kept, sparams)

    def _check_allow(self, allow: np.ndarray | None) -> tuple[np.ndarray | None, int]:
        if allow is None:
            return None, self.ntotal
        allow = np.asarray(allow)
        if allow.dtype != np.bool_ or allow.shape != (self.ntotal,):
            raise ParamError(
                f"allow must be a boolean array of length {self.ntotal}, got {allow.dtype} array of shape {allow.shape}"
            )
        kept = int(np.count_nonzero(allow))
        return (None if kept == self.ntotal else allow), kept

    def _search(
        self, queries: Any, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _range(
        self,
        queries: Any,
        radius: float,
        range_filter: float | None,
        allow: np.ndarray | None,
        kept: int,
        params: dict[str, Any],
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    # -- growth --------------------------------------------------------------

    def extended(self, vectors: Any) -> VectorIndex | None:
        """A new index over this one's rows followed by `vectors`, or None where only a rebuild will do.

        This index is left untouched (readers may be searching it). Used when
        sealed segments are merged: adding the smaller segment's rows costs far
        less than building the merged segment's index from nothing.
        """
        return None

    # -- files ---------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "family": self.family,
            "dtype": int(self.dtype),
            "dim": self.dim,
            "index_type": self.index_type,
            "metric": self.metric,
            "params": self.params,
            "ntotal": self.ntotal,
        }

    def save(self, path: str) -> None:
        """Write the index to `path` atomically (temporary file, fsync, rename).

        On failure the previous file at `path`, if any, is left as it was and
        the `OSError` propagates.
        """
        arrays = dict(self._arrays())
        arrays["header"] = np.frombuffer(json.dumps(self._header()).encode(), dtype=np.uint8)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _fsync_dir(d: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_index_file(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of an index file; `IndexFileError` if missing or damaged."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise IndexFileError(
                    f"index file {path!r} is damaged: it does not start with an archive header"
                )
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except FileNotFoundError:
        raise IndexFileError(f"index file {path!r} does not exist") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"index file {path!r} is damaged: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise IndexFileError(f"index file {path!r} has an unknown format: {str(header)[:80]}")
    return header, arrays
