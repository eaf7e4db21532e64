"""GEOMETRY values: WKT in (shapely geometries and WKB too), WKB stored, WKT out (shapely 2, vectorised).

A column holds WKB ``bytes`` in a numpy object array (None where null).
Output trims trailing zeros as Milvus does (``POINT (13.39971 52.51801)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from .._errors import ParamError


def parse_wkt(values: list[Any], valid: np.ndarray | None, what: str) -> np.ndarray:
    """WKB bytes (object array, None for nulls) of WKT strings (or shapely geometries, or WKB bytes).

    `ParamError` names the first value that is none of these, or malformed.
    """
    n = len(values)
    keep = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    arr = np.empty(n, dtype=object)
    arr[:] = [v if ok else None for v, ok in zip(values, keep)]
    text = np.fromiter((isinstance(v, str) for v in arr), dtype=bool, count=n)
    if (keep & ~text).any():  # shapely geometries and WKB as they are; anything else is refused
        other = np.flatnonzero(keep & ~text)
        for i in other.tolist():
            v = arr[i]
            if isinstance(v, (bytes, bytearray, memoryview)):
                arr[i] = shapely.from_wkb(bytes(v), on_invalid="ignore")
            if not isinstance(arr[i], shapely.Geometry):
                raise ParamError(f"{what} in row {i}: got {v!r}, expected WKT text such as 'POINT (1 2)'")
    geoms = np.empty(n, dtype=object)
    geoms[:] = arr
    if text.any():
        geoms[text] = shapely.from_wkt(arr[text], on_invalid="ignore")
    broken = keep & shapely.is_missing(geoms)
    if broken.any():
        i = int(np.flatnonzero(broken)[0])
        raise ParamError(f"{what} in row {i}: got {values[i]!r}, which is not valid WKT; "
                         "expected e.g. 'POINT (1 2)' or 'POLYGON ((0 0, 1 0, 1 1, 0 0))'")
    return to_wkb(geoms)


def to_wkb(geoms: np.ndarray) -> np.ndarray:
    """WKB bytes of shapely geometries (None stays None) as an object array."""
    out = np.empty(len(geoms), dtype=object)
    if len(geoms):
        out[:] = list(shapely.to_wkb(geoms))
    return out


def from_wkb(values: Any) -> np.ndarray:
    """Shapely geometries of a column of WKB bytes (None where null)."""
    arr = np.asarray(values, dtype=object)
    if not len(arr):
        return np.empty(0, dtype=object)
    return shapely.from_wkb(arr)


def wkt_of(values: Any) -> list[str | None]:
    """WKT text, as Milvus returns it, of a column of WKB bytes (None where null)."""
    geoms = from_wkb(values)
    if not len(geoms):
        return []
    return list(shapely.to_wkt(geoms, rounding_precision=-1, trim=True))


def one_wkt(text: Any, what: str) -> Any:
    """One shapely geometry from WKT text (a filter operand or a default value); `ParamError` if malformed."""
    if not isinstance(text, str):
        raise ParamError(f"{what}: got {text!r}, expected WKT text such as 'POINT (1 2)'")
    g = shapely.from_wkt(text, on_invalid="ignore")
    if g is None:
        raise ParamError(f"{what}: {text!r} is not valid WKT; expected e.g. 'POINT (1 2)'")
    return g
