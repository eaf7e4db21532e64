"""Every known difference from Milvus Lite, with its reason.

Keys are ``fnmatch`` patterns over test ids (``<case>-<variant>``). A listed
case is a strict expected failure: when the difference goes away it fails
as XPASS, and the entry is removed. ``heron bug:`` marks a Heron bug not
fixed yet; ``lite:`` marks a place where Milvus Lite differs from Milvus and
Heron follows Milvus.
"""

from __future__ import annotations

_CODES = (
    "lite: both refuse; Milvus Lite answers with its own generic code (6, the legacy IllegalArgument, or 1, "
    "Unexpected) where Milvus has a specific one (1100 parameter invalid, 800 database not found, 1600/1602 "
    "alias not found/exists, 65535 for the plain errors Milvus raises without a code), and Heron gives Milvus's"
)
_LITE_ASYNC = (
    "lite: AsyncMilvusClient's create_index waits on the AllocTimestamp RPC, which Milvus Lite "
    "does not implement (UNIMPLEMENTED)"
)
_LITE_TYPES = 'lite: Milvus Lite has no FLOAT16, BFLOAT16, INT8 or BINARY vectors ("does not support")'
_LITE_ALL_FIELDS = (
    "lite: Milvus Lite returns every field when a search names no output_fields; Milvus returns "
    "only the primary key and distance, and so does Heron"
)
_LITE_INDEX_PARAMS = (
    "lite: Milvus Lite's describe_index drops the build parameters (M, efConstruction, nlist, "
    "drop_ratio_build); Milvus lists them beside index_type as strings, and so does Heron"
)
_AUTOINDEX = (
    "heron bug: describe_index reports AUTOINDEX as the index it resolved to (HNSW, with M=16 and "
    "efConstruction=200 listed); Milvus and Milvus Lite report index_type AUTOINDEX and only the "
    "parameters the user gave. The catalog keeps only the resolved definition"
)

