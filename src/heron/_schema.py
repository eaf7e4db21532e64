"""Collection schemas: what a collection's rows look like.

`CollectionSchema` and `FieldSchema` follow pymilvus's classes (same
constructor arguments, `add_field` chaining, `to_dict`), so code written for
Milvus builds the same schema here. `validate()` is the single check every
layer relies on; the engine refuses a schema that does not pass it.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ._errors import SchemaError
from ._functions import Function, as_function, check_functions
from ._schema_params import FieldParams
from ._schema_values import _TEXT_KEYS, _coerce_type, _text_params, _typed_default_fits, _utc_text
from ._struct_checks import check_struct
from ._types import ARRAY_ELEMENT_TYPES, NUMPY_DTYPES, DataType

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
MAX_VARCHAR_LENGTH = 65535
MAX_DIM = 32768
MAX_ARRAY_CAPACITY = 4096
META_FIELD = "$meta"


class FieldSchema:
    """One field of a collection: name, type and type parameters.

    The arguments are pymilvus's: ``max_length`` for VARCHAR (and ARRAY of
    VARCHAR), ``dim`` for dense vectors, ``element_type`` and ``max_capacity``
    for ARRAY. Nothing is checked until `validate` (called when a collection
    is created), which raises `SchemaError` naming the field.
    """

    def __init__(
        self,
        name: str,
        dtype: DataType | int | str,
        description: str = "",
        *,
        is_primary: bool = False,
        auto_id: bool = False,
        max_length: int | None = None,
        dim: int | None = None,
        element_type: DataType | int | str | None = None,
        max_capacity: int | None = None,
        nullable: bool = False,
        default_value: Any = None,
        is_partition_key: bool = False,
        is_clustering_key: bool = False,
        **params: Any,
    ) -> None:
        self.name = name
        self.dtype = _coerce_type(dtype, f"field {name!r}")
        self.description = description
        self.is_primary = bool(is_primary)
        self.auto_id = bool(auto_id)
        self.max_length = None if max_length is None else int(max_length)
        self.dim = None if dim is None else int(dim)
        self.element_type = (
            None if element_type is None else _coerce_type(element_type, f"element_type of {name!r}")
        )
        self.max_capacity = None if max_capacity is None else int(max_capacity)
        self.nullable = bool(nullable)
        self.default_value = default_value
        self.is_partition_key = bool(is_partition_key)
        self.is_clustering_key = bool(is_clustering_key)
        self.params = _text_params(dict(params))
        self.field_id = 0
        #: For a field added to a live collection, the sequence number of that change: rows
        #: written before it read the default (or null). 0 for fields the collection was created with.
        self.added_seq = 0

    #: Whether a schema function computes this field (pymilvus's ``LocalBulkWriter`` reads it).
    is_function_output: bool = False

    @property
    def params(self) -> dict[str, Any]:
        """Type-independent parameters (analyzer, mmap, ...); ``params["dim"]`` etc. also read the attributes."""
        p: FieldParams = self.__dict__["_params"]
        p.owner = self
        return p

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        self.__dict__["_params"] = FieldParams(value)

    # -- text options ---------------------------------------------------------
    @property
    def enable_analyzer(self) -> bool:
        """Whether the field's text is analyzed (BM25 and ``text_match`` need it)."""
        return self.params.get("enable_analyzer") == "true"

    @property
    def enable_match(self) -> bool:
        """Whether ``text_match``/``phrase_match`` may filter on the field (it keeps a token index)."""
        return self.params.get("enable_match") == "true"

    @property
    def analyzer_params(self) -> dict[str, Any] | None:
        """The field's analyzer, as a dict; None for the default (``standard``)."""
        raw = self.params.get("analyzer_params")
        if raw is None:
            return None
        loaded = json.loads(raw) if isinstance(raw, str) else raw
        return loaded if isinstance(loaded, dict) else None

    # -- checks ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise `SchemaError` naming the field if its definition is unsound."""
        n = self.name
        if not isinstance(n, str) or not _NAME.match(n):
            raise SchemaError(
                f"field name {n!r} is invalid: expected a letter or '_' followed by letters, digits or '_'"
            )
        t = self.dtype
        if t in (DataType.NONE, DataType.UNKNOWN, DataType.STRING):
            raise SchemaError(f"field {n!r}: data type {t.name} cannot be stored; use VARCHAR for text")
        if t is DataType.VARCHAR:
            if self.max_length is None:
                raise SchemaError(f"field {n!r}: VARCHAR needs max_length (1..{MAX_VARCHAR_LENGTH})")
            if not 0 < self.max_length <= MAX_VARCHAR_LENGTH:
                raise SchemaError(
                    f"field {n!r}: max_length {self.max_length} is out of range; expected 1..{MAX_VARCHAR_LENGTH}"
                )
        if t.is_dense_vector:
            if self.dim is None:
                raise SchemaError(f"field {n!r}: {t.name} needs dim")
            if not 0 < self.dim <= MAX_DIM:
                raise SchemaError(f"field {n!r}: dim {self.dim} is out of range; expected 1..{MAX_DIM}")
            if t is DataType.BINARY_VECTOR and self.dim % 8:
                raise SchemaError(f"field {n!r}: BINARY_VECTOR dim {self.dim} must be a multiple of 8")
        if t is DataType.ARRAY:
            if self.element_type is None or self.element_type not in ARRAY_ELEMENT_TYPES:
                raise SchemaError(
                    f"field {n!r}: ARRAY needs element_type, one of "
                    f"{sorted(e.name for e in ARRAY_ELEMENT_TYPES)}; got {self.element_type!r}"
                )
            if self.max_capacity is None or not 0 < self.max_capacity <= MAX_ARRAY_CAPACITY:
                raise SchemaError(
                    f"field {n!r}: ARRAY needs max_capacity in 1..{MAX_ARRAY_CAPACITY}; got {self.max_capacity!r}"
                )
            if self.element_type is DataType.VARCHAR and self.max_length is None:
                raise SchemaError(f"field {n!r}: ARRAY of VARCHAR needs max_length")
        if self.is_primary:
            if t not in (DataType.INT64, DataType.VARCHAR):
                raise SchemaError(f"field {n!r}: a primary key must be INT64 or VARCHAR, not {t.name}")
            if self.nullable:
                raise SchemaError(f"field {n!r}: a primary key cannot be nullable")
            if self.default_value is not None:
                raise SchemaError(f"field {n!r}: a primary key cannot have a default value")
        elif self.auto_id:
            raise SchemaError(f"field {n!r}: auto_id is only allowed on the primary key")
        if t.is_vector and (self.nullable or self.default_value is not None):
            raise SchemaError(f"field {n!r}: vector fields cannot be nullable or have a default value")
        if self.default_value is not None:
            self._check_default()
        self._check_text_options()

    def _check_text_options(self) -> None:
        n, given = self.name, [k for k in _TEXT_KEYS if k in self.params]
        if not given:
            return
        if self.dtype is not DataType.VARCHAR:
            raise SchemaError(f"field {n!r}: {given[0]} is only allowed on VARCHAR fields, not {self.dtype.name}")
        for key in ("enable_analyzer", "enable_match"):
            if key in self.params and self.params[key] not in ("true", "false"):
                raise SchemaError(f"field {n!r}: {key} {self.params[key]!r} is not a bool")
        if "analyzer_params" in self.params:
            raw = self.params["analyzer_params"]
            try:
                loaded = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                loaded = None
            if not isinstance(loaded, dict):
                raise SchemaError(f"field {n!r}: analyzer_params {raw!r} is not a dict (or its JSON)")

    def _check_default(self) -> None:
        v, t, n = self.default_value, self.dtype, self.name
        ok = True
        if t is DataType.BOOL:
            ok = isinstance(v, bool)
        elif t.is_integer:
            ok = isinstance(v, int) and not isinstance(v, bool)
            if ok:
                import numpy as np

                info = np.iinfo(NUMPY_DTYPES[t])
                ok = info.min <= v <= info.max
        elif t in (DataType.FLOAT, DataType.DOUBLE):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif t is DataType.VARCHAR:
            ok = isinstance(v, str) and len(v) <= (self.max_length or 0)
        elif t in (DataType.JSON, DataType.ARRAY):
            ok = False
        elif t in (DataType.TIMESTAMPTZ, DataType.GEOMETRY):
            ok = _typed_default_fits(t, v)
        if not ok:
            raise SchemaError(f"field {n!r}: default_value {v!r} does not fit type {t.name}")
        if t is DataType.TIMESTAMPTZ:  # one text for one instant, whichever zone it was given in (UTC, as Milvus stores it)
            self.default_value = _utc_text(v)

    # -- conversion -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The field as pymilvus's `describe_collection` shows it."""
        params: dict[str, Any] = dict(self.params)
        if self.max_length is not None:
            params["max_length"] = self.max_length
        if self.dim is not None:
            params["dim"] = self.dim
        if self.max_capacity is not None:
            params["max_capacity"] = self.max_capacity
        d: dict[str, Any] = {
            "field_id": self.field_id,
            "name": self.name,
            "description": self.description,
            "type": self.dtype,
            "params": params,
        }
        if self.element_type is not None:
            d["element_type"] = self.element_type
        if self.is_primary:
            d["is_primary"] = True
        if self.auto_id:
            d["auto_id"] = True
        if self.nullable:
            d["nullable"] = True
        if self.default_value is not None:
            d["default_value"] = self.default_value
        if self.is_partition_key:
            d["is_partition_key"] = True
        if self.is_clustering_key:
            d["is_clustering_key"] = True
        return d

    def describe(self) -> dict[str, Any]:
        """The field as an entry of ``describe_collection()["fields"]`` (`to_dict`)."""
        return self.to_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldSchema:
        """The field that `to_dict` (or `describe_collection`) described; types as names or numbers."""
        params = dict(d.get("params") or {})
        f = cls(
            d["name"],
            d["type"],
            d.get("description", ""),
            is_primary=d.get("is_primary", False),
            auto_id=d.get("auto_id", False),
            max_length=params.pop("max_length", None),
            dim=params.pop("dim", None),
            element_type=d.get("element_type"),
            max_capacity=params.pop("max_capacity", None),
            nullable=d.get("nullable", False),
            default_value=d.get("default_value"),
            is_partition_key=d.get("is_partition_key", False),
            is_clustering_key=d.get("is_clustering_key", False),
            **params,
        )
        f.field_id = int(d.get("field_id", 0))
        f.added_seq = int(d.get("added_seq", 0))
        return f

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"FieldSchema({self.to_dict()!r})"


