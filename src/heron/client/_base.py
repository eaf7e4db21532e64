"""What both clients share: argument checking, request building, result shaping.

`AsyncClient` (the source) and `Client` (generated from it) differ only in
``async``/``await`` and in the transport they create; everything that
turns user arguments into requests or answers into results lives here once.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from .. import _requests as rq
from .._errors import NotFoundError, ParamError, SchemaError
from .._schema import CollectionSchema, FieldSchema, StructFieldSchema
from .._types import DataType, LoadState
from ..data._emb_lists import search_data as vector_search_data
from ._consistency import consistency_level, guarantee_timestamp
from ._helpers import IndexParams
from ._milvus_objects import as_ann_request, as_function_score, as_index_specs, as_ranker, as_schema
from ._results import ReplicaInfo, Shard

_SEARCH_KEYS = ("metric_type", "params")
#: The metric of a search on a field without an index, by the field's type (COSINE for the others).
_UNINDEXED_METRIC = {DataType.SPARSE_FLOAT_VECTOR: "IP", DataType.BINARY_VECTOR: "HAMMING"}


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


class ClientBase:
    """Construction and request building shared by `Client` and `AsyncClient`."""

    def __init__(
        self,
        uri: str = "./heron.db",
        user: str = "",
        password: str = "",
        db_name: str = "",
        token: str = "",
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(uri, str) or not uri:
            raise ParamError(f"uri: got {uri!r}, expected a local path or http(s)://host:port")
        self._uri = uri
        self._db = db_name or "default"
        self._timeout = timeout
        self._token = token or (f"{user}:{password}" if user else "")
        self._schemas: dict[tuple[str, str], CollectionSchema] = {}
        self._options = kwargs

    # -- local helpers (plain calls on both clients) -----------------------------------
    @classmethod
    def create_schema(cls, **kwargs: Any) -> CollectionSchema:
        """An empty `CollectionSchema` (``auto_id``, ``enable_dynamic_field``, ...) for `add_field`."""
        return CollectionSchema(**kwargs)

    @classmethod
    def create_field_schema(cls, name: str, data_type: DataType, desc: str = "", **kwargs: Any) -> FieldSchema:
        """A `FieldSchema`; keywords are its parameters (``max_length``, ``dim``, ``is_primary``, ...)."""
        return FieldSchema(name, data_type, desc, **kwargs)

    @classmethod
    def create_struct_field_schema(cls, **kwargs: Any) -> StructFieldSchema:
        """An empty `StructFieldSchema` (``nullable``, ``description``) for `add_field` of its sub-fields."""
        return StructFieldSchema(**kwargs)

    @classmethod
    def prepare_index_params(cls, field_name: str = "", **kwargs: Any) -> IndexParams:
        """An `IndexParams` to fill with `add_index` (with one index already if ``field_name`` is given)."""
        return IndexParams(field_name, **kwargs)

    # -- request building --------------------------------------------------------------
    def _dbn(self, kwargs: dict[str, Any]) -> str:
        return kwargs.get("db_name") or self._db

    def _to(self, timeout: float | None) -> float | None:
        return timeout if timeout is not None else self._timeout

    def _create_collection_request(
        self, name: str, dimension: int | None, primary_field_name: str, id_type: str, vector_field_name: str,
        metric_type: str, auto_id: bool, schema: Any, index_params: Any, kwargs: dict[str, Any],
    ) -> rq.CreateCollection:
        db = self._dbn(kwargs)
        if schema is None:
            if dimension is None:
                raise ParamError("create_collection needs either schema= or dimension=")
            schema = self._quick_schema(dimension, primary_field_name, id_type, vector_field_name, auto_id, kwargs)
            if index_params is None:
                index_params = IndexParams(vector_field_name, index_type="AUTOINDEX", metric_type=metric_type)
        elif dimension is not None:
            raise ParamError("create_collection takes either schema= or dimension=, not both")
        schema = as_schema(schema)
        _check_primary(schema)
        schema.validate()
        return rq.CreateCollection(
            db, name, schema.to_json_dict(), as_index_specs(index_params) if index_params is not None else (),
            consistency_level(kwargs.get("consistency_level"), "Bounded"), dict(kwargs.get("properties") or {}),
        )

    @staticmethod
    def _quick_schema(dim: int, pk: str, id_type: str, vec: str, auto_id: bool, kw: dict[str, Any]) -> CollectionSchema:
        s = CollectionSchema(enable_dynamic_field=kw.get("enable_dynamic_field", True), auto_id=auto_id)
        if id_type in ("int", "INT64", DataType.INT64):
            s.add_field(pk, DataType.INT64, is_primary=True, auto_id=auto_id)
        elif id_type in ("str", "string", "VARCHAR", DataType.VARCHAR):
            if auto_id:
                raise ParamError("auto_id needs id_type='int'")
            s.add_field(pk, DataType.VARCHAR, is_primary=True, max_length=int(kw.get("max_length", 65535)))
        else:
            raise ParamError(f"id_type: got {id_type!r}, expected 'int' or 'string'")
        s.add_field(vec, DataType.FLOAT_VECTOR, dim=dimension_of(dim))
        return s

    def _search_request(
        self, collection_name: str, data: Any, filter: str, limit: int, output_fields: Any,  # noqa: A002
        search_params: dict[str, Any] | None, partition_names: Any, anns_field: str | None, kwargs: dict[str, Any],
    ) -> rq.Search:
        plain = self._plain_search_request(collection_name, data, filter, limit, output_fields, search_params,
                                           partition_names, anns_field, kwargs)
        if plain is not None:
            return plain
        ids = search_ids(kwargs.get("ids"), data)
        if ids is None and data is None:
            raise ParamError("search needs data= (query vectors) or ids= (primary keys of stored vectors)")
        if isinstance(data, (list, tuple)) and not data:
            raise ParamError("data: got an empty list, expected at least one query vector", code=_CLIENT_SIDE)
        sp = dict(search_params or {})
        params = dict(sp.pop("params", None) or {})
        metric = sp.pop("metric_type", "") or ""
        params.update(sp)
        offset = kwargs.get("offset", params.pop("offset", 0)) or 0
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise ParamError(f"offset: got {offset!r}, expected an integer >= 0")
        round_decimal = kwargs.get("round_decimal", -1)
        if isinstance(round_decimal, bool) or not isinstance(round_decimal, int) or not -1 <= round_decimal <= 6:
            raise ParamError(f"round_decimal: got {round_decimal!r}, expected an integer in -1..6 "
                             "(-1 keeps distances as they are)")
        group_by = kwargs.get("group_by_field", params.pop("group_by_field", "")) or ""
        group_size = int(kwargs.get("group_size", params.pop("group_size", 1)) or 1)
        strict = bool(kwargs.get("strict_group_size", params.pop("strict_group_size", False)))
        _check_limit(limit)
        ranker = kwargs.get("ranker")
        aggregation = as_aggregation(kwargs.get("search_aggregation"))
        if aggregation is not None and (group_by or kwargs.get("group_by_fields")):
            raise ParamError("search_aggregation and group_by_field cannot be used together")
        if kwargs.get("function_chains"):
            raise ParamError("function_chains and ranker cannot be used together" if ranker is not None else
                             "function_chains: not supported; pass rerank functions as ranker=")
        return rq.Search(
            self._dbn(kwargs), collection_name, None if ids is not None else search_data(data, anns_field), anns_field or "",
            filter or "", int(limit),
            int(offset), _fields(output_fields), str(metric).upper(), params, _names(partition_names),
            dict(kwargs.get("filter_params") or {}), group_by, group_size, strict,
            int(kwargs.get("round_decimal", -1)), consistency_level(kwargs.get("consistency_level")),
            None if ranker is None else as_function_score(ranker),
            str(kwargs.get("timezone") or ""), str(kwargs.get("time_fields") or ""), ids=ids,
            highlighter=as_highlighter(kwargs.get("highlighter")), aggregation=aggregation,
            guarantee_timestamp=guarantee_timestamp(kwargs),
        )

    def _plain_search_request(
        self, collection_name: str, data: Any, filter: str, limit: int, output_fields: Any,  # noqa: A002
        search_params: dict[str, Any] | None, partition_names: Any, anns_field: str | None, kwargs: dict[str, Any],
    ) -> rq.Search | None:
        """The request of a search with every option beyond the vectors at its default, or None for the others.

        It is the request `_search_request` builds for the same arguments, without the lookups and
        checks of options that are absent (most searches name none).
        """
        if data is None or not kwargs.keys() <= _PLAIN_SEARCH_KWARGS or (isinstance(data, (list, tuple)) and not data):
            return None
        for v in kwargs.values():  # a loop, not any(): this runs on every search
            if v is not None:
                return None
        params: dict[str, Any] = {}
        metric = ""
        if search_params:
            if not search_params.keys() <= _PLAIN_SEARCH_PARAMS:
                return None
            p = search_params.get("params")
            if p:
                params = dict(p)
                if not params.keys().isdisjoint(_PAGING_PARAMS):
                    return None
            metric = str(search_params.get("metric_type", "") or "").upper()
        if type(limit) is not int or limit < 1:
            _check_limit(limit)
        vectors = data if type(data) is np.ndarray and data.ndim == 2 and not (anns_field and "[" in anns_field) \
            else search_data(data, anns_field)  # the first: what search_data returns for such an array
        r = object.__new__(rq.Search)  # as rq.Search(...) makes it, less the frozen __init__'s one call per field
        r.__dict__.update(_SEARCH_DEFAULTS, db_name=self._db, collection_name=collection_name, data=vectors,
                          anns_field=anns_field or "", filter=filter or "", limit=int(limit),
                          output_fields=None if output_fields is None else _fields(output_fields),
                          metric_type=metric, params=params,
                          partition_names=_names(partition_names) if partition_names else (), filter_params={})
        return r

    def _hybrid_request(
        self, collection_name: str, reqs: list[Any], ranker: Any, limit: int, output_fields: Any,
        partition_names: Any, kwargs: dict[str, Any],
    ) -> rq.HybridSearch:
        _check_limit(limit)
        subs = []
        for req in map(as_ann_request, reqs):
            subs.append(self._search_request(
                collection_name, req.data, req.expr, req.limit, None, req.param, partition_names, req.anns_field,
                {**kwargs, "filter_params": req.expr_params, "offset": 0, "group_by_field": ""},
            ))
        return rq.HybridSearch(
            self._dbn(kwargs), collection_name, tuple(subs), as_ranker(ranker), int(limit), int(kwargs.get("offset", 0)),
            _fields(output_fields), _names(partition_names), int(kwargs.get("round_decimal", -1)),
            str(kwargs.get("group_by_field") or ""), int(kwargs.get("group_size") or 1),
            bool(kwargs.get("strict_group_size", False)),
            str(kwargs.get("timezone") or ""), str(kwargs.get("time_fields") or ""),
            consistency_level(kwargs.get("consistency_level")), guarantee_timestamp(kwargs),
        )

    def _query_request(
        self, collection_name: str, filter: str, output_fields: Any, ids: Any,  # noqa: A002
        partition_names: Any, kwargs: dict[str, Any],
    ) -> rq.Query:
        if ids is not None and filter:
            raise ParamError("query takes either ids or filter, not both")
        if not kwargs:  # the usual get or query: every option at its default, nothing more to check
            return rq.Query(self._db, collection_name, filter or "", _fields(output_fields), _ids(ids),
                            _names(partition_names))
        limit = kwargs.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                                  or limit == 0 or limit < -1):
            raise ParamError(f"limit: got {limit!r}, expected a positive integer (or -1, for every row)")
        offset = kwargs.get("offset", 0) or 0
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise ParamError(f"offset: got {offset!r}, expected an integer >= 0")
        return rq.Query(
            self._dbn(kwargs), collection_name, filter or "", _fields(output_fields), _ids(ids),
            _names(partition_names), None if limit in (None, -1) else int(limit), int(offset),
            dict(kwargs.get("filter_params") or {}), consistency_level(kwargs.get("consistency_level")),
            timezone=str(kwargs.get("timezone") or ""), time_fields=str(kwargs.get("time_fields") or ""),
            guarantee_timestamp=guarantee_timestamp(kwargs),
        )


def search_data(data: Any, anns_field: str | None = None) -> Any:
    """Search inputs: query vectors, embedding lists for a struct sub-field (`vector_search_data`), or texts.

    Texts come as a 1-d array of strings.

    Texts are for a field a schema function fills (BM25, TEXTEMBEDDING); the
    engine turns them into query vectors with that function.
    """
    if isinstance(data, str):
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(t, str) for t in data):
        return np.array(list(data), dtype=object)
    return vector_search_data(data, anns_field)


def cursor_filter(pk: str, cursor: Any, filter: str) -> str:  # noqa: A002
    """``filter`` limited to primary keys above ``cursor`` (None: the first page), the key on the left.

    A text key is written as a double-quoted literal with JSON escapes, which the filter language reads.
    """
    if cursor is None:
        return filter
    literal = json.dumps(cursor) if isinstance(cursor, str) else str(int(cursor))
    return f"{pk} > {literal}" + (f" and ({filter})" if filter.strip() else "")


def search_field(request: rq.Search, schema: CollectionSchema) -> str:
    """The vector field a search runs on: its ``anns_field``, else the schema's first vector field."""
    vectors = schema.vector_fields
    return request.anns_field or (vectors[0].name if vectors else "")