EXPECTED_DIFFERENCES: dict[str, str] = {
    "method.alter_index_properties-*": (
        "lite: Milvus Lite does not implement AlterIndex (UNIMPLEMENTED); Heron keeps index properties "
        "and describe_index shows them, as Milvus does"
    ),
    # -- Milvus Lite's generic error codes -----------------------------------------------------------
    "partition.drop_default-sync": _CODES,
    "alias.describe_missing-sync": _CODES,
    "alias.duplicate-sync": _CODES,
    "database.drop_non_empty-sync": _CODES,
    "database.use_missing-sync": _CODES,
    "database.create_twice-sync": _CODES,
    "database.drop_default-sync": _CODES,
    "bad_rows.*.wrong_dim-*": _CODES,
    "bad_rows.*.too_long-*": _CODES,
    "bad_rows.*.null_not_nullable-*": _CODES,
    "bad_index.unknown_type-sync": _CODES,
    "bad_index.unknown_metric-sync": _CODES,
    "bad_index.unknown_field-sync": _CODES,
    "bad_index.binary_metric_on_float-sync": _CODES,
    "bad_index.vector_index_on_scalar-sync": _CODES,
    "bad_schema.no_vector-sync": _CODES,
    "search.bad_filter-sync": _CODES,
    "search.unknown_field_filter-sync": _CODES,
    "search.unknown_anns_field-sync": _CODES,
    "query.bad_filter-sync": _CODES,
    "hybrid.weighted_count_mismatch-sync": _CODES,
    "collection.drop_index_loaded-sync": _CODES,
    # -- Heron bugs ------------------------------------------------------------------------------------
    "index.float.AUTOINDEX.*.describe_index-sync": _AUTOINDEX,
    "index.sparse.*.describe_index-sync": (
        "heron bug: describe_index lists the default it filled in (drop_ratio_build 0.0) beside the "
        "parameters given (none here); Milvus lists only those given. The catalog keeps only the "
        "resolved definition"
    ),
    "collection.quick_setup_options-sync": _AUTOINDEX
    + "; and lite: Milvus Lite numbers fields from 0, Milvus from 100, as Heron does",
    # -- where Milvus Lite differs from Milvus ---------------------------------------------------------
    "types.*.query_arith-*": (
        "lite: Milvus Lite's filter parser has no arithmetic operators (`int8 % 3 == 1`: "
        "\"unexpected character '%'\"); Milvus evaluates them, and so does Heron"
    ),
    "types.n_*.query_not_in-*": (
        "lite: Milvus Lite's `not in` keeps null rows; Milvus's NOT excludes them (a null matches "
        "nothing but `is null`, as `!=` and `not (...)` already do in both)"
    ),
    "types.*json.query_path_in-*": (
        'lite: Milvus Lite refuses `in` on a JSON path (`json["k"] in [1, 2]`: "left side of \'in\' '
        'must be a field reference"); Milvus accepts it, and so does Heron'
    ),
    "search.sparse_without_anns_field-sync": (
        "lite: Milvus Lite wants anns_field for a search on a collection whose only vector field is "
        "sparse; Milvus takes the one vector field"
    ),
    "method.refresh_load-sync": (
        "lite: Milvus Lite never reports a refresh load as done (pymilvus's wait times out); Milvus "
        "and Heron finish it"
    ),
    "method.list_users-sync": (
        "lite: Milvus Lite has no user management (UNIMPLEMENTED); Milvus, even with authorization "
        "off, lists its built-in user ['root'], and so does Heron without --auth"
    ),
    "method.list_roles-sync": (
        "lite: Milvus Lite has no user management (UNIMPLEMENTED); Milvus, even with authorization "
        "off, lists its built-in roles admin and public, and so does Heron without --auth"
    ),
    "query.between-sync": "lite: Milvus Lite refuses the chained range `10 < n < 15`, which Milvus accepts",
    "index.float.IVF_FLAT.*.describe_index-sync": _LITE_INDEX_PARAMS,
    "index.float.HNSW.*.describe_index-sync": _LITE_INDEX_PARAMS,
    "collection.quick_setup_describe-sync": "lite: Milvus Lite numbers fields from 0, Milvus from 100, as Heron does",
    "collection.drop_index-*": (
        "lite: Milvus Lite reports a released collection as Loaded once its index is dropped; Milvus "
        "reports NotLoad, as Heron does"
    ),
    "dynamic.upsert-sync": (
        "lite: Milvus Lite's upsert keeps dynamic keys the new row leaves out ('score'); Milvus's "
        "upsert replaces the whole row, as Heron does"
    ),
    "partition.create_twice-sync": (
        "lite: Milvus Lite refuses a partition created again (a KeyError: code 1, message 'p1'); "
        "Milvus treats it as done (idempotent), as Heron does"
    ),
    "index.float16.*": _LITE_TYPES,
    "index.bfloat16.*": _LITE_TYPES,
    "index.int8.*": _LITE_TYPES,
    "index.binary.*": _LITE_TYPES,
    "search.output_fields_default-sync": _LITE_ALL_FIELDS,
    "search.output_fields_0-*": _LITE_ALL_FIELDS,
    "search.partition_default-*": _LITE_ALL_FIELDS,
    "search.wrong_metric-sync": "lite: Milvus Lite ignores a search metric_type that differs from the index's; Milvus refuses it (1100)",
    "search.limit_too_big-sync": "lite: Milvus Lite accepts limit > 16384; Milvus refuses it",
    "search.unknown_output_field-sync": "lite: Milvus Lite ignores an output field that does not exist; Milvus refuses it",
    "query.unknown_output-sync": "lite: Milvus Lite ignores an output field that does not exist; Milvus refuses it",
    "search.wrong_dim-sync": 'lite: Milvus Lite fails inside numpy ("operands could not be broadcast", code 1) on a query vector of the wrong dim; Milvus refuses it (1100)',
    "query.no_filter_no_limit-sync": "lite: Milvus Lite answers a query with neither filter nor limit; Milvus refuses it",
    "collection.create_twice_same-sync": (
        "lite: Milvus Lite refuses to create a collection again with the same schema; Milvus treats it "
        "as done (idempotent), as Heron does"
    ),
    "collection.describe_schema-*": (
        "lite: Milvus Lite drops the collection description and reports consistency Strong (0); Milvus "
        "keeps the description and defaults to Bounded (2)"
    ),
    "collection.scalar_index-sync": "lite: Milvus Lite names a scalar index after its field, ignoring index_name",
    "delete.result_shape-sync": (
        "lite: Milvus Lite fills the delete result's ids (pymilvus then returns the keys asked for, "
        "100 included); Milvus returns {'delete_count': n}"
    ),
    "bad_rows.upsert.repeated_pk-*": (
        "lite: Milvus Lite accepts an upsert batch that repeats a key; Milvus 2.6 refuses it (1100, "
        '"duplicate primary keys are not allowed in the same batch"), as Heron does'
    ),
    "bad_index.hnsw_bad_m-sync": "lite: Milvus Lite accepts HNSW M=0; Milvus refuses it",
    "bad_index.ivf_bad_nlist-sync": "lite: Milvus Lite accepts IVF nlist=0; Milvus refuses it",
    "bad_schema.varchar_no_length-sync": "lite: Milvus Lite accepts a VARCHAR without max_length; Milvus refuses it",
    "bad_schema.bad_name-sync": "lite: Milvus Lite accepts the collection name '1 bad name'; Milvus refuses it",
    "partition.missing-sync": "lite: Milvus Lite answers a query on a partition that does not exist with no rows; Milvus refuses it (200)",
    "partition.lifecycle-*": "lite: Milvus Lite does not implement ReleasePartitions (UNIMPLEMENTED)",
    "partition.insert_query_search-*": "lite: Milvus Lite does not implement LoadPartitions (UNIMPLEMENTED)",
    "partition.load_state-*": "lite: Milvus Lite does not implement LoadPartitions (UNIMPLEMENTED)",
    "collection.quick_setup_describe-async": _LITE_ASYNC,
    "collection.create_twice_different-async": _LITE_ASYNC,
    "collection.create_index_then_load-async": _LITE_ASYNC,
    "collection.varchar_pk-async": _LITE_ASYNC,
    "dynamic.quick_setup_insert-async": _LITE_ASYNC,
}

