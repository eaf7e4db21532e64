"""Schema evolution and properties of fields and indexes on a live collection.

`SchemaOps` answers `AddCollectionField`, `AlterCollectionField`,
`DropCollectionField` and `AlterIndexProperties`. A change is checked
whole, written to the catalog, and only then applied in memory, so a
refused or failed change leaves the collection as it was.

A field added to a live collection must be nullable or have a default
(Milvus asks for nullable): the rows stored before it read that default, or
null. Each segment gets a column of it at once (built in one step, no loop
over the rows), and segment files and log records written before the
change, which lack the column, are given it as they are read back
(`heron.engine.storage._ipc.record_batch_to_batch`, by the field's
``added_seq``). A dropped field leaves the schema at once; segment files keep
its column until they are rewritten, and readers ignore it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import AlreadyExistsError, ParamError, SchemaError
from .._schema import MAX_ARRAY_CAPACITY, MAX_VARCHAR_LENGTH, META_FIELD, FieldSchema, StructFieldSchema
from .._types import DataType
from ..data._fill import filled_column
from ._collection import Collection
from ._segment import Segment, _Buffer
from .storage._catalog import dumps

if TYPE_CHECKING:
    from ._engine import Engine

#: Field properties `AlterCollectionField` changes, as Milvus allows them.
FIELD_PROPERTIES = ("max_length", "max_capacity", "mmap.enabled")
#: Index properties `AlterIndexProperties` changes, as Milvus allows them.
INDEX_PROPERTIES = ("mmap.enabled",)


def _bool_property(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ParamError(f"property {key!r}: got {value!r}, expected true or false")


class SchemaOps:
    """The schema and property changes of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = engine.catalog

    # -- fields ------------------------------------------------------------------------------
    def op_add_collection_field(self, r: rq.AddCollectionField) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        f = FieldSchema.from_dict(r.field)
        self._check_new_field(coll, f)
        self._add_field(coll, f)

    def op_add_collection_struct_field(self, r: rq.AddCollectionStructField) -> None:
        """Add a struct array field; it must be nullable, and the rows stored before read null."""
        coll = self.engine.collection(r.db_name, r.collection_name)
        f = StructFieldSchema.from_dict(r.field)
        if not f.nullable:
            raise ParamError(f"struct field {f.name!r}: adding a struct field to an existing collection "
                             "requires nullable=True")
        try:
            f.validate()
        except SchemaError as exc:
            raise ParamError(str(exc)) from None
        self._add_field(coll, f)

    def _add_field(self, coll: Collection, f: FieldSchema) -> None:
        self.engine.wait_background()  # merges under way hold segments built for the schema before the change
        with coll.write_lock:
            if coll.schema.field(f.name) is not None:
                raise AlreadyExistsError(f"duplicate field name: {f.name}", code=1100)
            f.field_id = 1 + max((x.field_id for x in _with_sub_fields(coll.schema.fields)), default=99)
            for i, sub in enumerate(f.fields if isinstance(f, StructFieldSchema) else ()):
                sub.field_id = f.field_id + 1 + i
            f.added_seq = self.engine.next_seq()
            schema = coll.schema.copy()
            schema.fields.append(f)
            self._save_schema(coll, schema)
            for p in coll.partitions.values():
                for seg in p.segments():
                    _add_column(seg, f)
            coll.schema.fields = [*coll.schema.fields, f]
            coll._plans.clear()

    def _check_new_field(self, coll: Collection, f: FieldSchema) -> None:
        name = f.name
        if f.is_primary:
            raise ParamError(f"not support to add pk field, field name = {name}")
        if f.auto_id:
            raise ParamError(f"only primary field can speficy AutoID with true, field name = {name}")
        if f.is_partition_key:
            raise ParamError(f"not support to add partition key field, field name = {name}")
        if f.dtype.is_vector:
            raise ParamError(f"not support to add vector field, field name = {name}: Heron's vector fields "
                             "cannot be nullable, so rows already stored would have no value")
        if not f.nullable and f.default_value is None:
            raise ParamError(f"added field must be nullable, please check it, field name = {name}: "
                             "rows already stored need a value (pass nullable=True or a default_value)")
        if name == META_FIELD:
            raise ParamError(f"field name {META_FIELD!r} is reserved for dynamic fields")
        try:
            f.validate()
        except SchemaError as exc:
            raise ParamError(exc.message) from None
        if coll.schema.field(name) is not None:
            raise AlreadyExistsError(f"duplicate field name: {name}", code=1100)

    def op_alter_collection_field(self, r: rq.AlterCollectionField) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            f = coll.schema.field(r.field_name)
            if f is None:
                raise ParamError(f"field not found[field={r.field_name}]: collection {coll.name!r} has no field "
                                 f"{r.field_name!r}; fields are {coll.schema.field_names()}")
            new = type(f).from_dict(f.describe())
            new.added_seq = f.added_seq
            for key, value in r.properties.items():
                _set_field_property(f, new, key, value)
            for key in r.delete_keys:
                if key not in FIELD_PROPERTIES:
                    raise ParamError(f"field property {key!r} cannot be removed; expected one of {list(FIELD_PROPERTIES)}")
                if key == "mmap.enabled":
                    new.params.pop("mmap_enabled", None)
            schema = coll.schema.copy()
            schema.fields = [new if x.name == f.name else x for x in schema.fields]
            self._save_schema(coll, schema)
            coll.schema.fields = [new if x is f else x for x in coll.schema.fields]
            for p in coll.partitions.values():
                for seg in p.segments():
                    seg.element_types[new.name] = new.element_type
            coll._plans.clear()

    def op_drop_collection_field(self, r: rq.DropCollectionField) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            f = next((x for x in coll.schema.fields
                      if (x.name == r.field_name if r.field_name else x.field_id == r.field_id)), None)
            if f is None:
                what = r.field_name or f"id {r.field_id}"
                raise ParamError(f"field not found[field={what}]: collection {coll.name!r} has no field {what!r}")
            if f.is_primary:
                raise ParamError(f"can not drop primary key field, field name = {f.name}")
            if f.is_partition_key or f.is_clustering_key:
                raise ParamError(f"can not drop partition key or clustering key field, field name = {f.name}")
            if f.dtype.is_vector and len(coll.schema.vector_fields) == 1:
                raise ParamError(f"can not drop the last vector field, field name = {f.name}")
            used = [d.index_name for d in coll.indexes.values()
                    if d.field_name == f.name or d.field_name.startswith(f.name + "[")]
            if used:
                raise ParamError(f"field {f.name!r} has index {used[0]!r}; drop the index before the field")
            schema = coll.schema.copy()
            schema.fields = [x for x in schema.fields if x.name != f.name]
            self._save_schema(coll, schema)
            coll.schema.fields = [x for x in coll.schema.fields if x is not f]
            for p in coll.partitions.values():
                for seg in p.segments():
                    seg._view = None
            coll._plans.clear()
            coll.anns_fields.clear()

    def _save_schema(self, coll: Collection, schema: Any) -> None:
        self.catalog.execute("UPDATE collections SET schema=? WHERE id=?", (dumps(schema.to_json_dict()), coll.id))

    # -- indexes -----------------------------------------------------------------------------
    def op_alter_index_properties(self, r: rq.AlterIndexProperties) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            d = self.engine.catalog_ops._index(coll, r.index_name)
            props = dict(d.properties)
            for key, value in r.properties.items():
                if key not in INDEX_PROPERTIES:
                    raise ParamError(f"{key} is not a configable index property; expected one of "
                                     f"{list(INDEX_PROPERTIES)}")
                props[key] = _bool_property(key, value)
            for key in r.delete_keys:
                if key not in INDEX_PROPERTIES:
                    raise ParamError(f"{key} is not a configable index property; expected one of "
                                     f"{list(INDEX_PROPERTIES)}")
                props.pop(key, None)
            self.catalog.execute("UPDATE indexes SET params=? WHERE collection_id=? AND index_name=?",
                                 (dumps(d.catalog_params(props)), coll.id, d.index_name))
            d.properties = props