def search_metric(request: rq.Search, schema: CollectionSchema, index: dict[str, Any] | None) -> str:
    """The metric a search runs with: its own, else that of ``index`` (its field's), else its field type's default."""
    if request.metric_type:
        return request.metric_type
    if index is not None:
        return str(index["metric_type"])
    f = schema.field(search_field(request, schema))
    return _UNINDEXED_METRIC.get(f.dtype, "COSINE") if f is not None else "COSINE"


def described(desc: dict[str, Any]) -> dict[str, Any]:
    """A collection description with its property values as strings, as Milvus keeps them (``str(v)``, as pymilvus sends them)."""
    props = desc.get("properties") or {}
    return {**desc, "properties": {str(k): v if isinstance(v, str) else str(v) for k, v in props.items()}}


def property_keys_of(keys: Any) -> tuple[str, ...]:
    if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
        raise ParamError(f"property_keys: got {keys!r}, expected a list of property names")
    return tuple(keys)


#: The node that serves every replica: Heron is one node.
_NODE_ID = 1


def one_node_replicas(name: str, desc: dict[str, Any], state: Any) -> list[ReplicaInfo]:
    """The replica a one-node Milvus reports for a loaded collection: one, with one shard, on its node."""
    if state not in (LoadState.Loaded, LoadState.Loading):
        raise NotFoundError(
            f"failed to get replicas by collection: replica not found[collection={name}]: the collection is not loaded",
            code=400,
        )
    cid = int(desc.get("collection_id", 0))
    shard = Shard(f"heron-dml_0_{cid}v0", frozenset({_NODE_ID}), _NODE_ID)
    return [ReplicaInfo(cid, [shard], (_NODE_ID,))]


