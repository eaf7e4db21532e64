"""Get by a few primary keys: the rows `Reader.op_query` answers, without its general machinery.

A get of one key is a handful of array lookups; what costs is the query path
around them (paging, key ordering, time zones, output names worked out again
on every call). `PointGets` answers a plain get of up to `FEW_KEYS` keys, one
without offset, limit, key ordering or time zone, on a collection without
TIMESTAMPTZ fields, and keeps what the schema and the output fields decide
(the output names) per collection. The rows are selected as the general path
selects them (`select_keys`: the snapshot, the key lookup per segment,
visibility, keys written again) and read with the same function
(`values_at`), in the same order, so the answer is the same; every other
query goes the general way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._schema import META_FIELD, FieldSchema
from .._types import DataType
from ..data._batch import normalize_pks

if TYPE_CHECKING:
    from ._collection import Collection, Partition
    from ._reads import Reader
    from ._segment import SegmentView

#: The output field that asks for a count (`_reads.COUNT`).
COUNT = "count(*)"
#: Gets of up to this many keys take the short path.
FEW_KEYS = 16
_SEQUENCES = (list, tuple)
#: Output-field lists remembered per reader (a few per collection in practice).
_PLANS_MAX = 512


@dataclass(frozen=True)
class _Plan:
    """What a schema and an output-field list decide about a get's rows."""

    #: The schema's field list and dynamic-field flag this plan was made for: a schema change replaces
    #: the list (`_schema_ops`), so comparing by identity tells a stale plan.
    fields: list[Any]
    dynamic: bool
    pk: FieldSchema
    names: list[str]
    #: The names of fields read column by column; dynamic ones ($meta keys) are there too.
    plain: list[str]
    dynamic_out: bool


def select_keys(coll: Collection, parts: list[Partition], pks: Any) -> Iterator[tuple[SegmentView, np.ndarray]]:
    """Per segment view of `parts` with rows, the positions of the visible rows whose key is in `pks`.

    Visible: committed by the snapshot's sequence number and not hidden by a
    later write of the same key. Both the general query path
    (`Reader._select`) and the short path select rows of keys this way.
    """
    snap = coll.snapshot(parts)
    for (_, view), hidden in zip(snap.views, snap.hidden):
        if view.n:
            rows = view.segment.find_keys(pks, view.n)
            if len(rows):
                seen = view.visible_rows(rows, snap.seq)
                if hidden is not None:
                    seen &= ~hidden[rows]
                yield view, rows[seen]


class PointGets:
    """The short path of one reader; see the module docstring."""

    def __init__(self, reader: Reader, values_at: Callable[..., list[Any]]) -> None:
        self.reader = reader
        #: `_reads.values_at`, which reads a field's values at rows as the general path does.
        self.values_at = values_at
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}

    def get(self, coll: Collection, parts: list[Partition], r: rq.Query) -> list[dict[str, Any]] | None:
        """The rows of query ``r``, or None when it is not a plain get of a few keys (the general path answers).

        Called once the partitions are known (and loaded): what the general path checks after that (ids
        with a filter, the page, ``count(*)``) the short path leaves to it by answering None.
        """
        ids = r.ids
        if (type(ids) not in _SEQUENCES or len(ids) > FEW_KEYS or (r.filter or "").strip() or r.offset != 0
                or type(r.offset) is not int or r.limit is not None or r.order_by_pk or r.timezone or r.time_fields):
            return None
        plan = self._plan(coll, r.output_fields)
        if plan is None:
            return None
        reader = self.reader
        schema = coll.schema
        out: list[dict[str, Any]] = []
        if plan.dynamic_out:
            for view, rows in select_keys(coll, parts, normalize_pks(plan.pk, ids)):
                if len(rows):
                    out.extend(reader._rows_of(schema, view, rows, plan.names))
            return out
        values_at = self.values_at
        plain = plan.plain
        for view, rows in select_keys(coll, parts, normalize_pks(plan.pk, ids)):
            if not len(rows):
                continue
            cols = [values_at(schema, view, n, rows) for n in plain]
            out.extend(dict(zip(plain, vals)) for vals in zip(*cols))
        return out

    def _plan(self, coll: Collection, output_fields: tuple[str, ...] | None) -> _Plan | None:
        schema = coll.schema
        key = (id(coll), output_fields or ())
        plan = self._plans.get(key)
        if plan is not None and plan.fields is schema.fields and plan.dynamic == schema.enable_dynamic_field:
            return plan
        fields = list(output_fields or [])
        if COUNT in [f.strip().lower() for f in fields]:
            return None  # a count, or the error of a count with other fields
        if any(f.dtype is DataType.TIMESTAMPTZ for f in schema.fields):
            return None  # values shown in the read's zone: the general path
        names = self.reader._output_names(schema, fields or ["*"])  # ParamError for an unknown field
        plan = _Plan(schema.fields, schema.enable_dynamic_field, schema.primary_field, names,
                     [n for n in names if not n.startswith(META_FIELD)],
                     any(n.startswith(META_FIELD) for n in names))
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan
