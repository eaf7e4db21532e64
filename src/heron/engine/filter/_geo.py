"""Spatial predicates on GEOMETRY fields: ``ST_EQUALS(geo, 'WKT')`` and the rest of Milvus's set.

``ST_X(field, 'wkt')`` asks whether the field's geometry stands in relation X
to the literal geometry (``ST_CONTAINS(geo, 'POINT (1 1)')``: the row's
geometry contains the point). ``ST_DWITHIN(field, 'POINT (lon lat)', metres)``
keeps rows whose geometry comes within that many metres of the point, on a
sphere of the Earth's mean radius (the great-circle distance from the point to
the geometry's nearest point). A null geometry makes the predicate unknown.

Evaluation is one vectorised shapely call over the column with the literal as
the prepared first operand (each predicate is run as its converse), after an
R-tree (`shapely.STRtree`) has narrowed the rows to those whose boxes can match
where the column is large enough for that to pay.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from ..._types import DataType
from ...data._geometry import from_wkb
from . import _ast as A
from . import _bound as B
from ._vector import Tri, from_known, full

if TYPE_CHECKING:
    from ._binder import Binder
    from ._compiler import Evaluator

#: Earth's mean radius in metres (IUGG), for ST_DWITHIN's great-circle distances.
EARTH_RADIUS_M = 6_371_008.8

#: Each predicate with its converse, run with the literal geometry first.
CONVERSE = {
    "st_equals": shapely.equals,
    "st_intersects": shapely.intersects,
    "st_contains": shapely.within,
    "st_within": shapely.contains,
    "st_touches": shapely.touches,
    "st_overlaps": shapely.overlaps,
    "st_crosses": shapely.crosses,
}
GEO_FUNCS = frozenset(CONVERSE) | {"st_dwithin"}
#: Below this many rows the whole column is tested at once; above, an R-tree narrows it first.
TREE_ROWS = 4096


def bind_geo(b: Binder, node: A.Call) -> B.Geo:
    """``ST_*(field, 'wkt'[, distance])`` bound; `FilterError` naming what is wrong."""
    name = node.name.lower()
    want = 3 if name == "st_dwithin" else 2
    if len(node.args) != want or node.kwargs:
        extra = ", a distance in metres" if want == 3 else ""
        raise b.error(f"{name.upper()} takes {want} arguments: a GEOMETRY field, WKT text{extra}", node.pos)
    target = b.value(node.args[0])
    if not (isinstance(target, B.Field) and target.dtype is DataType.GEOMETRY):
        raise b.error(f"{name.upper()} needs a GEOMETRY field as its first argument, not {b._describe(target)}",
                      node.args[0].pos)
    text = b.const(node.args[1])
    if not isinstance(text, str):
        raise b.error(f"{name.upper()} needs WKT text as its second argument, got {text!r}", node.args[1].pos)
    geom = shapely.from_wkt(text, on_invalid="ignore")
    if geom is None:
        raise b.error(f"{text!r} is not valid WKT; expected e.g. 'POINT (1 2)' or 'POLYGON ((0 0, 1 0, 1 1, 0 0))'",
                      node.args[1].pos)
    distance = 0.0
    if name == "st_dwithin":
        if shapely.get_type_id(geom) != 0:
            raise b.error(f"ST_DWITHIN needs a POINT (longitude latitude), got {text!r}", node.args[1].pos)
        d = b.const(node.args[2])
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 0:
            raise b.error(f"ST_DWITHIN distance must be a number of metres >= 0, got {d!r}", node.args[2].pos)
        distance = float(d)
    return B.Geo(name, target.name, shapely.to_wkb(geom), distance)


def haversine_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Great-circle distance in metres between points given in degrees (arrays or scalars)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _dwithin(geoms: np.ndarray, point: Any, metres: float) -> np.ndarray:
    near = shapely.get_point(shapely.shortest_line(geoms, point), 0)  # on each row's geometry
    d = haversine_m(shapely.get_x(near), shapely.get_y(near), shapely.get_x(point), shapely.get_y(point))
    return np.nan_to_num(d, nan=np.inf) <= metres


def _candidates(geoms: np.ndarray, query: Any, p: B.Geo) -> np.ndarray | None:
    """Rows whose boxes allow a match (an R-tree query), or None when the column is small."""
    if len(geoms) < TREE_ROWS:
        return None
    tree = shapely.STRtree(geoms)
    if p.op == "st_dwithin":
        x, y = shapely.get_x(query), shapely.get_y(query)
        dlat = math.degrees(p.distance / EARTH_RADIUS_M)
        coslat = max(math.cos(math.radians(min(89.9, abs(y) + dlat))), 1e-9)
        dlon = min(180.0, dlat / coslat)
        box = shapely.box(x - dlon, y - dlat, x + dlon, y + dlat)
        return np.asarray(tree.query(box), dtype=np.int64)
    return np.asarray(tree.query(query), dtype=np.int64)  # boxes that intersect the literal's


def eval_geo(ev: Evaluator, p: B.Geo) -> Tri:
    """The rows of ``ev``'s source whose geometry stands in ``p``'s relation to its literal."""
    col = ev.column(p.field, DataType.GEOMETRY)
    geoms = from_wkb(col.values)
    known = shapely.is_missing(geoms)
    known = None if not known.any() else ~known
    if col.valid is not None:
        known = col.valid if known is None else known & col.valid
    query = shapely.from_wkb(p.wkb)
    shapely.prepare(query)
    rows = _candidates(geoms, query, p)
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
    return from_known(t & (True if known is None else known), known)


def reference_geo(p: B.Geo, value: Any) -> bool | None:
    """One row's answer, computed with scalar shapely and plain Python (the reference evaluator's)."""
    if value is None:
        return None
    g = shapely.from_wkt(value) if isinstance(value, str) else shapely.from_wkb(value)
    query = shapely.from_wkb(p.wkb)
    if p.op == "st_dwithin":
        from shapely.ops import nearest_points

        near = nearest_points(g, query)[0]
        lon1, lat1, lon2, lat2 = map(math.radians, (near.x, near.y, query.x, query.y))
        a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a))) <= p.distance
    relation = {"st_equals": g.equals, "st_intersects": g.intersects, "st_contains": g.contains,
                "st_within": g.within, "st_touches": g.touches, "st_overlaps": g.overlaps,
                "st_crosses": g.crosses}[p.op]
    return bool(relation(query))
