"""Spatial predicates on GEOMETRY fields: ``ST_EQUALS(geo, 'WKT')`` and the rest of Milvus's set.

``ST_X(field, 'wkt')`` asks whether the field's geometry stands in relation X
to the literal geometry (``ST_CONTAINS(geo, 'POINT (1 1)')``: the row's
geometry contains the point). ``ST_DWITHIN(field, 'POINT (lon lat)', metres)``
keeps rows whose geometry comes within that many metres of the literal, on a
sphere of the Earth's mean radius (the great-circle distance between the
nearest points of the two, found in the plane of longitude and latitude).
A null geometry satisfies no predicate: false, so ``not ST_...`` keeps it, as
Milvus Lite answers (a comparison on a null stays unknown).

Binding and the reference semantics live here, evaluation in `_geo_eval`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import shapely

from ..._types import DataType
from . import _ast as A
from . import _bound as B

if TYPE_CHECKING:
    from ._binder import Binder

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
        if shapely.is_empty(geom):
            raise b.error(f"ST_DWITHIN needs a non-empty geometry, got {text!r}", node.args[1].pos)
        d = b.const(node.args[2])
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 0:
            raise b.error(f"ST_DWITHIN distance must be a number of metres >= 0, got {d!r}", node.args[2].pos)
        distance = float(d)
    return B.Geo(name, target.name, shapely.to_wkb(geom), distance)


def reference_geo(p: B.Geo, value: Any) -> bool | None:
    """One row's answer, computed with scalar shapely and plain Python (the reference evaluator's)."""
    if value is None:
        return False
    g = shapely.from_wkt(value) if isinstance(value, str) else shapely.from_wkb(value)
    query = shapely.from_wkb(p.wkb)
    if p.op == "st_dwithin":
        from shapely.ops import nearest_points

        a, b = nearest_points(g, query)
        lon1, lat1, lon2, lat2 = map(math.radians, (a.x, a.y, b.x, b.y))
        a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a))) <= p.distance
    relation = {"st_equals": g.equals, "st_intersects": g.intersects, "st_contains": g.contains,
                "st_within": g.within, "st_touches": g.touches, "st_overlaps": g.overlaps,
                "st_crosses": g.crosses}[p.op]
    return bool(relation(query))
