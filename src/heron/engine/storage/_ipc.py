"""Batches to Arrow record batches and back: the on-disk form of rows.

The write-ahead log stores each batch as an Arrow IPC stream and sealed
segments are Arrow IPC files, both with the layout below, so recovery and
segment loading share one decoder. Column ``__seq`` holds each row's
sequence number.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pyarrow as pa

from ..._schema import META_FIELD, CollectionSchema, FieldSchema, StructFieldSchema
from ..._types import NUMPY_DTYPES, DataType
from ...data import _sparse as sp
from ...data._batch import Batch
from ...data._column import Column
from ...data._fill import filled_column
from ...data._json import dumps_json
from ...data._pa import from_numpy, lists, small_strings, strings, to_numpy, valid_mask
from ...data._structs import arrow_type as struct_arrow_type

SEQ = "__seq"

_VECTOR_VALUE_TYPES = {
    DataType.FLOAT_VECTOR: pa.float32(),
    DataType.FLOAT16_VECTOR: pa.float16(),
    DataType.BFLOAT16_VECTOR: pa.uint16(),
    DataType.INT8_VECTOR: pa.int8(),
    DataType.BINARY_VECTOR: pa.uint8(),
}
_ARROW_ELEMENT = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
}


def _mask(valid: np.ndarray | None) -> np.ndarray | None:
    return None if valid is None else ~valid


def _json_texts(values: np.ndarray, valid: np.ndarray | None, texts: Any = None) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        return small_strings(texts.combine_chunks())
    if isinstance(texts, pa.Array):
        return small_strings(texts)
    if valid is None and not any(v is not None for v in values):
        return pa.nulls(len(values), type=pa.string())
    if texts is None:
        texts = [None if (valid is not None and not valid[i]) else dumps_json(v) for i, v in enumerate(values)]
    return strings(texts)


def column_to_arrow(f_dtype: DataType, c: Column, f: FieldSchema | None = None) -> pa.Array:
    if isinstance(f, StructFieldSchema):
        return pa.array(list(c.values), type=struct_arrow_type(f))
    if f_dtype in NUMPY_DTYPES:
        return from_numpy(c.values, valid=c.valid)
    if f_dtype is DataType.VARCHAR:
        v = c.values
        return small_strings(v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v)  # the files' one type
    if f_dtype is DataType.JSON:
        return _json_texts(c.values, c.valid, c.texts)
    if f_dtype is DataType.GEOMETRY:
        return pa.array(list(c.values), type=pa.binary())
    if f_dtype is DataType.ARRAY:
        assert c.element_type is not None
        return lists(c.values, _ARROW_ELEMENT[c.element_type])
    raise TypeError(f"no Arrow form for {f_dtype}")


def vectors_to_arrow(f: FieldSchema, v: Any) -> pa.Array:
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        m = sp.csr_matrix(v)
        offsets = from_numpy(m.indptr, pa.int32())
        idx = pa.ListArray.from_arrays(offsets, from_numpy(m.indices, pa.uint32()))
        val = pa.ListArray.from_arrays(offsets, from_numpy(m.data, pa.float32()))
        return pa.StructArray.from_arrays([idx, val], names=["indices", "values"])
    flat = from_numpy(v, _VECTOR_VALUE_TYPES[f.dtype])
    width = v.shape[1]
    return pa.FixedSizeListArray.from_arrays(flat, width)


def batch_to_record_batch(schema: CollectionSchema, batch: Batch, seqs: np.ndarray) -> pa.RecordBatch:
    arrays = [from_numpy(seqs, pa.int64())]
    names = [SEQ]
    for f in schema.fields:
        if f.dtype.is_vector:
            arrays.append(vectors_to_arrow(f, batch.vectors[f.name]))
        else:
            arrays.append(column_to_arrow(f.dtype, batch.columns[f.name], f))
        names.append(f.name)
    if META_FIELD in batch.columns:
        arrays.append(column_to_arrow(DataType.JSON, batch.columns[META_FIELD]))
        names.append(META_FIELD)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _valid_of(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return valid_mask(arr)


def arrow_to_column(dtype: DataType, arr: pa.Array, element_type: DataType | None = None) -> Column:
    valid = _valid_of(arr)
    if dtype in NUMPY_DTYPES:
        values = np.asarray(to_numpy(arr, fill=False if dtype is DataType.BOOL else 0), dtype=NUMPY_DTYPES[dtype])
        return Column(dtype, values, valid)
    if dtype is DataType.VARCHAR:
        return Column(dtype, arr, valid)
    if dtype is DataType.JSON:
        out = np.empty(len(arr), dtype=object)
        out[:] = [None if t is None else json.loads(t) for t in arr.to_pylist()]
        return Column(dtype, out, valid, texts=arr)
    if dtype in (DataType.ARRAY, DataType.GEOMETRY):
        out = np.empty(len(arr), dtype=object)
        out[:] = arr.to_pylist()
        return Column(dtype, out, valid, element_type)
    raise TypeError(f"no column form for {dtype}")


def arrow_to_vectors(f: FieldSchema, arr: pa.Array) -> Any:
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        idx = arr.field("indices")
        val = arr.field("values")
        indptr = np.asarray(to_numpy(idx.offsets), dtype=np.int64)
        indices = np.asarray(to_numpy(idx.flatten()), dtype=np.int64)
        data = np.asarray(to_numpy(val.flatten()), dtype=np.float32)
        width = int(indices.max()) + 1 if indices.size else 1
        base = indptr[0]
        return sp.csr_matrix((data, indices, indptr - base), shape=(len(arr), width))
    width = arr.type.list_size
    return to_numpy(arr.flatten()).reshape(len(arr), width)


def record_batch_to_batch(schema: CollectionSchema, rb: pa.RecordBatch | pa.Table) -> tuple[Batch, np.ndarray]:
    """Inverse of `batch_to_record_batch`: the batch and its rows' sequence numbers."""
    if isinstance(rb, pa.Table):
        rb = rb.combine_chunks()
        cols = {name: rb.column(name).chunk(0) if rb.column(name).num_chunks else
                pa.nulls(0, type=rb.schema.field(name).type) for name in rb.column_names}
    else:
        cols = {name: rb.column(name) for name in rb.schema.names}
    n = rb.num_rows
    batch = Batch(n)
    seqs = np.asarray(to_numpy(cols[SEQ]), dtype=np.int64)
    for f in schema.fields:
        if f.added_seq and not f.dtype.is_vector and (f.name not in cols or not n or seqs.max() < f.added_seq):
            batch.columns[f.name] = filled_column(f, n)  # written before the field was added (or re-added)
            continue
        if f.name not in cols:
            continue
        if f.dtype.is_vector:
            batch.vectors[f.name] = arrow_to_vectors(f, cols[f.name])
        else:
            batch.columns[f.name] = arrow_to_column(f.dtype, cols[f.name], f.element_type)
    if META_FIELD in cols:
        batch.columns[META_FIELD] = arrow_to_column(DataType.JSON, cols[META_FIELD])
    return batch, seqs


