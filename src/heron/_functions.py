"""Schema functions: fields a collection computes from other fields (BM25, text embedding).

`Function` and `FunctionType` follow pymilvus's classes (same constructor
arguments, ``to_dict``), so a schema written for Milvus declares the same
functions here. A function's output fields are filled by the engine when rows
are inserted or upserted and are never accepted from the user; a search on an
output field may pass texts, which the same function turns into query vectors.
`check_functions` is the one check of a schema's functions every layer relies
on; it raises `SchemaError` with Milvus's wording.
"""

from __future__ import annotations

import copy
from enum import IntEnum
from typing import Any

from ._errors import DataError, ParamError, SchemaError
from ._types import DataType


class FunctionType(IntEnum):
    """Kinds of function, with the numeric values of the Milvus protocol."""

    UNKNOWN = 0
    BM25 = 1
    TEXTEMBEDDING = 2
    RERANK = 3

    def __repr__(self) -> str:
        return f"<FunctionType.{self.name}: {self.value}>"

    def __str__(self) -> str:
        return self.name


#: The protocol's names (``TextEmbedding``) and pymilvus's (``TEXTEMBEDDING``), for types given as text.
_TYPE_NAMES = {"BM25": FunctionType.BM25, "TEXTEMBEDDING": FunctionType.TEXTEMBEDDING,
               "RERANK": FunctionType.RERANK, "UNKNOWN": FunctionType.UNKNOWN}
#: Output types of a TEXTEMBEDDING function, as Milvus allows them.
EMBEDDING_OUTPUT_TYPES = (DataType.FLOAT_VECTOR, DataType.INT8_VECTOR)


def function_type(value: Any) -> FunctionType:
    """``value`` (a `FunctionType`, pymilvus's, a number or a name) as a `FunctionType`; `ParamError` if unknown."""
    if isinstance(value, FunctionType):
        return value
    name = getattr(value, "name", None)
    if isinstance(value, str) or isinstance(name, str):
        key = str(name if isinstance(name, str) else value).upper().replace("_", "")
        if key in _TYPE_NAMES:
            return _TYPE_NAMES[key]
    else:
        try:
            return FunctionType(int(value))
        except (TypeError, ValueError):
            pass
    raise ParamError(f"function_type: got {value!r}, expected a heron.FunctionType (BM25, TEXTEMBEDDING or RERANK); "
                     "Unknown function type.")


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, str) for v in items):
        raise ParamError(f"{what}: got {value!r}, expected a field name or a list of field names")
    if len(set(items)) != len(items):
        raise ParamError(f"{what}: got {items!r}; duplicate field names are not allowed in a function")
    return items