def dimension_of(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
        raise ParamError(f"dimension: got {dim!r}, expected a positive integer")
    return int(dim)


# Code 1 where pymilvus refuses the same argument itself, before any server call.
_CLIENT_SIDE = 1


#: The keywords `search` always passes on, each None unless the caller set it.
_PLAIN_SEARCH_KWARGS = frozenset({"ranker", "function_chains", "ids", "highlighter", "search_aggregation"})
#: ``search_params`` keys a plain search may have.
_PLAIN_SEARCH_PARAMS = frozenset({"params", "metric_type"})
#: Keys inside ``params`` that are options of the search, not of the index.
#: `rq.Search`'s field defaults, for a plain search (``filter_params``, a dict of its own each time, aside).
_SEARCH_DEFAULTS = {f.name: f.default for f in dataclasses.fields(rq.Search) if f.default is not dataclasses.MISSING}
_PAGING_PARAMS = frozenset({"offset", "group_by_field", "group_size", "strict_group_size"})


def _check_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ParamError(f"limit: got {limit!r}, expected a positive integer", code=_CLIENT_SIDE)


def _check_primary(schema: CollectionSchema) -> None:
    primaries = [f.name for f in schema.fields if f.is_primary]
    if len(primaries) != 1:
        raise SchemaError(f"the schema needs exactly one primary key field; found {primaries or 'none'}",
                          code=_CLIENT_SIDE)


def _fields(output_fields: Any) -> tuple[str, ...] | None:
    if output_fields is None:
        return None
    if isinstance(output_fields, str):
        return (output_fields,)
    return tuple(output_fields)


def _names(names: Any) -> tuple[str, ...]:
    if not names:
        return ()
    if isinstance(names, str):
        return (names,)
    return tuple(names)


def _ids(ids: Any) -> Any:
    if ids is None:
        return None
    if isinstance(ids, (int, str, np.integer)):
        return [ids]
    return list(ids)


def search_ids(ids: Any, data: Any) -> tuple[Any, ...] | None:
    """A search's ``ids=`` as a tuple of primary keys (None when not given); `ParamError` for a bad one."""
    if ids is None:
        return None
    if data is not None:
        raise ParamError("search takes either data= (query vectors) or ids= (primary keys), not both")
    keys = (ids,) if isinstance(ids, (int, str, np.integer)) else tuple(ids)
    if not keys:
        raise ParamError("ids: got an empty list, expected at least one primary key")
    if any(isinstance(k, (bool, np.bool_)) for k in keys):
        raise ParamError(f"ids: got {list(keys)!r}; primary keys are integers or strings, not booleans")
    if all(isinstance(k, (int, np.integer)) for k in keys):
        return tuple(int(k) for k in keys)
    if all(isinstance(k, str) for k in keys):
        return keys
    raise ParamError(f"ids: got {list(keys)!r}, expected primary keys all integers or all strings")


#: Bytes per unit of pymilvus's ``target_size_unit``.
_SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}
#: The largest target size Milvus takes, in MB (a signed 64-bit count).
_MAX_TARGET_MB = (1 << 63) - 1


