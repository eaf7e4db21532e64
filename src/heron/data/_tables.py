"""Column-shaped inputs — a dict of columns, a pandas or polars DataFrame, a pyarrow Table — as one dict of columns.

Each column comes out in a form the per-field converters take: a pyarrow
array (Arrow tables and record batches, and polars frames through their
zero-copy ``to_arrow``), a numpy array, or a list of Python values in which
None marks a null. pandas' missing values (None, NaN, NaT, ``pd.NA``) are
nulls, as they are to ``pyarrow.Table.from_pandas``.

A column whose name the schema lacks is a dynamic field, as an unknown key of
a row dict is: its non-null values go into each row's dynamic field (a null
is a key the row does not have), and without a dynamic field the batch is
refused with the error a row dict gets. A row dict's explicit None for a
dynamic key is kept as a JSON null, as pymilvus sends it; a column cannot
tell the two apart, and its nulls are mostly keys some rows lacked (which is
how ``pd.DataFrame(rows)`` fills them), so they are left out. Neither pandas nor polars is
imported here: they are recognised by the module of the object given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError
from .._schema import META_FIELD, CollectionSchema, FieldSchema
from . import _sparse as sp
from ._check import to_py
from ._json import check_json

_COLUMN_TYPES = (list, tuple, np.ndarray, pa.Array, pa.ChunkedArray)


def is_tabular(data: Any) -> bool:
    """Whether ``data`` is column-shaped: a Mapping of columns, an Arrow table, a pandas or polars DataFrame."""
    if isinstance(data, (pa.Table, pa.RecordBatch, Mapping)):
        return True
    return _frame_kind(data) is not None


def _frame_kind(data: Any) -> str | None:
    mod = type(data).__module__
    if mod.startswith("pandas") and hasattr(data, "columns"):
        return "pandas"
    if mod.startswith("polars") and hasattr(data, "to_arrow") and hasattr(data, "columns"):
        return "polars"
    return None


def table_columns(data: Any, schema: CollectionSchema) -> tuple[dict[str, Any], int]:
    """The columns of ``data`` by name, and the row count; `DataError` if the columns differ in length."""
    kind = _frame_kind(data)
    if kind == "polars":
        data = data.to_arrow()
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return {name: data.column(i) for i, name in enumerate(data.column_names)}, data.num_rows
    if kind == "pandas":
        fields = {f.name: f for f in schema.fields}
        return {str(k): _pandas_column(data[k], fields.get(str(k))) for k in data.columns}, len(data)
    cols = dict(data)
    for name, col in cols.items():
        if not isinstance(col, _COLUMN_TYPES) and not hasattr(col, "__len__"):
            raise DataError(f"field {name!r}: got {type(col).__name__}, expected a column of values (list, numpy "
                            "array or pyarrow array)")
    lens = {k: v.shape[0] if sp.issparse(v) else len(v) for k, v in cols.items()}  # a sparse matrix: its rows
    n = next(iter(lens.values()), 0)
    for k, ln in lens.items():
        if ln != n:
            raise DataError(f"field {k!r}: column has {ln} values but other columns have {n}")
    return cols, n


def _pandas_column(s: Any, f: FieldSchema | None) -> Any:
    """A pandas Series as a numpy array (numbers without nulls) or a list whose nulls are None.

    pandas holds integers with missing values as floats (NaN being the
    missing one); for an integer field they are integers again where every
    value is whole, as ``pyarrow.Table.from_pandas`` casts them.
    """
    arr = s.to_numpy()
    if arr.dtype.kind in "biu":  # no missing value is possible
        return arr
    missing = np.asarray(s.isna(), dtype=bool)
    if not missing.any():
        return arr if arr.dtype != object else list(arr)
    if arr.dtype.kind == "f" and f is not None and f.dtype.is_integer:
        kept = arr[~missing]
        if (kept == np.round(kept)).all() and (np.abs(kept) < 2.0**63).all():
            arr = np.where(missing, 0, arr).astype(np.int64)
    vals = arr.astype(object)
    vals[missing] = None
    return list(vals)


# -- dynamic fields ---------------------------------------------------------------------------


def dynamic_columns(schema: CollectionSchema, columns: dict[str, Any], n: int) -> tuple[np.ndarray, list[str | None]] | None:
    """Each row's dynamic field from the columns the schema lacks (with its JSON texts), or None if there are none.

    Without a dynamic field such a column is refused with the `DataError` an
    unknown key of a row dict gets, naming the first row that holds a value.
    """
    names = set(schema.field_names())
    extra = [k for k in columns if k not in names]
    if not [k for k in extra if k != META_FIELD]:
        return None
    values = {k: python_values(columns[k]) for k in extra}
    if not schema.enable_dynamic_field:
        bad = sorted(k for k in extra if k != META_FIELD)[0]
        row = next((i for i, v in enumerate(values[bad]) if v is not None), 0)
        raise DataError(f"field {bad!r} in row {row}: the schema has no such field and no dynamic field")
    meta = np.empty(n, dtype=object)
    dicts: list[dict[str, Any]] = [{} for _ in range(n)]
    for k in extra:
        for d, v in zip(dicts, values[k]):
            if v is not None:
                d[k] = v
    meta[:] = dicts
    texts: list[str | None] = [check_json(META_FIELD, i, d) for i, d in enumerate(dicts)]
    return meta, texts


def python_values(col: Any) -> list[Any]:
    """A column's values as Python objects (numpy scalars unwrapped), None for nulls."""
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        return col.to_pylist()
    if isinstance(col, np.ndarray) and col.dtype != object:
        return col.tolist()
    return [to_py(v) for v in col]
