"""Writing a merged segment's file from the two segments' files, without joining their vectors in memory.

See `write_merged`; `Maintenance._merge` (``_maintenance``) calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data._batch import Batch
from ._segment import Segment
from ._segment_map import _MappedBuffer, let_go_of_segment, mapped_segment
from .storage import _ipc as ar
from .storage._files import FileChecksum, Piece, write_segment_file
from .storage._io_errors import removed_on_error
from .storage._mapped import MappedFile
from .storage._prefault import trim_heap

if TYPE_CHECKING:
    from ._collection import Collection, Partition
    from ._engine import Engine


def write_merged(e: Engine, coll: Collection, p: Partition, bview: Any, sview: Any,
                 batch_of: Callable[..., Batch], check: Callable[[], None] | None = None,
                 ) -> tuple[Segment, str, FileChecksum]:
    """Write the rows of `bview` then `sview` to a new segment file; the new segment, served from it.

    A dense vector column both segments serve from their files is written
    from there (`Piece`, mapped), so neither the merged vectors nor the
    old ones are ever whole in memory; other columns are joined in memory
    first. The segment is not yet marked persisted (it is not recorded).
    ``check`` is called between the file's steps (`write_segment_file`).
    The rows joined in memory go with this call (`Segment.retire`): left to
    the garbage collector, a 1M-row load kept several merges' worth of them,
    about 45 MB each at 1M rows, until its next full collection.
    """
    joined = Segment(e.next_segment_id(), p.id, coll.schema)
    try:
        return _write(e, coll, p, joined, bview, sview, batch_of, check)
    finally:
        joined.retire()  # its cached view refers back to it: without this, a cycle holds its buffers
        trim_heap()  # the joined columns and their record batch leave the process before the merge grows its index


def _write(e: Engine, coll: Collection, p: Partition, joined: Segment, bview: Any, sview: Any,
           batch_of: Callable[..., Batch], check: Callable[[], None] | None) -> tuple[Segment, str, FileChecksum]:
    spliced = {f.name for f in coll.schema.fields if f.dtype.is_vector
               and isinstance(bview.segment.cols[f.name], _MappedBuffer)
               and isinstance(sview.segment.cols[f.name], _MappedBuffer)}
    joined.start_from(bview, bview.n + sview.n, skip=spliced)
    fresh = batch_of(coll, sview)
    for name in spliced:
        del fresh.vectors[name]
    joined.append(fresh, np.asarray(sview.seqs[: sview.n]))
    joined.freeze()
    for seg in (bview.segment, sview.segment):  # their columns' pages, read for the copy, leave the process now
        let_go_of_segment(seg)
    n = joined.n
    stand_ins: dict[str, np.ndarray] = {}
    splices: dict[tuple[int, int], list[Piece]] = {}
    for name in spliced:
        parts = [v.segment.cols[name].data[: v.n] for v in (bview, sview)]  # checked against their files
        stand_ins[name] = np.empty((n,) + parts[0].shape[1:], parts[0].dtype)  # never touched
    rb = ar.batch_to_record_batch(coll.schema, batch_of(coll, joined.snapshot(), stand_ins),
                                  joined.seq.data[:n])
    for name, stand_in in list(stand_ins.items()):
        parts = [v.segment.cols[name].data[: v.n] for v in (bview, sview)]
        buf = rb.column(name).values.buffers()[1]
        if buf.address == stand_in.ctypes.data and buf.size == stand_in.nbytes:
            splices[(buf.address, buf.size)] = [Piece(np.ascontiguousarray(a), mapped=True) for a in parts]
        else:  # the record batch took a copy of its own: join the column in memory after all
            stand_ins[name] = np.concatenate(parts)
            rb = ar.batch_to_record_batch(coll.schema, batch_of(coll, joined.snapshot(), stand_ins),
                                          joined.seq.data[:n])
    path = e.dir.segment_path(coll.id, joined.id)
    with removed_on_error(path + ".tmp", path):
        checksum = write_segment_file(path, rb, splices, check)
        del rb, stand_ins, splices
        new = mapped_segment(joined.id, p.id, coll.schema, MappedFile(path, checksum, n))
    for seg in (bview.segment, sview.segment, new):  # read through: searches map again what they read
        let_go_of_segment(seg)
    new.persisted = False
    return new, path, checksum
