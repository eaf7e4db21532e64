"""Columns of one value: what rows written before a field existed read for it.

A field added to a live collection (`add_collection_field`) is nullable or
has a default; the rows already stored hold neither, so segments and
recovered records get a column of the default (or of nulls) here, built
without a loop over the rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .._schema import FieldSchema
from .._types import NUMPY_DTYPES, DataType
from ._column import Column


def filled_column(f: FieldSchema, n: int) -> Column:
    """``n`` rows of ``f``'s default value, or of nulls when it has none (then ``f`` must be nullable)."""
    default = f.default_value
    valid = None if default is not None else np.zeros(n, dtype=bool)
    t = f.dtype
    if t in NUMPY_DTYPES:
        dtype = np.dtype(NUMPY_DTYPES[t])
        return Column(t, np.full(n, default if default is not None else dtype.type(0), dtype=dtype), valid)
    if t is DataType.VARCHAR:
        values = pa.nulls(n, pa.string()) if default is None else pa.repeat(pa.scalar(str(default), pa.string()), n)
        return Column(t, values, valid)
    if t is DataType.JSON:
        return Column(t, np.full(n, default, dtype=object), valid, texts=pa.nulls(n, pa.string()))
    if t is DataType.ARRAY:
        return Column(t, np.full(n, None, dtype=object), valid, f.element_type)
    raise TypeError(f"field {f.name!r}: no filled column for {t.name}")
