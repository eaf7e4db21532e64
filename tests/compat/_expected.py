"""Every known difference from Milvus Lite, with its reason.

Keys are ``fnmatch`` patterns over test ids (``<case>-<variant>``). A listed
case is a strict expected failure: when the difference goes away it fails
as XPASS, and the entry is removed. ``being fixed:`` marks a Heron bug under
repair; ``lite:`` marks a place where Milvus Lite differs from Milvus and
Heron follows Milvus.
"""

from __future__ import annotations

_NULLABLE_BOOL = (
    "being fixed: a nullable BOOL column from pymilvus (null rows sent as 0 under a validity mask) "
    "is refused: \"field 'n_bool' in row 0: got 0, expected a bool\""
)

EXPECTED_DIFFERENCES: dict[str, str] = {
    # -- Heron bugs under repair ---------------------------------------------------------------------
    "types.n_bool.*": _NULLABLE_BOOL,
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
        "lite: Milvus Lite refuses `in` on a JSON path (`json[\"k\"] in [1, 2]`: \"left side of 'in' "
        "must be a field reference\"); Milvus accepts it, and so does Heron"
    ),
}

# Cases that heron.Client / heron.AsyncClient embedded cannot run yet with pymilvus's objects.
EMBEDDED_EXPECTED: dict[str, str] = {}
