"""What ``run_analyzer`` returns: pymilvus's `AnalyzeResult` and `AnalyzeToken` shapes."""

from __future__ import annotations

from typing import Any


class AnalyzeToken:
    """One token with its details (``start_offset``, ``end_offset``, ``position``, ...) and/or ``hash``.

    Reads as pymilvus's: attributes, ``token["hash"]``, and ``.dict``.
    """

    def __init__(self, row: dict[str, Any]) -> None:
        self.dict = dict(row)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["dict"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self.dict[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnalyzeToken) and self.dict == other.dict

    def __str__(self) -> str:
        return str(self.dict)

    __repr__ = __str__


class AnalyzeResult:
    """The tokens of one text: strings, or `AnalyzeToken` objects when details or hashes were asked for."""

    def __init__(self, rows: list[dict[str, Any]], with_hash: bool = False, with_detail: bool = False) -> None:
        self.tokens: list[Any] = (
            [AnalyzeToken(r) for r in rows] if with_hash or with_detail else [r["token"] for r in rows]
        )

    def __str__(self) -> str:
        return str(self.tokens)

    __repr__ = __str__
