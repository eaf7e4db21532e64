"""Index files read in place: the arrays and the faiss index of a dense index point into the mapped file.

An index file (see `_base`) is a zip archive of stored ``.npy`` members, so
each member's bytes lie unchanged at a known offset of the file. After the
whole file has been checked against its CRCs (`check_index_file`, which
reads it with ``read``, not through the mapping), `map_index_file` maps it
read-only and hands back numpy views of its arrays and, for the ``faiss``
member, an index read with ``faiss.IO_FLAG_MMAP_IFC`` from a
``ZeroCopyIOReader``: the vectors of flat, IVF and HNSW storage and the
HNSW graph stay in the file, read through the page cache as searches touch
them, instead of being copied into the heap.

faiss cannot grow an index whose arrays it does not own (it aborts the
process), so `owned_copy` reads a separate, owned copy first
(`DenseIndex.extended` does so before adding rows).
"""

from __future__ import annotations

import json
import mmap
import struct
import threading
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ..storage._prefault import drop_mapped
from ._base import _DAMAGE, FORMAT_VERSION, IndexFileError, check_index_file
from ._faiss import faiss

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length


class MappedBlob:
    """The bytes of a faiss index inside a mapped file; kept alive by the index that points into them."""

    __slots__ = ("view",)

    def __init__(self, view: np.ndarray) -> None:
        self.view = view

    def read(self, *, mapped: bool = True) -> Any:
        """The index: pointing into the file (``mapped``) or an owned copy."""
        if mapped:
            reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(self.view), self.view.size)
            index = _trailed(self.view, lambda: faiss.read_index(reader, faiss.IO_FLAG_MMAP_IFC))
            used = int(reader.rp_)
            del reader
        else:
            mv = memoryview(self.view)  # type: ignore[arg-type]
            pos = 0

            def read(n: int) -> bytes:
                nonlocal pos
                out = mv[pos : pos + n].tobytes()
                pos += len(out)
                return out

            reader = faiss.PyCallbackIOReader(read)
            try:
                index = faiss.read_index(reader)
            finally:
                del reader
            used = pos
        # Reading touched the file's pages (faiss walks the graph's arrays even when it maps
        # them; a copy reads all of it): they stay in the page cache, not in the process's memory.
        drop_mapped(self.view.ctypes.data, self.view.size)
        if used != self.view.size:
            raise ValueError("trailing bytes after the faiss index")
        return index


#: A mapped index at least this large is read with its pages let go of as faiss reads them (`_trailed`).
TRAIL_BYTES = 32 << 20
#: How often, in seconds, `_trailed` lets go of the pages read since.
TRAIL_EVERY = 0.002


def _trailed(view: np.ndarray, read: Callable[[], Any]) -> Any:
    """``read()`` (faiss reading an index from the mapped `view`, without the GIL) while another thread drops its pages.

    faiss reads a mapped HNSW index's links through once (at 1M x 128, 139 MB
    of the file's pages mapped into the process before `MappedBlob.read` can
    drop them); a merge reads its stand-in so beside the index it grows, at
    the build's peak. Dropped every `TRAIL_EVERY` seconds, the pages the read
    touched leave the process behind it (they stay in the page cache).
    """
    if view.size < TRAIL_BYTES:
        return read()
    done = threading.Event()
    address, size = view.ctypes.data, view.size

    def trail() -> None:
        while not done.wait(TRAIL_EVERY):
            drop_mapped(address, size)

    helper = threading.Thread(target=trail, name="heron-read-trail", daemon=True)
    helper.start()
    try:
        return read()
    finally:
        done.set()
        helper.join()


def owned_copy(blob: MappedBlob) -> Any:
    """An index read from ``blob`` into memory faiss owns (one it may grow)."""
    return blob.read(mapped=False)


def _member_arrays(path: str, mm: mmap.mmap) -> dict[str, Any]:
    whole = np.frombuffer(mm, dtype=np.uint8)
    out: dict[str, Any] = {}
    fmt = np.lib.format
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            sig, name_len, extra_len = _LOCAL_HEADER.unpack_from(mm, info.header_offset)
            if sig != b"PK\x03\x04":
                raise ValueError(f"member {info.filename!r} has no local header")
            start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
            fh.seek(start)
            major, _minor = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            data = fh.tell()
            count = int(np.prod(shape, dtype=np.int64))
            end = data + count * dtype.itemsize
            if fortran or dtype.hasobject or end != start + info.file_size:
                raise ValueError(f"member {info.filename!r} is not a plain array of its stated size")
            name = info.filename.removesuffix(".npy")
            raw = whole[data:end]
            raw.flags.writeable = False
            if name == "faiss":
                out[name] = MappedBlob(raw)
            else:
                out[name] = raw.view(dtype).reshape(shape)
    return out


def map_index_file(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and arrays of an index file, checked whole, then seen in place; `IndexFileError` if bad.

    The ``faiss`` member comes back as a `MappedBlob`, the others as read-only numpy views.
    """
    check_index_file(path)
    try:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        arrays = _member_arrays(path, mm)
        header = json.loads(arrays.pop("header").tobytes().decode())
    except FileNotFoundError:
        raise IndexFileError(f"index file {path!r} does not exist") from None
    except _DAMAGE as exc:
        raise IndexFileError(f"index file {path!r} is damaged: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise IndexFileError(f"index file {path!r} has an unknown format: {str(header)[:80]}")
    return header, arrays
