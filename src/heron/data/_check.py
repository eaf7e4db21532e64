"""What the converters share: the marker of a value not given, and the error that refuses a value.

A `DataError` names the field, the row (when there is one), the value (cut
short) and what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import DataError
from .._schema import FieldSchema

#: A field a row dict does not have (unlike None, which may be an explicit null).
MISSING = object()


def short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def fail(f: FieldSchema | str, row: int | None, value: Any, expected: str) -> DataError:
    name = f if isinstance(f, str) else f.name
    where = f" in row {row}" if row is not None else ""
    return DataError(f"field {name!r}{where}: got {short(value)}, expected {expected}")


def to_py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
