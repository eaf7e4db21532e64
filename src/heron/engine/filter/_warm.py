"""Warm-up of the whole filter path (and of the insert path), run once per process on a background thread.

Besides the parser's construction (see `_parser.warm_up`), the first filter
of a process pays a few milliseconds for first uses in the binder and the
compiler (lazy imports, pyarrow compute kernels, code paths not yet run).
`exercise` pays them ahead: it compiles and evaluates a few expressions that
touch every kind of column over four rows of a schema of its own, so a user's
first filter runs at the speed of its later ones.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..._schema import CollectionSchema
from ..._types import DataType
from ...data._column import Column
from ...data._pa import strings
from ._plan import compile_filter

log = logging.getLogger("heron.engine")

_EXPRS = (
    ('a == 1 and b != "x" or not (f >= 2.5)', None),
    ('a in [1, 2] and b like "p%" and c["k"] < 3 and c["k"] != 2', None),
    ('array_contains(d, 1) and a > {p} and a % 2 == 0 and b in ["x", "y"]', {"p": 0}),
    ('b == "p1" or c["s"] == "u" or d[0] == 1', None),
)


class _Rows:
    num_rows = 4

    def __init__(self, cols: dict[str, Column]) -> None:
        self._cols = cols

    def column(self, name: str) -> Column:
        return self._cols[name]

    def scalar_index(self, name: str) -> Any | None:
        return None


def _schema() -> CollectionSchema:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("a", DataType.INT64)
    s.add_field("f", DataType.DOUBLE)
    s.add_field("b", DataType.VARCHAR, max_length=8)
    s.add_field("c", DataType.JSON)
    s.add_field("d", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    return s


def _obj(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def exercise() -> None:
    """Pass a batch down the insert path, then compile and evaluate the warm-up expressions.

    Inserts come first: they are what a new database gets first. Never
    raises (it only saves time).
    """
    try:
        run_insert_path()
    except Exception:  # pragma: no cover - a warm-up that fails costs only the time it meant to save
        log.debug("insert warm-up failed", exc_info=True)
    try:
        run()
    except Exception:  # pragma: no cover
        log.debug("filter warm-up failed", exc_info=True)


def run_insert_path() -> Any:
    """First uses of the insert path: validating columns, the Arrow record and its IPC bytes, and back.

    A process's first insert otherwise pays ~20 ms for them (pyarrow kernels,
    numpy functions and code paths run for the first time).
    """
    from ...data._batch import build_batch
    from ..storage import _ipc as ar

    schema = _schema()
    batch = build_batch(schema, {
        "id": np.arange(4, dtype=np.int64),
        "v": np.zeros((4, 2), dtype=np.float32),
        "a": np.array([1, 2, 3, 4]),
        "f": [1.0, 2.5, 3.0, 0.5],
        "b": ["x", "p1", "y", "z"],
        "c": [{"k": 1}, {"k": 5, "s": "u"}, {}, {"k": 2}],
        "d": [[1], [2, 3], [], [1, 4]],
    })
    rb = ar.batch_to_record_batch(schema, batch, np.ones(4, dtype=np.int64))
    payload = ar.IpcPayload(rb)  # as the insert log writes it
    out = bytearray(payload.size)
    payload.write_into(memoryview(out))
    return ar.record_batch_to_batch(schema, ar.from_ipc_bytes(bytes(out)))


def run() -> list[np.ndarray]:
    """The warm-up itself: each expression's mask over the four rows."""
    schema = _schema()
    rows = _Rows({
        "id": Column(DataType.INT64, np.arange(4, dtype=np.int64)),
        "a": Column(DataType.INT64, np.array([1, 2, 3, 4], dtype=np.int64)),
        "f": Column(DataType.DOUBLE, np.array([1.0, 2.5, 3.0, 0.5])),
        "b": Column(DataType.VARCHAR, strings(["x", "p1", "y", "z"])),
        "c": Column(DataType.JSON, _obj([{"k": 1}, {"k": 5, "s": "u"}, None, {"k": 2}])),
        "d": Column(DataType.ARRAY, _obj([[1], [2, 3], [], [1, 4]]), element_type=DataType.INT64),
    })
    return [compile_filter(expr, schema, params).evaluate(rows) for expr, params in _EXPRS]
