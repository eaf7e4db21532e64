"""Struct array columns ⇄ Milvus protobuf.

Milvus sends a struct array field as one `FieldData` of type ArrayOfStruct
whose ``struct_arrays`` hold one column per sub-field: an ARRAY (one
``ScalarField`` per row) for a scalar sub-field, an ArrayOfVector (one
``VectorField`` per row, the row's vectors end to end) for a vector one.
A null row is marked False in every sub-field's ``valid_data`` and may be
left out of the columns (pymilvus does) or held by an empty entry (Heron
sends those, as a full column). Pure functions, no I/O; a column that does
not add up raises `DataError` naming the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen import schema_pb2

from .._errors import DataError
from .._schema import StructFieldSchema
from .._types import DataType
from . import _compat as compat

_CELL_ATTR = {
    DataType.BOOL: "bool_data",
    DataType.INT8: "int_data",
    DataType.INT16: "int_data",
    DataType.INT32: "int_data",
    DataType.INT64: "long_data",
    DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
}


def sub_field_name(name: str) -> str:
    """A sub-field's own name, also from Milvus's ``struct[sub]`` form."""
    left = name.find("[")
    return name[left + 1:-1] if left > 0 and name.endswith("]") else name


def struct_num_rows(fd: schema_pb2.FieldData) -> int:
    """The number of rows a struct array column holds."""
    compat.require_field(fd, "struct_arrays", f"struct array field {fd.field_name!r}")
    subs = fd.struct_arrays.fields
    if not subs:
        return 0
    s = subs[0]
    if len(s.valid_data):
        return len(s.valid_data)
    if DataType(s.type) is DataType._ARRAY_OF_VECTOR:
        return len(s.vectors.vector_array.data)
    return len(s.scalars.array_data.data)


def _cells(fd: schema_pb2.FieldData, s: schema_pb2.FieldData) -> list[list[Any]]:
    t = DataType(s.type)
    if t is DataType.ARRAY:
        out = []
        for sf in s.scalars.array_data.data:
            which = sf.WhichOneof("data")
            out.append([] if which is None else list(getattr(sf, which).data))
        return out
    if t is DataType._ARRAY_OF_VECTOR:
        va = s.vectors.vector_array
        if va.element_type not in (0, DataType.FLOAT_VECTOR):
            raise DataError(f"field {fd.field_name!r}: sub-field {s.field_name!r} holds "
                            f"{DataType(va.element_type).name} vectors; expected FLOAT_VECTOR")
        dim = max(1, int(va.dim or s.vectors.dim))
        out = []
        for vf in va.data:
            flat = np.asarray(vf.float_vector.data, dtype=np.float32)
            if flat.size % dim:
                raise DataError(f"field {fd.field_name!r}: sub-field {s.field_name!r} got {flat.size} numbers "
                                f"in a row; expected whole vectors of dim {dim}")
            out.append(flat.reshape(-1, dim).tolist())
        return out
    raise DataError(f"field {fd.field_name!r}: sub-field {s.field_name!r} has type {t.name}; "
                    "expected ARRAY or ArrayOfVector")


def struct_values_from_pb(fd: schema_pb2.FieldData, n: int) -> list[list[dict[str, Any]] | None]:
    """Each row's list of element dicts (None for a null row), for the checks `convert_scalars` makes."""
    subs = fd.struct_arrays.fields
    valid = next((list(s.valid_data) for s in subs if len(s.valid_data)), None)
    if valid is not None and len(valid) != n:
        raise DataError(f"field {fd.field_name!r}: valid_data has {len(valid)} entries for {n} rows")
    kept = n if valid is None else sum(valid)
    cols: dict[str, list[list[Any]]] = {}
    for s in subs:
        cells = _cells(fd, s)
        if valid is not None and len(cells) == n:
            cells = [c for c, ok in zip(cells, valid) if ok]
        elif len(cells) != kept:
            raise DataError(f"field {fd.field_name!r}: sub-field {s.field_name!r} has {len(cells)} rows; "
                            f"expected {kept}")
        cols[sub_field_name(s.field_name)] = cells
    rows: list[list[dict[str, Any]] | None] = []
    k = 0
    for i in range(n):
        if valid is not None and not valid[i]:
            rows.append(None)
            continue
        sizes = {len(c[k]) for c in cols.values()}
        if len(sizes) > 1:
            raise DataError(f"field {fd.field_name!r} in row {i}: the sub-fields hold different numbers of "
                            f"elements {sorted(sizes)}; expected one value per element in each")
        rows.append([{name: c[k][j] for name, c in cols.items()} for j in range(sizes.pop() if sizes else 0)])
        k += 1
    return rows


def struct_field_data(f: StructFieldSchema, values: list[Any]) -> schema_pb2.FieldData:
    """A struct array column as Milvus returns it: a full column per sub-field, nulls in ``valid_data``."""
    fd = schema_pb2.FieldData(type=int(DataType._ARRAY_OF_STRUCT), field_name=f.name, field_id=f.field_id)
    compat.require_field(fd, "struct_arrays", f"struct array field {f.name!r}")
    for s in f.fields:
        sub = fd.struct_arrays.fields.add()
        sub.field_name, sub.field_id = s.name, s.field_id
        if f.nullable:
            sub.valid_data.extend(v is not None for v in values)
        if s.dtype is DataType.FLOAT_VECTOR:
            sub.type = int(DataType._ARRAY_OF_VECTOR)
            sub.vectors.dim = s.dim or 0
            va = sub.vectors.vector_array
            va.dim, va.element_type = s.dim or 0, int(DataType.FLOAT_VECTOR)
            for v in values:
                vf = va.data.add()
                vf.dim = s.dim or 0
                vf.float_vector.data.extend(np.asarray([e[s.name] for e in v or []], dtype=np.float32).ravel())
        else:
            sub.type = int(DataType.ARRAY)
            ad = sub.scalars.array_data
            ad.element_type = int(s.dtype)
            for v in values:
                getattr(ad.data.add(), _CELL_ATTR[s.dtype]).data.extend([e[s.name] for e in v or []])
    return fd
