"""Running a collection's schema functions: output columns at write time, query vectors at search time.

The engine calls these and nothing else does (see `engine/functions`):

- `apply_functions` fills each function's output fields from its input
  fields, before the batch is checked and logged. Rows that give an output
  field themselves are refused, and a function that fails (a bad text, a
  provider that is down or answers with the wrong dimension) fails the
  batch: nothing is written.
- `text_queries` turns the texts of a search on an output field into the
  query vectors that field's index searches.

Each function is built once per schema (`row_function`): an embedding
model is loaded on first use and kept while the collection lives.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError, HeronError, ParamError
from .._functions import Function, output_field_names, output_given_error
from .._schema import CollectionSchema, FieldSchema
from ..data._batch import Batch
from ..data._column import Column
from ..data._vectors import convert_vectors
from .functions._base import FunctionDef, RowFunction, build
from .functions._bm25 import BM25Function

#: Built functions by ``id`` of their schema (schemas compare by value, so they are not hashable keys);
#: an entry goes when its schema is collected.
_BUILT: dict[int, dict[str, RowFunction]] = {}
_BUILT_LOCK = threading.Lock()


def _built(schema: CollectionSchema) -> dict[str, RowFunction]:
    key = id(schema)
    built = _BUILT.get(key)
    if built is None:
        built = _BUILT[key] = {}
        weakref.finalize(schema, _BUILT.pop, key, None)
    return built


def definition(fn: Function) -> FunctionDef:
    """The engine's definition of schema function ``fn``."""
    return FunctionDef(fn.name, fn.type.name, tuple(fn.input_field_names), tuple(fn.output_field_names),
                       dict(fn.params), fn.description)


def row_function(schema: CollectionSchema, fn: Function) -> RowFunction:
    """The runnable function ``fn`` of ``schema``, built on first use and kept with the schema."""
    with _BUILT_LOCK:
        rf = _built(schema).get(fn.name)
    if rf is None:
        rf = build(definition(fn), schema)
        with _BUILT_LOCK:
            rf = _built(schema).setdefault(fn.name, rf)
    return rf


def forget(schema: CollectionSchema) -> None:
    """Drop the functions built for ``schema`` (after its functions changed)."""
    with _BUILT_LOCK:
        _BUILT.get(id(schema), {}).clear()


def check_functions_build(schema: CollectionSchema) -> None:
    """Build every function of ``schema`` now, so an unknown type or provider fails the create, not the first insert."""
    for fn in schema.functions:
        try:
            build(definition(fn), schema)
        except HeronError:
            raise
        except Exception as exc:  # a provider's own exception: its message is the useful part
            raise ParamError(f"function {fn.name!r} ({fn.type.name}): {exc}") from exc


# -- write time ------------------------------------------------------------------------------


def apply_functions(schema: CollectionSchema, batch: Batch, *, partial: bool = False) -> Batch:
    """``batch`` with every function's output fields computed from its input fields.

    With ``partial`` (a partial upsert), only the functions whose input fields
    the batch gives are run; the others keep their stored outputs. Raises
    `DataError` if the batch gives an output field or a function fails.
    """
    if not schema.functions:
        return batch
    for name in sorted(output_field_names(schema)):
        if name in batch.vectors or name in batch.columns:
            raise output_given_error(name)
    vectors = dict(batch.vectors)
    for fn in schema.functions:
        if partial and not all(name in batch.columns for name in fn.input_field_names):
            continue
        inputs = {name: _texts(fn, name, batch) for name in fn.input_field_names}
        out = _run(schema, fn, "compute", lambda rf, inputs=inputs: rf.compute(inputs))
        for name in fn.output_field_names:
            f = schema.field(name)
            assert f is not None  # check_functions made sure of it
            if not isinstance(out, dict) or name not in out:
                raise DataError(f"function {fn.name!r} gave no values for its output field {name!r}; "
                                "nothing was written")
            vectors[name] = _vectors(fn, f, out[name], batch.num_rows)
    return Batch(batch.num_rows, dict(batch.columns), vectors)


def _texts(fn: Function, name: str, batch: Batch) -> list[str | None]:
    c: Column | None = batch.columns.get(name)
    if c is None:
        raise DataError(f"field {name!r}: missing; function {fn.name!r} needs it to compute "
                        f"{fn.output_field_names}")
    values = c.values
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return list(values.to_pylist())
    texts = list(values)
    if c.valid is not None:
        texts = [t if ok else None for t, ok in zip(texts, c.valid)]
    return texts


def _run(schema: CollectionSchema, fn: Function, step: str, call: Any) -> Any:
    try:
        return call(row_function(schema, fn))
    except HeronError:
        raise
    except Exception as exc:  # a provider's or an analyzer's own exception
        raise DataError(f"function {fn.name!r} ({fn.type.name}) failed: {type(exc).__name__}: {exc}; "
                        + ("nothing was written" if step == "compute" else "the search was not run")) from exc


def _vectors(fn: Function, f: FieldSchema, raw: Any, n: int) -> Any:
    try:
        vecs = convert_vectors(f, raw, n)
    except DataError as exc:
        raise DataError(f"function {fn.name!r} gave values that do not fit field {f.name!r}: {exc.message}; "
                        "nothing was written") from exc
    rows = vecs.shape[0]
    if rows != n:
        raise DataError(f"function {fn.name!r} gave {rows} values for field {f.name!r}, expected {n} (one per row); "
                        "nothing was written")
    if f.dtype.is_dense_vector and (vecs.ndim != 2 or vecs.shape[1] != f.dim):
        raise DataError(f"function {fn.name!r} gave vectors of dimension {vecs.shape[-1]} for field {f.name!r}, "
                        f"which has dim={f.dim}; nothing was written")
    return vecs


# -- search time -----------------------------------------------------------------------------


def is_text_query(data: Any) -> bool:
    """True when search data are texts (a 1-d array of strings, as the clients and the wire hand them over)."""
    return isinstance(data, np.ndarray) and data.ndim == 1 and data.dtype.kind in "UO"


def text_queries(schema: CollectionSchema, f: FieldSchema, data: Any, bm25: bool = False) -> Any:
    """Query vectors for ``data``: the texts turned into vectors by the function that fills ``f``, else ``data``.

    With ``bm25`` (a search with metric BM25), a BM25 function's query rows come as `QueryRows`,
    which the BM25 search reads without a sparse matrix being built and checked.
    """
    if not is_text_query(data):
        return data
    fn = next((fn for fn in schema.functions if f.name in fn.output_field_names), None)
    if fn is None:
        raise ParamError(f"data: got texts, but field {f.name!r} is not the output of a BM25 or TEXTEMBEDDING "
                         f"function; expected {f.dtype.name} query vectors")
    texts = [str(t) for t in data.tolist()]
    if bm25 and isinstance(row_function(schema, fn), BM25Function):  # term counts: nothing to check
        return _run(schema, fn, "query", lambda rf: rf.query_rows(texts))
    raw = _run(schema, fn, "query", lambda rf: rf.query(texts))
    try:
        return convert_vectors(f, raw, len(texts))
    except DataError as exc:
        raise ParamError(f"function {fn.name!r} gave query vectors that do not fit field {f.name!r}: "
                         f"{exc.message}") from exc