def compact_options(is_clustering: Any, is_l0: Any, target_size: Any, unit: Any) -> tuple[bool, bool, int]:
    """``compact``'s options as `Compact` takes them (target size in MB, 0 when none), checked as pymilvus does."""
    for name, value in (("is_clustering", is_clustering), ("is_l0", is_l0)):
        if not isinstance(value, bool):
            raise ParamError(f"{name}: got {value!r}, expected True or False")
    if target_size is None:
        return is_clustering, is_l0, 0
    if isinstance(target_size, bool) or not isinstance(target_size, (int, np.integer)) or target_size <= 0:
        raise ParamError(f"target_size: got {target_size!r}, expected a positive integer")
    key = str(unit).strip().lower()
    if key not in _SIZE_UNITS:
        raise ParamError(f"target_size_unit: got {unit!r}, expected one of {', '.join(_SIZE_UNITS)}")
    mb = int(target_size) * _SIZE_UNITS[key] >> 20
    if not 0 < mb <= _MAX_TARGET_MB:
        raise ParamError(f"target_size: {target_size}{key} is {'under 1 MB' if mb <= 0 else 'too large'}; "
                         f"expected 1 MB to {_MAX_TARGET_MB} MB")
    return is_clustering, is_l0, mb


def as_highlighter(h: Any) -> dict[str, Any] | None:
    """pymilvus's ``LexicalHighlighter`` (or a dict of its params, or ``{"type", "params"}``) as `Search` takes it."""
    if h is None:
        return None
    if isinstance(h, dict):
        if "params" in h or "type" in h:
            return {"type": str(h.get("type", "lexical")).lower(), "params": dict(h.get("params") or {})}
        return {"type": "lexical", "params": dict(h)}
    params = getattr(h, "params", None)
    if not isinstance(params, dict):
        raise ParamError(f"highlighter: got {type(h).__name__}, expected a LexicalHighlighter or a dict of its params")
    kind = getattr(h, "type", 0)
    name = "lexical" if kind in (0, "lexical", "LEXICAL") else getattr(kind, "name", str(kind)).lower()
    return {"type": name, "params": dict(params)}


