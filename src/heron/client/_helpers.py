"""Objects users build locally and hand to the clients: index params, rankers, hybrid requests."""

from __future__ import annotations

from typing import Any

from .._errors import ParamError


class IndexParams:
    """A list of index definitions, built with `add_index` (pymilvus's `prepare_index_params`)."""

    def __init__(self, field_name: str = "", **kwargs: Any) -> None:
        self._indexes: list[dict[str, Any]] = []
        if field_name:
            self.add_index(field_name, **kwargs)

    def add_index(
        self,
        field_name: str,
        index_type: str = "",
        index_name: str = "",
        metric_type: str = "",
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> IndexParams:
        """Add an index on ``field_name`` and return ``self``, for chaining.

        ``index_type`` defaults to AUTOINDEX and ``index_name`` to the field's
        name; ``params`` (and any other keyword) are the index's build
        parameters. Nothing is checked until `create_index` or `create_collection`.
        """
        merged = dict(params or {})
        merged.update({k: v for k, v in kwargs.items() if k != "index_params"})
        self._indexes.append(
            {
                "field_name": field_name,
                "index_type": index_type or "AUTOINDEX",
                "index_name": index_name or field_name,
                "metric_type": metric_type,
                "params": merged,
            }
        )
        return self

    def to_specs(self) -> tuple[dict[str, Any], ...]:
        """A copy of each index definition: field_name, index_type, index_name, metric_type, params."""
        return tuple(dict(d) for d in self._indexes)

    def __iter__(self):
        return iter(self.to_specs())

    def __len__(self) -> int:
        return len(self._indexes)

    def __repr__(self) -> str:
        return f"IndexParams({self._indexes!r})"


class AnnSearchRequest:
    """One vector search inside a hybrid search.

    ``data`` holds the query vectors, ``anns_field`` the vector field they
    search, ``param`` the search parameters (metric_type, params), ``limit``
    the hits it contributes; ``expr`` (or ``filter``) with ``expr_params``
    filters its rows.
    """

    def __init__(
        self,
        data: Any,
        anns_field: str,
        param: dict[str, Any] | None = None,
        limit: int = 10,
        expr: str | None = None,
        expr_params: dict[str, Any] | None = None,
        filter: str | None = None,  # noqa: A002
    ) -> None:
        self.data = data
        self.anns_field = anns_field
        self.param = dict(param or {})
        self.limit = limit
        self.expr = filter if filter is not None else (expr or "")
        self.expr_params = dict(expr_params or {})

    def __repr__(self) -> str:
        return f"AnnSearchRequest(anns_field={self.anns_field!r}, limit={self.limit}, expr={self.expr!r})"


class RRFRanker:
    """Reciprocal rank fusion: score = sum over requests of 1 / (k + rank).

    ``k`` is an integer in 1..16383 (default 60); anything else raises `ParamError`.
    """

    def __init__(self, k: int = 60) -> None:
        if not isinstance(k, int) or not 0 < k < 16384:
            raise ParamError(f"RRFRanker k: got {k!r}, expected an integer in 1..16383")
        self.k = k

    def dict(self) -> dict[str, Any]:
        """The ranker as pymilvus describes it: ``{"strategy": "rrf", "params": {"k": k}}``."""
        return {"strategy": "rrf", "params": {"k": self.k}}


class WeightedRanker:
    """Weighted sum of (normalised) scores, one weight per request.

    Give one weight per request of the hybrid search, each a number in
    [0, 1], else `ParamError`. With ``norm_score`` (the default) each score is
    first mapped to [0, 1], larger being better, as Milvus does.
    """

    def __init__(self, *weights: float, norm_score: bool = True) -> None:
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1:
                raise ParamError(f"WeightedRanker weight: got {w!r}, expected a number in [0, 1]")
        self.weights = [float(w) for w in weights]
        self.norm_score = norm_score

    def dict(self) -> dict[str, Any]:
        """The ranker as pymilvus describes it: ``{"strategy": "weighted", "params": {...}}``."""
        return {"strategy": "weighted", "params": {"weights": self.weights, "norm_score": self.norm_score}}
