"""Search data that are texts: Milvus's VarChar placeholder groups ⇄ a 1-d array of strings.

Pure functions, no I/O. A search on a schema function's output field may
pass texts instead of vectors; pymilvus sends them as one placeholder of
type ``VarChar``, one UTF-8 value per query. Heron carries them as a 1-d
numpy array of strings, which the engine turns into query vectors with the
field's function. Any other placeholder is a vector one (`_data`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2

from .._errors import ParamError
from ._placeholders import vectors_from_placeholder, vectors_to_placeholder


def is_texts(data: Any) -> bool:
    """True for search data held as texts (a 1-d array of strings)."""
    return isinstance(data, np.ndarray) and data.ndim == 1 and data.dtype.kind in "UO"


def queries_from_placeholder(raw: bytes) -> Any:
    """A serialised PlaceholderGroup as search data: texts (a 1-d string array) or query vectors."""
    group = common_pb2.PlaceholderGroup.FromString(raw)
    if len(group.placeholders) == 1 and group.placeholders[0].type == common_pb2.VarChar:
        values = group.placeholders[0].values
        if not values:
            raise ParamError("data: got no query texts")
        try:
            texts = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError as exc:
            raise ParamError(f"data: query text {exc.start} is not valid UTF-8") from None
        return np.array(texts, dtype=object)
    return vectors_from_placeholder(raw)


def queries_to_placeholder(data: Any) -> bytes:
    """Search data (texts or query vectors) as a serialised PlaceholderGroup."""
    if not is_texts(data):
        return vectors_to_placeholder(data)
    ph = common_pb2.PlaceholderValue(tag="$0", type=common_pb2.VarChar,
                                     values=[str(t).encode("utf-8") for t in data.tolist()])
    return common_pb2.PlaceholderGroup(placeholders=[ph]).SerializeToString()
