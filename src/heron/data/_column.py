"""How one field's values for a run of rows are handed to filters and search.

A segment (or a batch under test) exposes its fields as `Column` objects
through the `ColumnSource` protocol. The representation per data type is
fixed here so that the filter compiler, scalar indexes and the segments
agree without knowing each other:

* BOOL, INT8..INT64, FLOAT, DOUBLE: ``values`` is a numpy array of the
  type's dtype (see ``heron._types.NUMPY_DTYPES``); slots that are null hold
  an arbitrary value and are marked False in ``valid``.
* VARCHAR: ``values`` is a pyarrow string array (``pa.Array`` or
  ``pa.ChunkedArray``, string or large_string); nulls are Arrow nulls and are
  also marked in ``valid``.
* JSON (and the dynamic-field column ``$meta``): ``values`` is a numpy object
  array of decoded Python values (dict, list, str, int, float, bool, or None
  for a null field or JSON null).
* ARRAY: ``values`` is a numpy object array of Python lists (None when null).
* Vectors are not filterable and never appear here.

``valid`` is None when every row holds a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .._types import DataType


@dataclass(frozen=True)
class Column:
    dtype: DataType
    values: Any
    valid: np.ndarray | None = None
    element_type: DataType | None = None
    #: For JSON: each value's JSON text (None where null), as a list or an Arrow
    #: string array, kept from validation (or from the segment, which stores them)
    #: so that writing the rows does not encode them again.
    texts: Any = None

    def __len__(self) -> int:
        return len(self.values)


class ColumnSource(Protocol):
    """Rows that a filter can be evaluated over."""

    @property
    def num_rows(self) -> int: ...

    def column(self, name: str) -> Column:
        """The column of field ``name`` (``"$meta"`` for dynamic fields); KeyError if absent."""
        ...

    def scalar_index(self, name: str) -> Any | None:
        """The scalar index built on field ``name`` for these rows, or None."""
        ...


class DictColumnSource:
    """A `ColumnSource` over columns held in a dict: for tests and small batches."""

    def __init__(self, columns: dict[str, Column], num_rows: int, indexes: dict[str, Any] | None = None) -> None:
        self._columns = columns
        self._num_rows = num_rows
        self._indexes = indexes or {}

    @property
    def num_rows(self) -> int:
        return self._num_rows

    def column(self, name: str) -> Column:
        return self._columns[name]

    def scalar_index(self, name: str) -> Any | None:
        return self._indexes.get(name)
