"""The blocking twin of `AsyncClient`'s part, generated from `_async_text.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

import json
from typing import Any

from .. import _requests as rq
from .._errors import ParamError
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
