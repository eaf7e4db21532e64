"""The blocking twin of `AsyncClient`'s part, generated from `_async_ops.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

from typing import Any

from .. import _requests as rq
from .._errors import ParamError
from .._schema import FieldSchema
from .._types import DataType
from ._base import ClientBase, property_keys_of


class OpsMixin(ClientBase):
    """Operations calls: segments, compaction, snapshots, index and field properties."""

    def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    # -- schema evolution --------------------------------------------------------------------
    def add_collection_field(self, collection_name: str, field_name: str, data_type: DataType,
                                   desc: str = "", timeout: float | None = None, **kwargs: Any) -> None:
        """Add a field to a live collection; it must be ``nullable=True`` or have a ``default_value``.

        Rows stored before read the default (or null); new rows may carry a
        value. `ParamError` (code 1100) for a primary key, partition key or
        vector field, for a field that is neither nullable nor defaulted, and
        for a name the collection already has; nothing changes then.
        """
        db = self._dbn(kwargs)
        params = {k: v for k, v in kwargs.items() if k != "db_name"}
        try:
            f = FieldSchema(field_name, data_type, desc, **params)
        except TypeError as exc:
            raise ParamError(f"add_collection_field {field_name!r}: {exc}") from None
        self._call(rq.AddCollectionField(db, collection_name, f.to_dict()), timeout)
        self._schemas.pop((db, collection_name), None)

    def alter_collection_field(self, collection_name: str, field_name: str, field_params: dict[str, Any],
                                     timeout: float | None = None, **kwargs: Any) -> None:
        """Change properties of one field: ``max_length`` (VARCHAR; it can only grow), ``max_capacity``
        (ARRAY; only grows), ``mmap.enabled``. `ParamError` for any other key."""
        if not isinstance(field_params, dict):
            raise ParamError(f"field_params: got {type(field_params).__name__}, expected a dict")
        db = self._dbn(kwargs)
        self._call(rq.AlterCollectionField(db, collection_name, field_name, dict(field_params)), timeout)
        self._schemas.pop((db, collection_name), None)

    def drop_collection_field(self, collection_name: str, field_name: str = "", field_id: int = 0,
                                    timeout: float | None = None, **kwargs: Any) -> None:
        """Remove a field from the schema (by name, or by ``field_id``); its values are no longer read.

        `ParamError` for the primary key, a partition or clustering key, the
        last vector field, and a field that still has an index.
        """
        if bool(field_name) == bool(field_id):
            raise ParamError("drop_collection_field: pass exactly one of field_name and field_id")
        db = self._dbn(kwargs)
        self._call(rq.DropCollectionField(db, collection_name, field_name, int(field_id)), timeout)
        self._schemas.pop((db, collection_name), None)

    # -- index properties ----------------------------------------------------------------------
    def alter_index_properties(self, collection_name: str, index_name: str, properties: dict[str, Any],
                                     timeout: float | None = None, **kwargs: Any) -> None:
        """Set properties of an index (``mmap.enabled``); `describe_index` shows them."""
        if not isinstance(properties, dict) or not properties:
            raise ParamError(f"properties: got {properties!r}, expected a non-empty dict")
        req = rq.AlterIndexProperties(self._dbn(kwargs), collection_name, index_name, dict(properties))
        self._call(req, timeout)

    def drop_index_properties(self, collection_name: str, index_name: str, property_keys: list[str],
                                    timeout: float | None = None, **kwargs: Any) -> None:
        """Remove properties of an index; one it does not have is ignored."""
        keys = property_keys_of(property_keys)
        req = rq.AlterIndexProperties(self._dbn(kwargs), collection_name, index_name, {}, keys)
        self._call(req, timeout)
