"""Shared helpers of the filter tests: a small schema, rows, and columns built from rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from heron._schema import CollectionSchema, FieldSchema
from heron._types import NUMPY_DTYPES, DataType
from heron.engine._column import Column, DictColumnSource


def make_schema() -> CollectionSchema:
    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
            FieldSchema("age", DataType.INT32, nullable=True),
            FieldSchema("score", DataType.DOUBLE),
            FieldSchema("price", DataType.FLOAT, nullable=True),
            FieldSchema("name", DataType.VARCHAR, max_length=64, nullable=True),
            FieldSchema("active", DataType.BOOL),
            FieldSchema("flags", DataType.INT64),
            FieldSchema("meta", DataType.JSON, nullable=True),
            FieldSchema(
                "tags",
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=8,
                max_length=16,
                nullable=True,
            ),
            FieldSchema("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True),
        ],
        enable_dynamic_field=True,
    )


def column_from_rows(field: FieldSchema, rows: list[dict[str, Any]]) -> Column:
    vals = [r.get(field.name) for r in rows]
    valid = np.array([v is not None for v in vals], dtype=bool)
    mask = None if valid.all() else valid
    t = field.dtype
    if t in NUMPY_DTYPES:
        data = np.array([0 if v is None else v for v in vals], dtype=NUMPY_DTYPES[t])
        return Column(t, data, mask)
    if t is DataType.VARCHAR:
        return Column(t, pa.array(vals, type=pa.string()), mask)
    obj = np.empty(len(vals), dtype=object)
    obj[:] = [None] * len(vals)
    for i, v in enumerate(vals):
        obj[i] = v
    return Column(t, obj, None, field.element_type)


def source_from_rows(
    schema: CollectionSchema, rows: list[dict[str, Any]], indexes: dict | None = None
) -> DictColumnSource:
    cols = {f.name: column_from_rows(f, rows) for f in schema.fields if not f.dtype.is_vector}
    if schema.enable_dynamic_field:
        meta = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):
            meta[i] = r.get("$meta", {})
        cols["$meta"] = Column(DataType.JSON, meta)
    return DictColumnSource(cols, len(rows), indexes)


ROWS: list[dict[str, Any]] = [
    {
        "id": 0,
        "age": 25,
        "score": 1.5,
        "price": 9.5,
        "name": "alice",
        "active": True,
        "flags": 5,
        "meta": {"a": 1, "b": {"c": "x"}, "tags": ["sale", "new"]},
        "tags": ["red", "blue"],
        "nums": [1, 2, 3],
        "$meta": {"color": "red", "size": 3},
    },
    {
        "id": 1,
        "age": 30,
        "score": 2.5,
        "price": None,
        "name": "bob",
        "active": False,
        "flags": 4,
        "meta": {"a": 2.5, "tags": ["sale"]},
        "tags": ["green"],
        "nums": [4],
        "$meta": {"color": "blue"},
    },
    {
        "id": 2,
        "age": None,
        "score": -1.0,
        "price": 3.25,
        "name": "Alice",
        "active": True,
        "flags": 0,
        "meta": None,
        "tags": [],
        "nums": None,
        "$meta": {},
    },
    {
        "id": 3,
        "age": 40,
        "score": 0.0,
        "price": 100.0,
        "name": None,
        "active": False,
        "flags": 7,
        "meta": {"a": "1", "b": {"c": None}},
        "tags": ["red"],
        "nums": [2, 2],
        "$meta": {"color": "red", "size": 10},
    },
    {
        "id": 4,
        "age": 18,
        "score": 3.0,
        "price": 0.5,
        "name": "ab%cd",
        "active": True,
        "flags": 1,
        "meta": {"a": True, "tags": []},
        "tags": ["blue", "red", "green"],
        "nums": [],
        "$meta": {"size": "big"},
    },
    {
        "id": 5,
        "age": 65,
        "score": 10.0,
        "price": 20.0,
        "name": "C:\\dir\\x",
        "active": False,
        "flags": 8,
        "meta": {"a": [1, 2], "b": {"c": "y"}},
        "tags": ["x"],
        "nums": [7, 8, 9, 10],
        "$meta": {"color": None},
    },
    {
        "id": 6,
        "age": 25,
        "score": 2.0,
        "price": 7.0,
        "name": "abc",
        "active": True,
        "flags": 12,
        "meta": {"a": 3, "tags": ["new"]},
        "tags": None,
        "nums": [5],
        "$meta": {"color": "green", "size": 3.0},
    },
    {
        "id": 7,
        "age": 33,
        "score": 7.5,
        "price": None,
        "name": "xyz",
        "active": False,
        "flags": 3,
        "meta": {},
        "tags": ["red", "red"],
        "nums": [3, 1],
        "$meta": {},
    },
    {
        "id": 8,
        "age": 50,
        "score": 5.0,
        "price": 1.0,
        "name": "",
        "active": True,
        "flags": 2,
        "meta": {"a": -1, "tags": ["sale", "new", "hot"]},
        "tags": ["blue"],
        "nums": [1],
        "$meta": {"color": "RED"},
    },
    {
        "id": 9,
        "age": 20,
        "score": 9.0,
        "price": 2.0,
        "name": "abcd",
        "active": False,
        "flags": 6,
        "meta": {"a": 1.0},
        "tags": ["green", "blue"],
        "nums": [10],
        "$meta": {"size": -3},
    },
]