class StructFieldSchema(FieldSchema):
    """A struct array field: each row holds a list of elements with the same named sub-fields.

    pymilvus's class, same constructor and `add_field` chaining. Put it in a
    schema with ``schema.add_field(name, DataType.ARRAY, element_type=DataType.STRUCT,
    struct_schema=..., max_capacity=N)``; each row then holds a list of up to N
    dicts with these sub-fields (None where a nullable struct field is null).
    Sub-fields are scalars (the ARRAY element types) or FLOAT_VECTOR. In a
    schema it is a field of type ARRAY with element type STRUCT (as
    ``describe_collection`` shows it); ``fields`` are its sub-fields. Nothing is
    checked until the collection schema is validated.
    """

    def __init__(self, nullable: bool = False, description: str = "") -> None:
        super().__init__("", DataType.ARRAY, description, element_type=DataType.STRUCT, nullable=nullable)
        self.fields: list[FieldSchema] = []

    def add_field(self, field_name: str, datatype: DataType | int | str, **kwargs: Any) -> StructFieldSchema:
        """Append a sub-field (pymilvus's signature) and return the struct, for chaining."""
        desc = kwargs.pop("description", kwargs.pop("desc", ""))
        self.fields.append(FieldSchema(field_name, datatype, desc, **kwargs))
        return self

    def field(self, name: str) -> FieldSchema | None:
        """The sub-field called ``name``, or ``None``."""
        return next((f for f in self.fields if f.name == name), None)

    def validate(self) -> None:
        """Raise `SchemaError` naming the struct and sub-field if the definition is unsound."""
        check_struct(self, _NAME, MAX_ARRAY_CAPACITY)

    def to_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """The struct as pymilvus's ``StructFieldSchema.to_dict`` gives it."""
        d: dict[str, Any] = {"name": self.name, "description": self.description,
                             "fields": [f.to_dict() for f in self.fields]}
        if self.nullable:
            d["nullable"] = True
        if self.max_capacity is not None:
            d["max_capacity"] = self.max_capacity
        if self.params:
            d["params"] = copy.deepcopy(self.params)
        return d

    def describe(self) -> dict[str, Any]:
        """The field as an entry of ``describe_collection()["fields"]`` (pymilvus 3's form)."""
        d: dict[str, Any] = {
            "field_id": self.field_id, "name": self.name, "description": self.description,
            "type": DataType.ARRAY, "element_type": DataType.STRUCT,
            "params": {**self.params, "max_capacity": self.max_capacity},
        }
        if self.nullable:
            d["nullable"] = True
        subs = []
        for f in self.fields:
            fd = f.to_dict()
            sub = {"field_id": f.field_id, "name": f.name, "type": f.dtype, "description": f.description}
            if fd["params"]:
                sub["params"] = fd["params"]
            subs.append(sub)
        d["struct_fields"] = subs
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StructFieldSchema:
        """The struct field `describe` or `to_dict` (heron's or pymilvus's) gave."""
        s = cls(bool(d.get("nullable", False)), d.get("description", ""))
        s.name = d.get("name", "")
        params = dict(d.get("params") or {})
        cap = d.get("max_capacity", params.pop("max_capacity", None))
        s.max_capacity = None if cap is None else int(cap)
        s.params = params
        for sub in d.get("struct_fields") or d.get("fields") or []:
            s.fields.append(FieldSchema.from_dict(sub))
        s.field_id = int(d.get("field_id") or 0)
        s.added_seq = int(d.get("added_seq", 0))
        return s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructFieldSchema) and self.describe() == other.describe()

    def __repr__(self) -> str:
        return f"StructFieldSchema({self.to_dict()!r})"