def to_ipc_bytes(rb: pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, rb.schema) as w:
        w.write_batch(rb)
    return sink.getvalue()


class IpcPayload:
    """A record batch to be written as Arrow IPC stream bytes straight into a caller's buffer.

    ``size`` is the exact length of the stream; `write_into` writes it, with no
    intermediate bytes object to copy from.
    """

    __slots__ = ("rb", "size")

    def __init__(self, rb: pa.RecordBatch) -> None:
        self.rb = rb
        mock = pa.MockOutputStream()
        with pa.ipc.new_stream(mock, rb.schema) as w:
            w.write_batch(rb)
        self.size = mock.size()

    def write_into(self, out: memoryview) -> None:
        """Write the stream into ``out``, which must be exactly `size` bytes and writable."""
        buf = pa.py_buffer(out)
        sink = pa.FixedSizeBufferWriter(buf)
        try:
            with pa.ipc.new_stream(sink, self.rb.schema) as w:
                w.write_batch(self.rb)
        finally:
            sink.close()
            del sink, buf  # let go of ``out`` now, even when an error keeps this frame alive


def from_ipc_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def pks_to_ipc_bytes(pks: np.ndarray, is_string: bool) -> bytes:
    arr = strings(pks.tolist()) if is_string else from_numpy(pks, pa.int64())
    return to_ipc_bytes(pa.RecordBatch.from_arrays([arr], names=["pk"]))


def pks_from_ipc_bytes(data: bytes, is_string: bool) -> np.ndarray:
    col = from_ipc_bytes(data).column("pk")
    if is_string:
        return np.asarray(col.to_pylist(), dtype=object)
    return np.asarray(to_numpy(col), dtype=np.int64)
