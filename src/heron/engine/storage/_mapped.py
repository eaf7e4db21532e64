"""Sealed segment files read through the page cache: mapped, never copied, checked before use.

`MappedFile` maps a segment file read-only and parses its Arrow layout in
place: the columns are views of the mapping, so opening a segment reads the
file's footer and metadata only, and a column's pages are read (into the
page cache, not the heap) when a query first touches them.

Every byte is still checked against the file's `FileChecksum` before it
answers anything. A file of up to `CHECK_WHOLE_BYTES` is checked whole when
it is opened, as before (a few milliseconds). A larger one is checked in
parts: the metadata at open, each column's blocks the first time the column
is used (`check_array`), and the rest by a background pass (`check_all`).
Checking reads the file with ``pread`` into a small buffer, so it fills the
page cache without mapping the pages into the process. Once any block fails,
the file answers nothing more: every later check raises the same
`CorruptionError` (naming the file and the first damaged byte), and
``on_damage`` is told once.
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from ..._errors import CorruptionError
from ._files import FileChecksum, describe_mismatch

log = logging.getLogger("heron.engine")

#: Segment files up to this size are checked whole when opened; larger ones block by block as used.
CHECK_WHOLE_BYTES = 64 << 20


class MappedFile:
    """One segment file, mapped read-only; see the module docstring."""

    def __init__(self, path: str, checksum: FileChecksum | None, num_rows: int | None = None,
                 *, check_whole_bytes: int | None = None) -> None:
        self.path = path
        self.checksum = checksum
        self.on_damage: Callable[[CorruptionError], None] | None = None
        self._lock = threading.Lock()
        self._failed: CorruptionError | None = None
        try:
            src = pa.memory_map(path, "r")
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise CorruptionError(f"segment file {path!r} is missing", path=path, offset=0) from None
        except (OSError, pa.ArrowException) as exc:
            raise CorruptionError(f"segment file {path!r} cannot be read: {exc}", path=path, offset=0) from exc
        try:
            buf = src.read_buffer()
            src.close()  # the buffer keeps the mapping for as long as any view of it lives
            self.size = buf.size
            self._base = buf.address
            whole = check_whole_bytes if check_whole_bytes is not None else CHECK_WHOLE_BYTES
            blocks = 0 if checksum is None else len(checksum.crcs)
            self._checked = np.zeros(blocks, dtype=bool)
            if checksum is not None:
                if self.size != checksum.size:
                    bad = checksum.first_mismatch(buf)  # reads the file once: it is damaged anyway
                    assert bad is not None
                    what, offset = describe_mismatch(checksum, self.size, bad)
                    raise CorruptionError(f"segment file {path!r} {what}", path=path, offset=offset)
                if self.size <= whole:
                    self.check_range(0, self.size)
            self.table = self._parse(buf, num_rows)
            if self.checked:
                self.close()
        except BaseException:
            os.close(self._fd)
            raise

    def _parse(self, buf: pa.Buffer, num_rows: int | None) -> pa.Table:
        path = self.path
        try:
            table = pa.ipc.open_file(buf).read_all()
            if self.checksum is None:
                table.validate(full=True)
        except (pa.ArrowException, OSError, ValueError) as exc:
            self.check_range(0, self.size)  # names the damaged block where the checksum can
            raise CorruptionError(f"segment file {path!r} is damaged: {exc}", path=path) from exc
        if self.checksum is not None:
            lo, hi = self.size, 0  # the column data; what lies around it is metadata, checked now
            for col in table.columns:
                for chunk in col.chunks:
                    for b in chunk.buffers():
                        if b is not None and b.size:
                            start = b.address - self._base
                            lo, hi = min(lo, start), max(hi, start + b.size)
            if lo >= hi:
                lo = hi = 0
            self.check_range(0, lo)
            self.check_range(hi, self.size)
        if num_rows is not None and table.num_rows != num_rows:
            raise CorruptionError(
                f"segment file {path!r} is damaged: it holds {table.num_rows} rows, the catalog records {num_rows}",
                path=path,
            )
        return table

    @property
    def checked(self) -> bool:
        """Every block has been checked and found intact (or the file has no checksum)."""
        return self._failed is None and bool(self._checked.all())

    @property
    def damage(self) -> CorruptionError | None:
        """The damage found so far, if any."""
        return self._failed

    def check_array(self, arr: pa.Array | pa.ChunkedArray) -> None:
        """Check the blocks holding ``arr``'s buffers (a column of `table`); `CorruptionError` if damaged."""
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        for chunk in chunks:
            for b in chunk.buffers():
                if b is not None and b.size:
                    start = b.address - self._base
                    self.check_range(start, start + b.size)

    def check_range(self, lo: int, hi: int) -> None:
        """Check the blocks overlapping bytes ``lo..hi-1`` of the file, each once."""
        if self._failed is not None:
            raise self._error()
        ck = self.checksum
        if ck is None or hi <= lo:
            return
        first, last = lo // ck.block, min((hi - 1) // ck.block, len(ck.crcs) - 1)
        todo = np.flatnonzero(~self._checked[first : last + 1]) + first
        for i in todo:
            self._check_block(int(i))
        if len(todo) and self._checked.all():
            self.close()  # every byte is known good: the descriptor is no longer needed

    def check_all(self, stop: Callable[[], bool] | None = None) -> None:
        """Check every block not checked yet (the background pass), until ``stop()`` says to stop.

        Damage is logged and reported through ``on_damage``; nothing is raised.
        """
        ck = self.checksum
        if ck is None:
            return
        try:
            for i in range(len(ck.crcs)):
                if stop is not None and stop():
                    return
                self.check_range(i * ck.block, (i + 1) * ck.block)
        except CorruptionError as exc:
            log.error("%s", exc.message)

    def _check_block(self, i: int) -> None:
        ck = self.checksum
        assert ck is not None
        lo = i * ck.block
        want = min(ck.block, self.size - lo)
        with self._lock:  # `close` may run on another thread once the last block is checked
            if self._checked[i]:
                return
            data = os.pread(self._fd, want, lo)  # through the page cache, not the mapping: no resident pages
        if len(data) != want:
            self._fail(CorruptionError(f"segment file {self.path!r} is truncated: {lo + len(data)} of "
                                       f"{self.size} bytes", path=self.path, offset=lo + len(data)))
        if zlib.crc32(data) != ck.crcs[i]:
            self._fail(CorruptionError(f"segment file {self.path!r} is damaged: checksum mismatch in bytes "
                                       f"{lo}..{lo + want - 1}", path=self.path, offset=lo))
        self._checked[i] = True

    def _fail(self, exc: CorruptionError) -> None:
        first = self._failed is None
        if first:
            self._failed = exc
        if first and self.on_damage is not None:
            self.on_damage(exc)
        raise self._error()

    def _error(self) -> CorruptionError:
        d = self._failed
        assert d is not None
        return CorruptionError(d.message, path=d.path, offset=d.offset)

    def close(self) -> None:
        """Let go of the descriptor used for checking (the mapping lives while its views do)."""
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def column_view(arr: pa.Array | pa.ChunkedArray, dtype: Any, width: int | None = None) -> np.ndarray | None:
    """A read-only numpy view of a fixed-width column with no nulls (vectors ``[n, width]``), or None.

    None when the column cannot be seen without a copy: nulls, several
    chunks, bit-packed booleans, or a type other than ``dtype``.
    """
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks != 1:
            return None
        arr = arr.chunk(0)
    if arr.null_count:
        return None
    n = len(arr)
    dtype = np.dtype(dtype)
    if width is not None:
        if not pa.types.is_fixed_size_list(arr.type) or arr.type.list_size != width:
            return None
        values = arr.values
        if values.null_count:
            return None
        flat = column_view(values, dtype)
        if flat is None:
            return None
        start = arr.offset * width
        return flat[start : start + n * width].reshape(n, width)
    if dtype == np.bool_ or not pa.types.is_primitive(arr.type) or arr.type.to_pandas_dtype() != dtype:
        return None
    buf = arr.buffers()[1]
    if buf is None:
        return np.empty(0, dtype=dtype) if n == 0 else None
    out = np.frombuffer(buf, dtype=dtype, count=n, offset=arr.offset * dtype.itemsize)
    out.flags.writeable = False
    return out
