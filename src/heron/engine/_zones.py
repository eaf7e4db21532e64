"""The time zone TIMESTAMPTZ values are shown in, and turning query and search output into it.

A read's own ``timezone`` wins, then the collection's ``timezone`` property,
then its database's, then UTC: Milvus's order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._schema import CollectionSchema
from .._types import DataType
from ..data._timestamptz import UTC, check_zone, format_micros, parse_time_fields, time_parts, to_micros

if TYPE_CHECKING:
    from ._collection import Collection
    from ._engine import Engine


def database_zone(engine: Engine, db: str) -> str:
    """The ``timezone`` property of database ``db``, or ""."""
    rows = engine.catalog.rows("SELECT properties FROM databases WHERE name=?", (db,))
    if not rows:
        return ""
    return str(json.loads(rows[0][0] or "{}").get("timezone") or "")


def read_zone(engine: Engine, coll: Collection, requested: str = "") -> str:
    """The zone a read shows TIMESTAMPTZ values in; `ParamError` for a zone that does not exist.

    A collection without TIMESTAMPTZ fields shows nothing in a zone: unless the read names one
    (checked all the same), its database's is not looked up.
    """
    if not requested and not timestamptz_fields(coll.schema):
        return UTC
    zone = requested or coll.properties.get("timezone") or database_zone(engine, coll.db) or UTC
    return check_zone(zone)


def check_zone_property(properties: dict[str, Any]) -> None:
    """`ParamError` if ``properties`` set a ``timezone`` that does not exist (nothing is written then)."""
    if "timezone" in properties:
        check_zone(properties["timezone"])


def sync_schema_zone(coll: Collection) -> None:
    """Keep the collection's ``timezone`` property on its schema, where inserts and filters read it."""
    zone = coll.properties.get("timezone")
    if zone == coll.schema.properties.get("timezone"):
        return
    if zone:
        coll.schema.properties["timezone"] = zone
    else:
        coll.schema.properties.pop("timezone", None)
    coll.forget_plans()


def timestamptz_fields(schema: CollectionSchema) -> list[str]:
    return [f.name for f in schema.fields if f.dtype is DataType.TIMESTAMPTZ]


def rezone_rows(schema: CollectionSchema, rows: list[dict[str, Any]], zone: str,
                time_fields: str = "") -> list[dict[str, Any]]:
    """``rows`` (values in UTC text) with their TIMESTAMPTZ values shown in ``zone``, column by column.

    With ``time_fields`` ("year, month, day"), each value becomes the list of those parts of its
    wall-clock time in ``zone``, as Milvus answers.
    """
    parts = parse_time_fields(time_fields) if time_fields else None
    if (zone == UTC and parts is None) or not rows:
        return rows
    for name in timestamptz_fields(schema):
        at = [i for i, r in enumerate(rows) if r.get(name) is not None]
        if not at:
            continue
        micros = to_micros([rows[i][name] for i in at], None, UTC, f"field {name!r}")
        shown: list[Any] = format_micros(micros, zone) if parts is None else time_parts(micros, zone, parts)
        for i, value in zip(at, shown):
            rows[i][name] = value
    return rows


def rezone_hits(schema: CollectionSchema, hits: list[list[dict[str, Any]]], zone: str,
                time_fields: str = "") -> list[list[dict[str, Any]]]:
    """Search results with their entities' TIMESTAMPTZ values shown in ``zone`` (see `rezone_rows`)."""
    if (zone != UTC or time_fields) and timestamptz_fields(schema):
        rezone_rows(schema, [h["entity"] for q in hits for h in q], zone, time_fields)
    return hits