def _set_field_property(old: FieldSchema, new: FieldSchema, key: str, value: Any) -> None:
    if key == "mmap.enabled":
        new.params["mmap_enabled"] = _bool_property(key, value)
        return
    if key not in FIELD_PROPERTIES:
        raise ParamError(f"field property {key!r} cannot be changed; expected one of {list(FIELD_PROPERTIES)}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ParamError(f"field {old.name!r}: {key} {value!r} is not an integer") from None
    if key == "max_length":
        if not (old.dtype is DataType.VARCHAR or old.element_type is DataType.VARCHAR):
            raise ParamError(f"field {old.name!r}: max_length applies to VARCHAR fields, not {old.dtype.name}")
        if not number <= MAX_VARCHAR_LENGTH:
            raise ParamError(f"field {old.name!r}: max_length {number} is out of range; expected "
                             f"{old.max_length}..{MAX_VARCHAR_LENGTH}")
        if number < (old.max_length or 0):
            raise ParamError(f"field {old.name!r}: max_length {number} is below the current {old.max_length}; "
                             "stored values could be longer, so it can only grow")
        new.max_length = number
    else:
        if old.dtype is not DataType.ARRAY:
            raise ParamError(f"field {old.name!r}: max_capacity applies to ARRAY fields, not {old.dtype.name}")
        if not (old.max_capacity or 0) <= number <= MAX_ARRAY_CAPACITY:
            raise ParamError(f"field {old.name!r}: max_capacity {number} is out of range; expected "
                             f"{old.max_capacity}..{MAX_ARRAY_CAPACITY} (it can only grow)")
        new.max_capacity = number


def _with_sub_fields(fields: list[FieldSchema]) -> list[FieldSchema]:
    return [x for f in fields for x in (f, *(f.fields if isinstance(f, StructFieldSchema) else ()))]


def _add_column(seg: Segment, f: FieldSchema) -> None:
    """Give ``seg`` a column of ``f`` for the rows it holds: the default, or nulls (caller holds the write lock)."""
    seg.texts.pop(f.name, None)
    seg._add_store(f.name, f.dtype, f.dim, f.element_type)
    col = filled_column(f, seg.n)
    store = seg.cols[f.name]
    store.append(col.values)
    if col.valid is not None:
        vb = _Buffer(bool)
        vb.append(col.valid)
        seg.valid[f.name] = vb
    texts = seg.texts.get(f.name)
    if texts is not None:
        texts.append(col.texts)
    if seg.sealed:
        for b in (store, seg.valid[f.name]):
            if isinstance(b, _Buffer):
                b.freeze()
    seg.dtypes[f.name] = f.dtype
    seg.element_types[f.name] = f.element_type
    seg._view = None  # a sealed segment's kept view holds the columns it read


def complete_batch(schema: Any, batch: Any) -> Any:
    """``batch`` with a column of default (or null) for each field added to the collection that it lacks.

    A client that read the schema before a field was added sends rows
    without it; they take the value the rows stored before take.
    """
    for f in schema.fields:
        if f.added_seq and not f.dtype.is_vector and f.name not in batch.columns:
            batch.columns[f.name] = filled_column(f, batch.num_rows)
    return batch
