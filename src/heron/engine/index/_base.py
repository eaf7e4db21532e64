"""The `VectorIndex` contract shared by every index family, its filter planner and its file format.

A `VectorIndex` answers top-k and range queries over one segment's vectors
(rows ``0..ntotal-1``). It is immutable once built, so any number of threads
may search it at once.

Files: one ``.npz`` archive (zip, uncompressed) holding a JSON header and the
arrays of the index. Every member carries the CRC32 of its bytes, and
`check_index_file` reads the whole file against them (and checks the
archive's sizes against the file's) before any byte reaches numpy or faiss:
a damaged size field inside a faiss index would otherwise make faiss
allocate and read gigabytes before the CRC at the member's end was seen.
`read_index_file` raises `IndexFileError` for a missing, truncated or
otherwise damaged file, and the engine then rebuilds the index from its
segment.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from ..._errors import HeronError, ParamError
from ..._types import DataType
from ...data import _sparse as sp
from ..storage._files import PacedFile
from ._exact import _check_k, check_range, empty_result
from ._faiss import faiss, threads_for
from ._params import shared_search_params
from ._subset_cache import mask_facts

FORMAT_VERSION = 1

_MEMBER = "arr_"


class IndexFileError(HeronError):
    """An index file is missing or damaged; the index must be rebuilt from its segment.

    ``offset`` is where in the file the damage was found, where known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class BuildCancelled(HeronError):
    """An index build, or a merge, was stopped because its caller no longer wants it."""


class IndexChanged(HeronError):
    """The index is growing, or has grown, past the rows the caller's view holds: scan exactly instead."""


class _Gate:
    """Counts the searches running on an index so that it can be grown in place between them.

    Searches take the plain ``lock``; only a grow waits, on ``cv`` (the same lock).
    """

    __slots__ = ("lock", "cv", "busy", "closed")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.busy = 0
        self.closed = False


