"""Columns of the TIMESTAMPTZ and GEOMETRY types from the values users give."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import DataError, ParamError
from .._schema import FieldSchema
from .._types import DataType
from ._column import Column
from ._geometry import parse_wkt
from ._timestamptz import to_micros


def typed_column(f: FieldSchema, values: Any, valid: np.ndarray | None, zone: str = "UTC") -> Column:
    """TIMESTAMPTZ values as int64 microseconds (UTC), GEOMETRY values as WKB; `DataError` naming a bad one."""
    values = list(values) if not isinstance(values, list) else values
    what = f"field {f.name!r}"
    try:
        if f.dtype is DataType.TIMESTAMPTZ:
            return Column(f.dtype, to_micros(values, valid, zone, what), valid)
        return Column(f.dtype, parse_wkt(values, valid, what), valid)
    except ParamError as e:
        raise DataError(e.message) from None


#: The types whose stored form is not what users get back.
PRESENTED = frozenset({DataType.TIMESTAMPTZ, DataType.GEOMETRY})


def present(col: Column, rows: np.ndarray, zone: str = "UTC") -> list[Any]:
    """Values at ``rows`` as users get them: ISO-8601 text in ``zone`` (TIMESTAMPTZ), WKT (GEOMETRY), None if null."""
    from ._geometry import wkt_of
    from ._timestamptz import format_micros

    vals = col.values[rows]
    out = format_micros(vals, zone) if col.dtype is DataType.TIMESTAMPTZ else wkt_of(vals)
    if col.valid is not None:
        valid = col.valid[rows]
        out = [v if ok else None for v, ok in zip(out, valid)]
    return out