# Test ids (patterns) listed above whose difference only the wire shows: heron.Client embedded
# agrees with Milvus Lite there.
SERVED_ONLY: frozenset[str] = frozenset()

_CLIENT_SIDE = (
    "heron.Client's batch builder refuses the row before any server call, as pymilvus does, but with "
    "1100 (Milvus's code for a bad row); pymilvus's own check gives its code 1. The builder (data/) "
    "does not yet say which of its checks pymilvus makes itself (missing, unknown and mistyped fields) "
    "and which only the server makes (dim, max_length, null), so the client cannot pick the code"
)

# Cases where heron.Client / heron.AsyncClient embedded, given the pymilvus program, differ from Milvus Lite.
EMBEDDED_EXPECTED: dict[str, str] = {
    "bad_rows.*.missing_vector-sync": _CLIENT_SIDE,
    "bad_rows.*.missing_scalar-sync": _CLIENT_SIDE,
    "bad_rows.*.missing_pk-sync": _CLIENT_SIDE,
    "bad_rows.*.wrong_type_int-sync": _CLIENT_SIDE,
    "bad_rows.*.wrong_type_str-sync": _CLIENT_SIDE,
    "bad_rows.*.unknown_field-sync": _CLIENT_SIDE,
    "bad_rows.*.second_row_bad-sync": _CLIENT_SIDE,
    "method.describe_replica-sync": (
        "lite: Milvus Lite does not implement GetReplicas (UNIMPLEMENTED); heron.Client answers as a "
        "one-node Milvus does, one replica of the loaded collection"
    ),
}
