"""Search by primary keys: the stored vectors of the given keys are the queries.

Milvus 2.6.9+ (and pymilvus 3's ``search(ids=...)``): the keys name rows of the
collection (in any partition; they select queries, they do not filter hits), the
searched field's vectors of those rows become the query vectors in the order of
the keys, one list of hits per key. A key that is not stored is an error, as is
a field a BM25 function fills from text (it has no stored vectors to search with).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import ParamError
from ..data._vectors import query_vectors

if TYPE_CHECKING:
    from ._engine import Engine
    from ._reads import Reader


def by_ids(engine: Engine, reads: Reader, search: Callable[[rq.Search], Any]) -> Callable[[rq.Search], Any]:
    """``search``, first replacing the ``ids`` of a search by primary keys with their stored vectors."""

    def run(r: rq.Search) -> Any:
        if r.ids is None:
            return search(r)
        return search(resolve(engine, reads, r))

    run.__wrapped__ = search  # type: ignore[attr-defined]  # the search it wraps (inspect.unwrap)
    return run


def resolve(engine: Engine, reads: Reader, r: rq.Search) -> rq.Search:
    """``r`` with ``data`` the vectors its ``ids`` hold in the searched field (``ids`` cleared)."""
    coll = engine.collection(r.db_name, r.collection_name)
    schema = coll.schema
    field = reads._field(coll, r.anns_field)
    if any(field.name in fn.output_field_names and str(fn.function_type).upper().endswith("BM25")
           for fn in schema.functions):
        raise ParamError(f"ids: field {field.name!r} is filled by a BM25 function from text and has no stored "
                         "vectors to search with; search it with query text as data=")
    pk = schema.primary_field.name
    keys = list(r.ids or ())
    rows = reads.op_query(rq.Query(r.db_name, r.collection_name, "", (pk, field.name), keys,
                                   consistency_level=r.consistency_level))
    found = {row[pk]: row[field.name] for row in rows}
    missing = [k for k in dict.fromkeys(keys) if k not in found]
    if missing:
        raise ParamError(f"ids: primary keys {missing[:10]!r} are not in collection {r.collection_name!r}; "
                         "every key must name a stored row")
    return rq.Search(**{**r.__dict__, "data": query_vectors([found[k] for k in keys]), "ids": None})
