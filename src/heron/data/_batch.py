"""Turning what users insert into columns that fit a schema.

`build_batch` accepts the shapes users have — a list of row dicts, a dict of
columns, a pandas or polars DataFrame, a pyarrow Table — and returns a `Batch`
whose columns follow the representation in `heron.data._column`; every shape
stores what the same rows as dicts would (column-shaped inputs are read by
`heron.data._tables`). Every check
happens here, before anything is written: a value that does not fit raises
`DataError` naming the field, the row, the value and what was expected, and
the whole batch is refused. Per-field conversion lives in `heron.data._scalars`
and `heron.data._vectors`, JSON encoding in `heron.data._json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError
from .._schema import META_FIELD, CollectionSchema, FieldSchema
from .._types import DataType
from . import _sparse as sp
from ._check import MISSING, fail, short, to_py
from ._column import Column
from ._json import check_json
from ._pa import from_numpy, objects
from ._scalars import convert_scalars
from ._tables import dynamic_columns, is_tabular, table_columns
from ._vectors import convert_vectors


@dataclass
class Batch:
    """Rows in columnar form: scalar `Column`s plus vector arrays, all of one length."""

    num_rows: int
    columns: dict[str, Column] = field(default_factory=dict)
    vectors: dict[str, Any] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> Batch:
        """The rows at positions ``rows``, in that order."""
        cols = {name: take_column(c, rows) for name, c in self.columns.items()}
        vecs = {name: v[rows] for name, v in self.vectors.items()}
        return Batch(len(rows), cols, vecs)


def take_column(c: Column, rows: np.ndarray) -> Column:
    if isinstance(c.values, (pa.Array, pa.ChunkedArray)):
        values: Any = c.values.take(from_numpy(rows, pa.int64()))
    else:
        values = c.values[rows]
    valid = None if c.valid is None else c.valid[rows]
    texts = c.texts.take(from_numpy(rows, pa.int64())) if isinstance(c.texts, (pa.Array, pa.ChunkedArray)) else None
    return Column(c.dtype, values, valid, c.element_type, texts)


# -- entry point ----------------------------------------------------------------


def build_batch(schema: CollectionSchema, data: Any, *, for_upsert: bool = False) -> Batch:
    """Convert ``data`` to a `Batch` for ``schema``; raise `DataError` if any value does not fit."""
    if isinstance(data, Mapping) and not _is_column_dict(data, schema):
        data = [data]
    if is_tabular(data):
        columns, n = table_columns(data, schema)
        get = columns.get
        dynamic = dynamic_columns(schema, columns, n)
        meta, meta_texts = dynamic if dynamic is not None else (None, None)
    else:
        if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
            raise DataError(f"data: got {type(data).__name__}, expected a list of row dicts, a dict of columns, "
                            "a pandas or polars DataFrame or a pyarrow Table")
        rows = list(data)
        if not all(type(r) is dict for r in rows):
            for i, r in enumerate(rows):
                if not isinstance(r, Mapping):
                    raise DataError(f"row {i}: got {short(r)}, expected a dict of field values")
        n = len(rows)
        get, meta, meta_texts = _rows_access(schema, rows)
    batch = Batch(n)
    pk = schema.primary_field
    for f in schema.fields:
        raw = get(f.name)
        if f.is_primary and f.auto_id and not for_upsert:
            if raw is not None and not _all_missing(raw):
                raise DataError(f"field {f.name!r}: the primary key is auto_id; do not pass values for it")
            continue
        if f.dtype.is_vector:
            if raw is None:
                raise fail(f, 0, "<missing>", f"a {f.dtype.name} value in every row")
            batch.vectors[f.name] = convert_vectors(f, raw, n)
        else:
            batch.columns[f.name] = convert_scalars(f, raw, n, schema.properties.get("timezone") or "UTC")
    if meta is not None:
        batch.columns[META_FIELD] = Column(DataType.JSON, meta, texts=meta_texts)
    elif schema.enable_dynamic_field:
        batch.columns[META_FIELD] = Column(DataType.JSON, np.full(n, None, dtype=object))
    if for_upsert and pk.name in batch.columns:  # an insert may repeat a key: reads see the latest row
        check_unique_pks(pk, batch.columns[pk.name])
    return batch


_COLUMNS = (list, tuple, np.ndarray, pa.Array, pa.ChunkedArray)


def _is_column_dict(data: Mapping, schema: CollectionSchema) -> bool:
    if not data:
        return False
    vals = list(data.values())
    first = vals[0]
    if not isinstance(first, _COLUMNS):
        return False
    pk = schema.primary_field
    names = set(schema.field_names())
    if len(data) == 1 and pk.name in data and not isinstance(first, (list, np.ndarray)):
        return False
    # A single row whose vector field is a list looks like a column dict; tell them apart by the vector's shape.
    for f in schema.vector_fields:
        if f.name in data and f.dtype.is_dense_vector:
            v = data[f.name]
            if isinstance(v, (pa.Array, pa.ChunkedArray)):
                return True
            arr = v if isinstance(v, np.ndarray) else None
            if arr is not None:
                return arr.ndim == 2
            if isinstance(v, (list, tuple)):
                return len(v) > 0 and isinstance(v[0], (list, tuple, np.ndarray, bytes))
    return bool(names & set(data)) and all(isinstance(v, _COLUMNS) or sp.issparse(v) for v in vals) and \
        pk.name in data and isinstance(data[pk.name], _COLUMNS)


def _rows_access(schema: CollectionSchema, rows: list[Mapping]):
    names = set(schema.field_names())
    keys: set[str] = set().union(*rows) if rows else set()
    extra = keys - names
    if META_FIELD in extra:
        extra.discard(META_FIELD)
    meta = None
    meta_texts: list[str | None] | None = None
    if extra:
        if not schema.enable_dynamic_field:
            bad = sorted(extra)[0]
            row = next(i for i, r in enumerate(rows) if bad in r)
            raise DataError(f"field {bad!r} in row {row}: the schema has no such field and no dynamic field")
        meta = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):
            meta[i] = {k: v for k, v in r.items() if k not in names}
        meta_texts = [check_json(META_FIELD, i, d) for i, d in enumerate(meta)]

    def get(name: str) -> Any:
        if name not in keys:
            return None
        return [r.get(name, MISSING) for r in rows]

    return get, meta, meta_texts


def _all_missing(raw: Any) -> bool:
    return isinstance(raw, list) and all(v is MISSING for v in raw)


# -- keys -----------------------------------------------------------------------


def check_unique_pks(f: FieldSchema, col: Column) -> None:
    """Refuse an upsert batch that repeats a primary key, as Milvus does (code 1100, with its wording)."""
    v = col.values
    if isinstance(v, (pa.Array, pa.ChunkedArray)):
        arr = objects(v)
    else:
        arr = v
    if len(arr) < 2:
        return
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "iu" and (arr[1:] > arr[:-1]).all():
        return  # increasing, so no key twice: the usual batch of new ids, without a sort
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        dup = uniq[np.flatnonzero(counts > 1)[0]]
        raise DataError(f"duplicate primary keys are not allowed in the same batch: field {f.name!r} got "
                        f"{to_py(dup)!r} more than once, expected each key once in an upsert")


def normalize_pks(f: FieldSchema, ids: Any) -> np.ndarray:
    """Primary keys given to get/delete as a numpy array of the key's type."""
    if isinstance(ids, (int, str, np.integer)):
        ids = [ids]
    vals = list(ids)
    if f.dtype is DataType.INT64:
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise fail(f, None, v, "INT64 primary keys")
        return np.asarray(vals, dtype=np.int64)
    for v in vals:
        if not isinstance(v, str):
            raise fail(f, None, v, "VARCHAR primary keys")
    return np.asarray(vals, dtype=object)