def count_rows(queries: Any) -> int:
    if type(queries) is np.ndarray:
        return 1 if queries.ndim == 1 else int(queries.shape[0])
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
    #: True when `_search` wraps its own faiss calls in `threads_for` (and skips it where it calls none).
    sets_threads: ClassVar[bool] = False

    def __init__(
        self, dtype: DataType, dim: int, index_type: str, metric: str, params: dict[str, Any], ntotal: int
    ) -> None:
        self.dtype = DataType(dtype)
        self.dim = int(dim)
        self.index_type = index_type
        self.metric = metric
        self.params = dict(params)
        self.ntotal = int(ntotal)
        self._gate = _Gate()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.index_type} {self.metric} ntotal={self.ntotal}>"

    # -- search --------------------------------------------------------------

    def search(
        self,
        queries: Any,
        k: int,
        *,
        allow: np.ndarray | None = None,
        params: dict[str, Any] | None = None,
        rows: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` rows for each query, best first, never a row `allow` rejects.

        Returns ``(scores float32 [nq, k], rows int64 [nq, k])``; unfilled
        slots hold row -1 and the worst score for the metric. Raises
        `ParamError` for bad `k`, `allow` or search parameters, and
        `IndexChanged` if `rows` (the rows the caller expects the index to
        hold) is given and the index is growing or holds another number.
        """
        k = _check_k(k)
        sparams = shared_search_params(self.index_type, params)
        nq = count_rows(queries)
        allow, kept = self._check_allow(allow)
        if kept == 0:
            return empty_result(nq, k, self.metric)
        self._enter(rows)
        try:
            if self.sets_threads:
                return self._search(queries, k, allow, kept, sparams)
            with threads_for(nq):
                return self._search(queries, k, allow, kept, sparams)
        finally:
            self._leave()

    def search_one(self, query: np.ndarray, k: int, params: dict[str, Any], rows: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` of one unfiltered query: ``query`` float32 C-contiguous ``[1, dim]``, ``1 <= k``, and
        ``params`` as `shared_search_params` returns them. Indexes with a shorter way for it override this."""
        return self.search(query, k, params=params, rows=rows)

    def search_one_allowed(self, query: np.ndarray, k: int, allow: np.ndarray | None, params: dict[str, Any] | None,
                           rows: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` of one query limited to `allow` (read-only, as a sealed segment remembers a filter's
        result): ``query`` float32 C-contiguous ``[1, dim]``, ``1 <= k``. Indexes with a shorter way override this."""
        return self.search(query, k, allow=allow, params=params, rows=rows)

    def _enter(self, rows: int | None) -> None:
        g = self._gate
        with g.lock:
            if g.closed or self.ntotal < 0 or (rows is not None and rows != self.ntotal):
                raise IndexChanged(f"{self!r} is growing or holds other than {rows} rows")
            g.busy += 1

    def _leave(self) -> None:
        g = self._gate
        with g.lock:
            g.busy -= 1
            if g.busy == 0 and g.closed:  # only `_growing` waits, and it closes the gate first
                g.cv.notify_all()

    @contextlib.contextmanager
    def _growing(self) -> Iterator[None]:
        """Hold off new searches (they get `IndexChanged`) and wait for running ones to end."""
        g = self._gate
        with g.cv:
            g.closed = True
            g.cv.wait_for(lambda: g.busy == 0)
        try:
            yield
        finally:
            with g.cv:
                g.closed = False

    def range_search(
        self,
        queries: Any,
        *,
        radius: float,
        range_filter: float | None = None,
        allow: np.ndarray | None = None,
        params: dict[str, Any] | None = None,
        rows: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, ``(scores, rows)`` of the allowed rows within range, best first.

        Milvus semantics: for L2, HAMMING and JACCARD ``range_filter <= d <
        radius``; for IP and COSINE ``radius < s <= range_filter``. An
        approximate index may miss rows an exact scan would find.
        """
        radius_f, filt = check_range(self.metric, radius, range_filter)
        sparams = shared_search_params(self.index_type, params)
        nq = count_rows(queries)
        allow, kept = self._check_allow(allow)
        if kept == 0:
            return [(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in range(nq)]
        self._enter(rows)
        try:
            with threads_for(nq):
                return self._range(queries, radius_f, filt, allow, kept, sparams)
        finally:
            self._leave()

    def _check_allow(self, allow: np.ndarray | None) -> tuple[np.ndarray | None, int]:
        if allow is None:
            return None, self.ntotal
        allow = np.asarray(allow)
        if allow.dtype != np.bool_ or allow.shape != (self.ntotal,):
            raise ParamError(
                f"allow must be a boolean array of length {self.ntotal}, got {allow.dtype} array of shape {allow.shape}"
            )
        kept = mask_facts(allow).count
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

    def extended(self, vectors: Any, cancelled: Callable[[], bool] | None = None,
                 busy: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> VectorIndex | None:
        """An index over this one's rows followed by `vectors`, or None where only a rebuild will do.

        Used when sealed segments are merged: adding the smaller segment's rows
        costs far less than building the merged segment's index from nothing.
        A small index comes back as a new object and this one is untouched. A
        faiss index grows in place rather than be copied (the copy would be
        the largest transient of a merge): new searches get `IndexChanged`
        meanwhile, running ones are waited for, and from then on the index
        holds more rows, so the caller must stop handing it to readers of the
        old segment first. `cancelled` and `busy` are asked between steps, as
        in `build_index`: a cancelled growth raises `BuildCancelled` and leaves
        the index unusable (a faiss index half grown in place). `progress(done,
        total)` is told as the index takes `vectors`' rows (their first `done`
        need not be read again).
        """
        return None

    # -- files ---------------------------------------------------------------

    def _arrays(self) -> dict[str, Any]:
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
        arrays: dict[str, Any] = dict(self._arrays())
        arrays["header"] = np.frombuffer(json.dumps(self._header()).encode(), dtype=np.uint8)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            with PacedFile(tmp) as f:
                # The layout of np.savez (stored .npy members), written member by member
                # so that a `FaissBlob` streams to the file without a copy in memory.
                with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                    for name, arr in arrays.items():
                        with zf.open(name + ".npy", "w", force_zip64=True) as out:
                            if isinstance(arr, FaissBlob):
                                arr.write_npy(out)
                            else:
                                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)
                f.sync()
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


class FaissBlob:
    """A faiss index as a uint8 array member of an index file, written and read as a stream.

    ``faiss.serialize_index`` holds the whole serialisation in memory, twice
    (faiss's buffer and the numpy copy): for a 100k x 128 HNSW that is about
    130 MB on top of the index, the largest transient of building one.
    """

    def __init__(self, index: Any, *, binary: bool = False) -> None:
        self.index = index
        self.binary = binary
        size = 0

        def count(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)

        self._write(count)
        self.nbytes = size

    def _write(self, sink: Any) -> None:
        writer = faiss.PyCallbackIOWriter(sink)
        try:
            (faiss.write_index_binary if self.binary else faiss.write_index)(self.index, writer)
        finally:
            del writer

    def write_npy(self, out: Any) -> None:
        header = {"descr": "|u1", "fortran_order": False, "shape": (self.nbytes,)}
        np.lib.format.write_array_header_2_0(out, header)
        self._write(out.write)

    @staticmethod
    def read(member: Any, *, binary: bool = False) -> Any:
        """The index in an open .npy archive member (checked against the member's CRC)."""
        fmt = np.lib.format
        major, _minor = fmt.read_magic(member)
        read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, _, dtype = read_header(member)
        if dtype != np.uint8 or len(shape) != 1:
            raise ValueError(f"expected a uint8 vector, got {dtype} {shape}")
        reader = faiss.PyCallbackIOReader(member.read)
        try:
            index = (faiss.read_index_binary if binary else faiss.read_index)(reader)
        finally:
            del reader
        if member.read(1 << 16):  # also makes zipfile check the CRC at the end of the member
            raise ValueError("trailing bytes after the faiss index")
        return index


#: Members of an index file are read back in steps of this many bytes when checked.
_CHECK_STEP = 1 << 20
_DAMAGE = (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile, EOFError,
           UnicodeDecodeError, struct.error)


def check_index_file(path: str) -> None:
    """Check every byte of the index file at `path` against its CRCs, parsing nothing; `IndexFileError` if bad.

    Memory stays bounded by `_CHECK_STEP` whatever the file's size fields say.
    """
    where = 0
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise IndexFileError(
                    f"index file {path!r} is damaged: it does not start with an archive header", offset=0
                )
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if "header.npy" not in {i.filename for i in infos}:
                raise IndexFileError(f"index file {path!r} is damaged: it has no header member", offset=None)
            for info in infos:
                where = info.header_offset
                if (info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size
                        or info.header_offset + info.file_size > size):
                    raise IndexFileError(
                        f"index file {path!r} is damaged: member {info.filename!r} claims {info.file_size} bytes "
                        f"at byte {info.header_offset} of a {size}-byte file", offset=where,
                    )
            for info in infos:
                where = info.header_offset
                with zf.open(info) as fh:  # zipfile compares the CRC once the member is read to its end
                    while fh.read(_CHECK_STEP):
                        pass
    except IndexFileError:
        raise
    except FileNotFoundError:
        raise IndexFileError(f"index file {path!r} does not exist") from None
    except _DAMAGE as exc:
        raise IndexFileError(f"index file {path!r} is damaged near byte {where}: {exc}", offset=where) from exc


def read_index_file(
    path: str, streamed: tuple[str, ...] = ("faiss",)
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and arrays of an index file; `IndexFileError` if missing or damaged.

    The file is checked whole (`check_index_file`) before anything in it is
    parsed. Members named in `streamed` come back as faiss indexes read
    straight from the file (see `FaissBlob`), the others as numpy arrays.
    """
    check_index_file(path)
    try:
        arrays: dict[str, Any] = {}
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                name = member.removesuffix(".npy")
                with zf.open(member) as fh:
                    if name in streamed:
                        arrays[name] = FaissBlob.read(fh)
                    else:
                        arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
        header = json.loads(arrays.pop("header").tobytes().decode())
    except FileNotFoundError:
        raise IndexFileError(f"index file {path!r} does not exist") from None
    except _DAMAGE as exc:
        raise IndexFileError(f"index file {path!r} is damaged: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise IndexFileError(f"index file {path!r} has an unknown format: {str(header)[:80]}")
    return header, arrays
