"""Partial upserts (Milvus's ``partial_update=True``): the rows given, completed from the stored rows of their keys.

A partial upsert gives the primary key and some of the fields. For a key
already stored, the fields not given keep their stored values and the
dynamic field's keys are merged (given keys win); for a new key, the
fields not given take their default or null, and one without either
(a vector field, a field that is not nullable) refuses the whole batch.
The completed rows then go through the ordinary upsert, so the write log
holds whole rows and replays as any upsert does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError
from .._schema import META_FIELD, CollectionSchema
from .._types import DataType
from ..data._batch import Batch, check_unique_pks, normalize_pks
from ..data._check import MISSING
from ..data._column import Column
from ..data._scalars import convert_scalars
from ..data._vectors import convert_vectors
from ._collection import Collection
from ._reads import values_at


def complete_partial(coll: Collection, batch: Batch) -> Batch:
    """``batch`` (the primary key and some fields) with every field filled in; `DataError` if one cannot be.

    The caller holds the collection's write lock, so the stored rows read
    here are the latest and stay so until the upsert is applied.
    """
    schema = coll.schema
    pk = schema.primary_field
    col = batch.columns.get(pk.name)
    if col is None:
        raise DataError(f"field {pk.name!r}: missing; a partial upsert needs the primary key in every row")
    check_unique_pks(pk, col)
    keys = _keys(col)
    stored = _stored_rows(coll, keys)
    n = batch.num_rows
    out = Batch(n, dict(batch.columns), dict(batch.vectors))
    for f in schema.fields:
        if f.name in batch.columns or f.name in batch.vectors:
            continue
        values = [stored[k][f.name] if k in stored else MISSING for k in keys]
        if f.dtype.is_vector:
            new = next((k for k in keys if k not in stored), None)
            if new is not None:
                raise DataError(f"field {f.name!r}: missing for primary key {new!r}, which is not stored; a partial "
                                f"upsert of a new key must give it (expected a {f.dtype.name} value)")
            out.vectors[f.name] = convert_vectors(f, values, n)
        else:
            out.columns[f.name] = convert_scalars(f, values, n)
    if schema.enable_dynamic_field:
        out.columns[META_FIELD] = _merged_meta(batch.columns.get(META_FIELD), keys, stored)
    return out


def _keys(col: Column) -> list[Any]:
    values = col.values
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return list(values.to_pylist())
    return list(np.asarray(values).tolist())


def _merged_meta(given: Column | None, keys: list[Any], stored: dict[Any, dict[str, Any]]) -> Column:
    metas = np.full(len(keys), None, dtype=object)
    for i, k in enumerate(keys):
        old = stored[k].get(META_FIELD) if k in stored else None
        new = given.values[i] if given is not None else None
        metas[i] = {**(old or {}), **(new or {})} or None
    return Column(DataType.JSON, metas)


def _stored_rows(coll: Collection, keys: list[Any]) -> dict[Any, dict[str, Any]]:
    """The latest visible row of each stored key, in any partition: schema fields and the ``$meta`` dict."""
    schema: CollectionSchema = coll.schema
    pk = schema.primary_field
    if not keys:
        return {}
    pks = normalize_pks(pk, keys)
    snap = coll.snapshot(list(coll.partitions.values()))
    out: dict[Any, dict[str, Any]] = {}
    seqs: dict[Any, int] = {}
    names = [f.name for f in schema.fields]
    for _, view in snap.views:
        if not view.n:
            continue
        rows = view.segment.find_keys(pks, view.n)
        if len(rows):
            rows = rows[view.visible_rows(rows, snap.seq)]
        if not len(rows):
            continue
        cols = {name: values_at(schema, view, name, rows) for name in names}
        if schema.enable_dynamic_field:
            cols[META_FIELD] = list(view.column(META_FIELD).values[rows])
        row_seqs = view.seqs[rows].tolist()
        for i, k in enumerate(cols[pk.name]):
            if k not in out or row_seqs[i] > seqs[k]:  # a key written twice: the latest write is the row
                out[k] = {name: values[i] for name, values in cols.items()}
                seqs[k] = row_seqs[i]
    return out
