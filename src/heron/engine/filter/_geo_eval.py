"""Evaluation of spatial predicates over a GEOMETRY column (see `_geo` for their meaning).

One vectorised shapely call over the column with the literal as the prepared
first operand (each predicate is run as its converse), after an R-tree
(`shapely.STRtree`) has narrowed the rows to those whose boxes can match where
the column is large enough for that to pay.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from ..._types import DataType
from ...data._geometry import from_wkb
from . import _bound as B
from ._geo import CONVERSE, EARTH_RADIUS_M
from ._vector import Tri, from_known, full

if TYPE_CHECKING:
    from ._compiler import Evaluator

#: Below this many rows the whole column is tested at once; above, an R-tree narrows it first.
TREE_ROWS = 4096


def haversine_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Great-circle distance in metres between points given in degrees (arrays or scalars)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _dwithin(geoms: np.ndarray, query: Any, metres: float) -> np.ndarray:
    line = shapely.shortest_line(geoms, query)  # from each row's geometry to the literal's nearest point
    a, b = shapely.get_point(line, 0), shapely.get_point(line, 1)
    d = haversine_m(shapely.get_x(a), shapely.get_y(a), shapely.get_x(b), shapely.get_y(b))
    return np.nan_to_num(d, nan=np.inf) <= metres


class RTreeIndex:
    """An RTREE index over one sealed segment's GEOMETRY column: its geometries, decoded, in an STRtree."""

    def __init__(self, column: Any) -> None:
        self.geoms = from_wkb(column.values)
        self.n = len(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def __len__(self) -> int:
        return self.n


def _candidates(geoms: np.ndarray, query: Any, p: B.Geo, tree: Any = None) -> np.ndarray | None:
    """Rows whose boxes allow a match (an R-tree query), or None when the column is small and has no index."""
    if tree is None:
        if len(geoms) < TREE_ROWS:
            return None
        tree = shapely.STRtree(geoms)
    if p.op == "st_dwithin":  # the literal's box, widened by the distance in degrees at its widest latitude
        x0, y0, x1, y1 = shapely.bounds(query)
        dlat = math.degrees(p.distance / EARTH_RADIUS_M)
        far = min(90.0, max(abs(y0), abs(y1)) + dlat)
        dlon = 360.0 if far >= 89.9 else min(360.0, dlat / math.cos(math.radians(far)))
        box = shapely.box(x0 - dlon, y0 - dlat, x1 + dlon, y1 + dlat)
        return np.asarray(tree.query(box), dtype=np.int64)
    return np.asarray(tree.query(query), dtype=np.int64)  # boxes that intersect the literal's


def eval_geo(ev: Evaluator, p: B.Geo) -> Tri:
    """The rows of ``ev``'s source whose geometry stands in ``p``'s relation to its literal."""
    col = ev.column(p.field, DataType.GEOMETRY)
    index = ev.source.scalar_index(p.field)
    if not (isinstance(index, RTreeIndex) and index.n == ev.n):
        index = None
    geoms = from_wkb(col.values) if index is None else index.geoms
    present = ~shapely.is_missing(geoms)
    if col.valid is not None:
        present &= col.valid
    query = shapely.from_wkb(p.wkb)
    shapely.prepare(query)
    rows = _candidates(geoms, query, p, None if index is None else index.tree)
    sub = geoms if rows is None else geoms[rows]
    if p.op == "st_dwithin":
        hit = _dwithin(sub, query, p.distance)
    else:
        hit = np.asarray(CONVERSE[p.op](query, sub), dtype=bool)
    if rows is None:
        t = hit
    else:
        t = full(ev.n, False)
        t[rows[hit]] = True
    return from_known(t & present, None)  # a null geometry: false, not unknown (see `_geo`)