class Function:
    """One schema function: ``name``, its type, the fields it reads and the fields it fills.

    ``params`` are the function's settings (for TEXTEMBEDDING, ``provider``
    and ``model_name``; BM25 takes none). The arguments are checked as
    pymilvus checks them; their fit with the schema is checked when the
    collection is created (`check_functions`).
    """

    def __init__(
        self,
        name: str,
        function_type: FunctionType | int | str,
        input_field_names: str | list[str],
        output_field_names: str | list[str] | None = None,
        description: str = "",
        params: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ParamError(f"function name: got {name!r}, expected a string")
        if not isinstance(description, str):
            raise ParamError(f"function {name!r}: description {description!r} is not a string")
        self.name = name
        self.description = description
        self.type = _as_type(function_type)
        self.input_field_names = _names(input_field_names, f"function {name!r} input_field_names")
        self.output_field_names = _names(output_field_names, f"function {name!r} output_field_names")
        if set(self.input_field_names) & set(self.output_field_names):
            raise ParamError(f"function {name!r}: input and output field names must be different; got "
                             f"{sorted(set(self.input_field_names) & set(self.output_field_names))}")
        if params is not None and not isinstance(params, dict):
            raise ParamError(f"function {name!r}: params {params!r} is not a dict")
        self.params: dict[str, Any] = dict(params or {})

    @property
    def function_type(self) -> FunctionType:
        """The function's type (pymilvus calls it ``type``; both names work)."""
        return self.type

    def to_dict(self) -> dict[str, Any]:
        """The function as pymilvus's ``Function.to_dict`` shows it."""
        return {
            "name": self.name,
            "description": self.description,
            "type": self.type,
            "input_field_names": list(self.input_field_names),
            "output_field_names": list(self.output_field_names),
            "params": copy.deepcopy(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Function:
        """The function that `to_dict` (or ``describe_collection``) described; the type by name or number."""
        return cls(d["name"], d.get("type", d.get("function_type", 0)), list(d.get("input_field_names") or []),
                   list(d.get("output_field_names") or []), d.get("description") or "", dict(d.get("params") or {}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Function) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Function({self.to_dict()!r})"


def _as_type(value: Any) -> FunctionType:
    try:
        return function_type(value)
    except ParamError:
        raise SchemaError(f"function_type: got {value!r}; Unknown function type. Expected BM25, TEXTEMBEDDING "
                          "or RERANK") from None


def as_function(obj: Any) -> Function:
    """Heron's `Function` for ``obj``: Heron's own, pymilvus's (by shape), or a dict as ``to_dict`` gives it."""
    if isinstance(obj, Function):
        return obj
    if isinstance(obj, dict):
        return Function.from_dict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and hasattr(obj, "input_field_names"):
        return Function.from_dict(dict(to_dict()))
    raise ParamError(f"function: got {type(obj).__name__}, expected a heron.Function (or pymilvus's Function)")


def _analyzed(field: Any) -> bool:
    flag = getattr(field, "enable_analyzer", None)
    if flag is None:
        flag = field.params.get("enable_analyzer", False)
    return flag is True or str(flag).lower() == "true"


def check_functions(schema: Any) -> None:
    """Raise `SchemaError` (Milvus's wording) if a function of ``schema`` does not fit its fields.

    Inputs and outputs must be fields of the schema of the types the function
    maps (BM25: an analyzed VARCHAR to a SPARSE_FLOAT_VECTOR; TEXTEMBEDDING: a
    VARCHAR to a FLOAT_VECTOR or INT8_VECTOR), an output field belongs to one
    function only and is never the primary key.
    """
    seen_names: set[str] = set()
    owner: dict[str, str] = {}
    for fn in schema.functions:
        if fn.name in seen_names:
            raise SchemaError(f"duplicate function name {fn.name!r}: function names must be unique in a schema")
        seen_names.add(fn.name)
        if fn.type not in (FunctionType.BM25, FunctionType.TEXTEMBEDDING):
            raise SchemaError(f"function {fn.name!r}: Unknown function type {fn.type.name}; a schema function "
                              "must be BM25 or TEXTEMBEDDING")
        for name in fn.input_field_names:
            if schema.field(name) is None:
                raise SchemaError(f"function {fn.name!r}: Function input field not found in collection schema: "
                                  f"{name!r}")
        for name in fn.output_field_names:
            f = schema.field(name)
            if f is None:
                raise SchemaError(f"function {fn.name!r}: Function output field not found in collection schema: "
                                  f"{name!r}")
            if f.is_primary:
                raise SchemaError(f"function {fn.name!r}: output field {name!r} is the primary key; a function "
                                  "output field cannot be the primary key")
            if name in owner:
                raise SchemaError(f"function output field {name!r} is used by multiple functions "
                                  f"({owner[name]!r} and {fn.name!r})")
            owner[name] = fn.name
        _check_shape(schema, fn)


def _check_shape(schema: Any, fn: Function) -> None:
    label = "BM25" if fn.type is FunctionType.BM25 else "TextEmbedding"
    if len(fn.input_field_names) != 1 or len(fn.output_field_names) != 1:
        raise SchemaError(f"function {fn.name!r}: {label} function must have exact 1 input and 1 output field; got "
                          f"inputs {fn.input_field_names} and outputs {fn.output_field_names}")
    src = schema.field(fn.input_field_names[0])
    out = schema.field(fn.output_field_names[0])
    if src.dtype is not DataType.VARCHAR:
        raise SchemaError(f"function {fn.name!r}: {label} function input field must be VARCHAR; field {src.name!r} "
                          f"is {src.dtype.name}")
    if fn.type is FunctionType.BM25:
        if out.dtype is not DataType.SPARSE_FLOAT_VECTOR:
            raise SchemaError(f"function {fn.name!r}: BM25 function output field must be SPARSE_FLOAT_VECTOR; "
                              f"field {out.name!r} is {out.dtype.name}")
        if not _analyzed(src):
            raise SchemaError(f"BM25 function {fn.name!r} input field {src.name!r} must have enable_analyzer=True")
    elif out.dtype not in EMBEDDING_OUTPUT_TYPES:
        raise SchemaError(f"function {fn.name!r}: TextEmbedding function output field must be FLOAT_VECTOR or "
                          f"INT8_VECTOR; field {out.name!r} is {out.dtype.name}")


def output_field_names(schema: Any) -> set[str]:
    """The names of the fields ``schema``'s functions fill."""
    return {name for fn in getattr(schema, "functions", ()) for name in fn.output_field_names}


def output_given_error(name: str) -> DataError:
    """The error for rows that give a value for function output field ``name`` (pymilvus's wording)."""
    return DataError(code=1, message=f"Attempt to insert an unexpected function output field `{name}` to collection: field "
                     f"{name!r} is computed by a schema function; give its input field instead")
