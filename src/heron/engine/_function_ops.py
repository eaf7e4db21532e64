"""Changing a collection's schema functions: add, alter, drop (pymilvus's ``*_collection_function``).

Each change is checked on a copy of the schema first (the same checks as at
create time, and the function is built so that an unknown provider or
analyzer is refused), then made under the collection's write lock and
recorded in the catalog: a write in flight finishes with the functions it
started with, and the next one runs the new ones.

- add: the output field must be a field no function fills yet; rows stored
  before keep the values they were given, later rows get computed ones.
- alter: the same type and fields; its params and description may change.
- drop: the output field becomes an ordinary field that rows must give.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import AlreadyExistsError, ParamError
from .._functions import Function
from .._schema import CollectionSchema
from ._collection import Collection
from ._functions_apply import check_functions_build, forget
from ._text_ops import op_run_analyzer
from .storage._catalog import dumps

if TYPE_CHECKING:
    from ._engine import Engine


class FunctionOps:
    """The schema-function requests of one engine (see the module docstring), and running an analyzer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op_run_analyzer(self, r: rq.RunAnalyzer) -> list[list[dict[str, Any]]]:
        """The tokens of ``r.texts`` (`heron.engine._text_ops.op_run_analyzer`)."""
        return op_run_analyzer(self.engine, r)

    def op_add_collection_function(self, r: rq.AddCollectionFunction) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        fn = Function.from_dict(r.function)
        with coll.write_lock:
            if any(f.name == fn.name for f in coll.schema.functions):
                raise AlreadyExistsError(f"function {fn.name!r} already exists in collection {coll.name!r}",
                                         code=1100)
            self._replace(coll, [*coll.schema.functions, fn])

    def op_alter_collection_function(self, r: rq.AlterCollectionFunction) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        new = Function.from_dict(r.function)
        with coll.write_lock:
            old = _named(coll, r.function_name)
            if new.name != old.name:
                raise ParamError(f"function {r.function_name!r}: got a function named {new.name!r}; altering a "
                                 "function keeps its name")
            if (new.type, new.input_field_names, new.output_field_names) != (
                    old.type, old.input_field_names, old.output_field_names):
                raise ParamError(f"function {old.name!r}: its type and fields cannot change (it is {old.type.name}, "
                                 f"{old.input_field_names} -> {old.output_field_names}); only params and "
                                 "description can; drop it and add a new one instead")
            self._replace(coll, [new if f.name == old.name else f for f in coll.schema.functions])

    def op_drop_collection_function(self, r: rq.DropCollectionFunction) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            old = _named(coll, r.function_name)
            self._replace(coll, [f for f in coll.schema.functions if f.name != old.name])

    def _replace(self, coll: Collection, functions: list[Function]) -> None:
        """Check ``functions`` against the collection's fields, then make them its functions (write lock held)."""
        trial: CollectionSchema = coll.schema.copy()
        trial.functions = list(functions)
        trial.validate()
        check_functions_build(trial)
        self.engine.catalog.execute("UPDATE collections SET schema=? WHERE id=?",
                                    (dumps(trial.to_json_dict()), coll.id))
        coll.schema.functions = list(functions)
        coll.schema.validate()  # flags the output fields
        forget(coll.schema)


def _named(coll: Collection, name: str) -> Function:
    fn = next((f for f in coll.schema.functions if f.name == name), None)
    if fn is None:
        raise ParamError(f"function {name!r} not found in collection {coll.name!r}; its functions are "
                         f"{[f.name for f in coll.schema.functions]}")
    return fn
