"""The blocking twin of `AsyncClient`'s part, generated from `_async_text.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

import json
from typing import Any

from .. import _requests as rq
from .._errors import ParamError
from .._functions import Function, as_function
from ._analyze import AnalyzeResult
from ._base import ClientBase


class TextMixin(ClientBase):
    """Text calls: analyzers and schema functions."""

    def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def run_analyzer(self, texts: str | list[str], analyzer_params: str | dict[str, Any] | None = None,
                           with_hash: bool = False, with_detail: bool = False,
                           collection_name: str | None = None, field_name: str | None = None,
                           analyzer_names: str | list[str] | None = None, timeout: float | None = None,
                           **kwargs: Any) -> AnalyzeResult | list[AnalyzeResult]:
        """The tokens an analyzer makes of ``texts``, as pymilvus gives them.

        The analyzer is ``analyzer_params`` (a dict or its JSON; the ``standard``
        analyzer if None), or that of ``collection_name``'s field ``field_name``.
        One `AnalyzeResult` for one text, a list for a list. `ParamError`
        naming the bad parameter if the analyzer is wrong.
        """
        params: dict[str, Any] | None
        if isinstance(analyzer_params, str):
            try:
                params = json.loads(analyzer_params) if analyzer_params else None
            except ValueError as exc:
                raise ParamError(f"analyzer_params: {analyzer_params!r} is not valid JSON: {exc}") from None
        else:
            params = analyzer_params
        items = [texts] if isinstance(texts, str) else list(texts)
        names = (analyzer_names,) if isinstance(analyzer_names, str) else tuple(analyzer_names or ())
        req = rq.RunAnalyzer(self._dbn(kwargs), tuple(items), params, bool(with_hash), bool(with_detail),
                             collection_name or "", field_name or "", names)
        rows = self._call(req, timeout)
        results = [AnalyzeResult(r, with_hash, with_detail) for r in rows]
        return results[0] if isinstance(texts, str) else results

    # -- schema functions ----------------------------------------------------------------
    def add_collection_function(
        self, collection_name: str, function: Function | Any, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Add a schema function (Heron's `Function` or pymilvus's) to a collection.

        Its output field must be a field no other function fills; rows stored
        before keep their values, rows written after get computed ones. A
        function that does not fit the schema raises `SchemaError` and
        changes nothing.
        """
        db = self._dbn(kwargs)
        req = rq.AddCollectionFunction(db, collection_name, _function_dict(function))
        self._call(req, timeout)
        self._schemas.pop((db, collection_name), None)

    def alter_collection_function(
        self, collection_name: str, function_name: str, function: Function | Any, timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Replace the params and description of the schema function ``function_name``.

        ``function`` keeps its name, type and fields; `ParamError` otherwise,
        or if the collection has no such function.
        """
        db = self._dbn(kwargs)
        req = rq.AlterCollectionFunction(db, collection_name, function_name, _function_dict(function))
        self._call(req, timeout)
        self._schemas.pop((db, collection_name), None)

    def drop_collection_function(
        self, collection_name: str, function_name: str, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Remove the schema function ``function_name``; its output field becomes one that rows must give."""
        db = self._dbn(kwargs)
        self._call(rq.DropCollectionFunction(db, collection_name, function_name), timeout)
        self._schemas.pop((db, collection_name), None)



def _function_dict(function: Any) -> dict[str, Any]:
    d = as_function(function).to_dict()
    d["type"] = int(d["type"])
    return d