def is_struct_dict(d: dict[str, Any]) -> bool:
    """Whether a field dict describes a struct array (ARRAY of STRUCT)."""
    et = d.get("element_type")
    return et is not None and _coerce_type(et, "element_type") is DataType.STRUCT


class CollectionSchema:
    """The fields of a collection plus collection-wide options.

    Build it with `add_field` (or ``Client.create_schema``); ``auto_id`` sets
    the primary key's, ``enable_dynamic_field`` keeps keys outside the schema
    in ``$meta``. `validate` raises `SchemaError` if it is unsound.
    """

    def __init__(
        self,
        fields: list[FieldSchema] | None = None,
        description: str = "",
        struct_fields: list[StructFieldSchema] | None = None,
        *,
        auto_id: bool | None = None,
        enable_dynamic_field: bool = False,
        primary_field: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.fields: list[FieldSchema] = list(fields or [])
        self.fields += [copy.deepcopy(x) if isinstance(x, StructFieldSchema) else StructFieldSchema.from_dict(x.to_dict())
                        for x in struct_fields or []]
        self.description = description
        self.auto_id = auto_id
        self.enable_dynamic_field = bool(enable_dynamic_field)
        self.functions: list[Function] = [as_function(fn) for fn in kwargs.pop("functions", None) or []]
        self.properties = dict(kwargs)
        if primary_field is not None:
            for f in self.fields:
                if f.name == primary_field:
                    f.is_primary = True
        self._mark_function_outputs()

    def add_field(self, field_name: str, datatype: DataType | int | str, **kwargs: Any) -> CollectionSchema:
        """Append a field (pymilvus's signature) and return the schema, for chaining."""
        desc = kwargs.pop("description", kwargs.pop("desc", ""))
        if kwargs.get("element_type") is not None and is_struct_dict(kwargs):
            return self._add_struct(field_name, datatype, desc, kwargs)
        field = FieldSchema(field_name, datatype, desc, **kwargs)
        if field.is_primary and self.auto_id is not None and "auto_id" not in kwargs:
            field.auto_id = self.auto_id
        self.fields.append(field)
        if self.functions:
            self._mark_function_outputs()
        return self

    def add_function(self, function: Any) -> CollectionSchema:
        """Add a schema function (Heron's `Function` or pymilvus's) and return the schema, for chaining.

        Its output fields are flagged ``is_function_output``; whether it fits
        the fields is checked by `validate`.
        """
        self.functions.append(as_function(function))
        self._mark_function_outputs()
        return self

    def _mark_function_outputs(self) -> None:
        outputs = {name for fn in self.functions for name in fn.output_field_names}
        for f in self.fields:
            setattr(f, "is_function_output", f.name in outputs)  # noqa: B010 - pymilvus reads this attribute

    def _add_struct(self, name: str, datatype: Any, desc: str, kw: dict[str, Any]) -> CollectionSchema:
        if _coerce_type(datatype, f"field {name!r}") is not DataType.ARRAY:
            raise SchemaError(f"field {name!r}: element_type STRUCT needs datatype ARRAY")
        given = kw.get("struct_schema")
        if given is None or not hasattr(given, "fields"):
            raise SchemaError(f"field {name!r}: ARRAY of STRUCT needs struct_schema (a StructFieldSchema)")
        struct = given if isinstance(given, StructFieldSchema) else StructFieldSchema.from_dict(given.to_dict())
        struct = copy.deepcopy(struct)
        struct.name, struct.description = name, desc or struct.description
        struct.nullable = bool(kw.get("nullable", False))
        struct.max_capacity = None if kw.get("max_capacity") is None else int(kw["max_capacity"])
        struct.params.update({k: kw[k] for k in ("mmap_enabled", "warmup") if k in kw})
        self.fields.append(struct)
        return self

    def add_struct_field(self, struct_field_schema: StructFieldSchema) -> CollectionSchema:
        """Append a named struct array field (its ``name`` and ``max_capacity`` set); returns the schema."""
        self.fields.append(struct_field_schema)
        return self

    @property
    def struct_fields(self) -> list[StructFieldSchema]:
        """The struct array fields (they are among ``fields`` too), in schema order."""
        return [f for f in self.fields if isinstance(f, StructFieldSchema)]

    def struct_field(self, name: str) -> StructFieldSchema | None:
        """The struct array field called ``name``, or ``None``."""
        return next((s for s in self.struct_fields if s.name == name), None)

    # -- lookups --------------------------------------------------------------
    @property
    def primary_field(self) -> FieldSchema:
        """The primary key field; `SchemaError` if the schema has none."""
        for f in self.fields:
            if f.is_primary:
                return f
        raise SchemaError("the schema has no primary key field")

    @property
    def vector_fields(self) -> list[FieldSchema]:
        """The vector fields, sparse included, in schema order."""
        return [f for f in self.fields if f.dtype.is_vector]

    def field(self, name: str) -> FieldSchema | None:
        """The field called ``name``, or ``None``."""
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def field_names(self) -> list[str]:
        """The names of the fields, in schema order (dynamic fields not included)."""
        return [f.name for f in self.fields]

    # -- checks ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise `SchemaError` naming the offending field if the schema is unsound."""
        if not self.fields:
            raise SchemaError("the schema has no fields; expected a primary key and a vector field")
        seen: set[str] = set()
        for f in self.fields:
            f.validate()
            if f.name in seen:
                raise SchemaError(f"field name {f.name!r} appears twice in the schema")
            if f.name == META_FIELD:
                raise SchemaError(f"field name {META_FIELD!r} is reserved for dynamic fields")
            seen.add(f.name)
        primaries = [f.name for f in self.fields if f.is_primary]
        if len(primaries) != 1:
            raise SchemaError(f"the schema needs exactly one primary key field; found {primaries or 'none'}")
        if self.auto_id and not self.primary_field.auto_id:
            self.primary_field.auto_id = True
        if not self.vector_fields:
            raise SchemaError("the schema needs at least one vector field")
        if self.primary_field.auto_id and self.primary_field.dtype is not DataType.INT64:
            raise SchemaError(f"field {self.primary_field.name!r}: auto_id needs an INT64 primary key")
        keys = [f.name for f in self.fields if f.is_partition_key]
        if len(keys) > 1:
            raise SchemaError(f"at most one partition key field is allowed; found {keys}")
        check_functions(self)
        self._mark_function_outputs()

    def assign_field_ids(self) -> None:
        """Number the fields 100, 101, ... in schema order, as Milvus does."""
        for i, f in enumerate(self._described()):
            f.field_id = 100 + i
        next_id = 100 + len(self.fields) - len(self.struct_fields)
        for st in self.struct_fields:
            st.field_id = next_id
            for j, sub in enumerate(st.fields):
                sub.field_id = next_id + 1 + j
            next_id += 1 + len(st.fields)

    def _described(self) -> list[FieldSchema]:
        """The fields in Milvus's order: the plain fields, then the struct array fields."""
        return [f for f in self.fields if not isinstance(f, StructFieldSchema)] + self.struct_fields

    # -- conversion -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The schema as `describe_collection` shows it: fields, ``auto_id``, dynamic field flag, functions.

        Function output fields carry ``is_function_output``, and each function
        its id and its fields' ids, as Milvus describes them.
        """
        d: dict[str, Any] = {
            "auto_id": bool(self.primary_field.auto_id) if any(f.is_primary for f in self.fields) else False,
            "description": self.description,
            "fields": [f.describe() for f in self._described()],
            "enable_dynamic_field": self.enable_dynamic_field,
        }
        if self.functions:
            outputs = {name for fn in self.functions for name in fn.output_field_names}
            for fd in d["fields"]:
                if fd["name"] in outputs:
                    fd["is_function_output"] = True
            ids = {f.name: f.field_id for f in self.fields}
            d["functions"] = [
                {**fn.to_dict(), "id": 100 + i if ids and all(ids.values()) else 0,
                 "input_field_ids": [ids[n] for n in fn.input_field_names if ids.get(n)],
                 "output_field_ids": [ids[n] for n in fn.output_field_names if ids.get(n)]}
                for i, fn in enumerate(self.functions)
            ]
        return d

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (types as numbers) for the catalog and the wire."""
        d = self.to_dict()
        for f, fd in zip(self._described(), d["fields"]):
            if f.added_seq:
                fd["added_seq"] = f.added_seq
            for x in (fd, *fd.get("struct_fields", ())):
                x["type"] = int(x["type"])
                if "element_type" in x:
                    x["element_type"] = int(x["element_type"])
        for fn in d.get("functions", ()):
            fn["type"] = int(fn["type"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionSchema:
        """The schema that `to_dict` (or `describe_collection`) described."""
        s = cls(
            [StructFieldSchema.from_dict(f) if is_struct_dict(f) else FieldSchema.from_dict(f)
             for f in d.get("fields", [])],
            d.get("description", ""),
            enable_dynamic_field=d.get("enable_dynamic_field", False),
            functions=[Function.from_dict(fn) for fn in d.get("functions") or []],
        )
        s.auto_id = d.get("auto_id")
        zone = (d.get("properties") or {}).get("timezone")
        if zone:  # TIMESTAMPTZ values given without an offset are read in it
            s.properties["timezone"] = zone
        return s

    def copy(self) -> CollectionSchema:
        """A deep copy: changing it leaves this schema as it was."""
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CollectionSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CollectionSchema({self.to_dict()!r})"
