"""A field's ``params`` dict, which also answers its type parameters by key, as pymilvus's ``FieldSchema.params`` does.

pymilvus keeps ``dim``, ``max_length`` and ``max_capacity`` in ``params``;
Heron keeps them as attributes. Code written for pymilvus's fields (its
``LocalBulkWriter`` reads ``field.params["dim"]``) gets them from
``params[key]`` here too, while ``params`` itself (iteration, ``in``,
``get``, what `describe` shows) holds only the other parameters.
"""

from __future__ import annotations

from typing import Any

TYPE_KEYS = ("dim", "max_length", "max_capacity")


class FieldParams(dict):  # type: ignore[type-arg]
    """The params of one field; ``[key]`` of a missing type parameter reads the field's attribute."""

    #: The field whose attributes answer; set by `FieldSchema.params` each time it is read.
    owner: Any = None

    def __missing__(self, key: str) -> Any:
        if key in TYPE_KEYS and self.owner is not None:
            value = getattr(self.owner, key, None)
            if value is not None:
                return value
        raise KeyError(key)