def _spec_from_proto(a: Any) -> dict[str, Any]:
    """A pymilvus ``SearchAggregation`` read through its protobuf (the wire modules load only here:
    an embedded client never imports pymilvus's protocol package, nor pandas through it)."""
    from ..wire._aggregation import spec_from_pb

    return spec_from_pb(a.to_proto())


def as_aggregation(a: Any) -> dict[str, Any] | None:
    """pymilvus's ``SearchAggregation`` (or a dict of its constructor's arguments) as `Search` takes it."""
    if a is None:
        return None
    if hasattr(a, "to_proto") and not isinstance(a, dict):
        return _spec_from_proto(a)
    if not isinstance(a, dict):
        raise ParamError(f"search_aggregation: got {type(a).__name__}, expected a SearchAggregation or a dict")
    return _aggregation_dict(a, "search_aggregation")


def _aggregation_dict(a: dict[str, Any], where: str) -> dict[str, Any]:
    fields, size = a.get("fields"), a.get("size")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f for f in fields):
        raise ParamError(f"{where}.fields: got {fields!r}, expected a non-empty list of field names")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ParamError(f"{where}.size: got {size!r}, expected a positive integer")

    def pairs(items: Any, name: str) -> list[tuple[str, str]]:
        if not isinstance(items, list) or not all(isinstance(i, dict) and len(i) == 1 for i in items):
            raise ParamError(f"{where}.{name}: got {items!r}, expected a list of one-key dicts like {{'x': 'asc'}}")
        out = [next(iter(i.items())) for i in items]
        if any(d not in ("asc", "desc") for _, d in out):
            raise ParamError(f"{where}.{name}: got {items!r}; directions are 'asc' or 'desc'")
        return out

    metrics = {}
    for alias, m in (a.get("metrics") or {}).items():
        if not isinstance(m, dict) or len(m) != 1:
            raise ParamError(f"{where}.metrics[{alias!r}]: got {m!r}, expected {{op: field}}")
        op, field_name = next(iter(m.items()))
        metrics[alias] = {"op": op, "field": field_name}
    th = a.get("top_hits")
    if th is not None:
        th = th if isinstance(th, dict) else {"size": getattr(th, "size", None), "sort": getattr(th, "sort", [])}
        if isinstance(th.get("size"), bool) or not isinstance(th.get("size"), int) or th["size"] <= 0:
            raise ParamError(f"{where}.top_hits.size: got {th.get('size')!r}, expected a positive integer")
        th = {"size": th["size"], "sort": [{"field": f, "direction": d} for f, d in pairs(th.get("sort") or [], "top_hits.sort")]}
    sub = a.get("sub_aggregation")
    if sub is not None:
        sub = _aggregation_dict(sub, where + ".sub_aggregation") if isinstance(sub, dict) \
            else _spec_from_proto(sub)
    return {"fields": fields, "size": size, "metrics": metrics,
            "order": [{"key": k, "direction": d} for k, d in pairs(a.get("order") or [], "order")],
            "top_hits": th, "sub": sub}
