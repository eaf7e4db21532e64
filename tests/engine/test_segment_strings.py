"""VARCHAR and JSON-text columns reach a segment as string, large_string or string_view arrays.

`heron.data._column` allows any of them; a segment holds one string type, so chunks of
different types must not break its reads, its files or its recovery.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import heron
from heron.data._batch import Batch
from heron.data._column import Column
from heron.engine._segment import Segment
from heron.engine.storage import _ipc as ar

TYPES = [pa.string(), pa.large_string(), pa.string_view(), pa.large_string()]


def _schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("t", heron.DataType.VARCHAR, max_length=16, nullable=True)
    s.add_field("j", heron.DataType.JSON)
    return s


def _batch(start: int, kind: pa.DataType) -> Batch:
    n = 3
    t = pa.array([f"é{start + i}" if i != 1 else None for i in range(n)], kind)
    j = pa.array([f'{{"k": {start + i}}}' for i in range(n)], kind)
    return Batch(n, {
        "id": Column(heron.DataType.INT64, np.arange(start, start + n, dtype=np.int64)),
        "t": Column(heron.DataType.VARCHAR, t, np.array([True, False, True])),
        "j": Column(heron.DataType.JSON, np.array([{"k": start + i} for i in range(n)], dtype=object), None, texts=j),
    }, {"vector": np.ones((n, 2), dtype=np.float32)})


def _filled(schema: heron.CollectionSchema) -> Segment:
    seg = Segment(1, 1, schema)
    for i, kind in enumerate(TYPES):
        seg.append(_batch(10 * i, kind), np.full(3, i + 1, dtype=np.int64))
    return seg


WANT = [f"é{10 * i + k}" if k != 1 else None for i in range(len(TYPES)) for k in range(3)]


def test_a_segment_reads_string_chunks_of_any_arrow_string_type():
    seg = _filled(_schema())
    view = seg.snapshot()
    assert view.column("t").values.to_pylist() == WANT
    assert seg.json_texts("j", seg.n).to_pylist() == [f'{{"k": {10 * i + k}}}' for i in range(4) for k in range(3)]
    seg.cols["t"].compact()  # a sealed segment joins its chunks
    assert seg.snapshot().column("t").values.to_pylist() == WANT


def test_a_segment_with_mixed_string_chunks_round_trips_through_its_file_form():
    schema = _schema()
    seg = _filled(schema)
    view = seg.snapshot()
    batch = Batch(seg.n, {n: view.column(n) for n in ("id", "t", "j")}, {"vector": view.vectors("vector")})
    rb = ar.batch_to_record_batch(schema, batch, seg.seq.view(seg.n))
    assert rb.schema.field("t").type == rb.schema.field("j").type == pa.string()
    back, seqs = ar.record_batch_to_batch(schema, ar.from_ipc_bytes(ar.to_ipc_bytes(rb)))
    again = Segment(2, 1, schema)
    again.append(back, seqs)
    assert again.snapshot().column("t").values.to_pylist() == WANT
