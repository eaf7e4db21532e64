"""Search queries that are lists of vectors (pymilvus's ``EmbeddingList``).

A search on a struct's vector sub-field (``anns_field="chunks[emb]"``) takes
one list of vectors per query; `EmbeddingLists` carries them from the
client through the wire to the engine. Each list is a float32 array,
``(vectors, dim)``; one decoded from the wire is flat until the engine,
which knows the sub-field's ``dim``, shapes it (`shaped`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import DataError
from ._vectors import query_vectors


@dataclass(frozen=True, eq=False)
class EmbeddingLists:
    """One list of query vectors per query."""

    lists: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int]:
        """``(number of queries,)``, as a query array's first dimension."""
        return (len(self.lists),)

    def shaped(self, dim: int) -> list[np.ndarray]:
        """Each list as a ``(vectors, dim)`` float32 array; `DataError` if one holds no whole vectors."""
        out = []
        for i, a in enumerate(self.lists):
            if a.size == 0 or a.size % dim or (a.ndim == 2 and a.shape[1] != dim):
                raise DataError(f"data: embedding list {i} holds {a.size} numbers; expected one or more "
                                f"vectors of dim {dim}")
            arr = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, dim)
            if not np.isfinite(arr).all():
                raise DataError(f"data: embedding list {i} holds NaN or infinity; expected finite numbers")
            out.append(arr)
        return out


def _is_embedding_list(q: Any) -> bool:
    return callable(getattr(q, "to_numpy", None)) and callable(getattr(q, "to_flat_array", None))


def search_data(data: Any, anns_field: str | None) -> Any:
    """Search inputs: `EmbeddingLists` for a struct sub-field (``name[sub]``) or EmbeddingList queries,
    otherwise what `query_vectors` makes of them."""
    if isinstance(data, EmbeddingLists):
        return data
    items = list(data) if isinstance(data, (list, tuple)) else None
    lists = bool(items) and any(_is_embedding_list(q) for q in items or ())
    if not lists and not (anns_field and "[" in anns_field):
        return query_vectors(data)
    if not items:
        raise DataError("data: expected a list of EmbeddingList queries (each a list of vectors)")
    out = []
    for i, q in enumerate(items):
        try:
            arr = np.asarray(q.to_numpy() if _is_embedding_list(q) else q, dtype=np.float32)
        except (ValueError, TypeError):
            raise DataError(f"data: query {i} is not a list of vectors of one dimension") from None
        if arr.ndim != 2 or not arr.shape[0]:
            raise DataError(f"data: query {i} has shape {arr.shape}; expected an EmbeddingList "
                            "(one or more vectors) per query")
        out.append(arr)
    return EmbeddingLists(tuple(out))
