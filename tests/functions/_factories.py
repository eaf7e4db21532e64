"""Small schema-function factories for testing the plumbing around `engine.functions` (not BM25 or a model).

``words``: a text's words, hashed, as a sparse vector of counts (stands in for
BM25). ``hashed``: a text's words hashed into a unit dense vector of the output
field's dimension (stands in for an embedding provider). A text holding
``FAIL`` makes either raise, as a provider that is down would. `installed`
registers them under the BM25 and TEXTEMBEDDING types for the test and puts
back what was there; ``site/sitecustomize.py`` registers them in a ``heron
serve`` process with `SITE_DIR` on its path.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from heron.engine.functions import _base


def words_of(text: str) -> list[str]:
    return [w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if w]


def _term(word: str) -> int:
    return zlib.crc32(word.encode()) % (1 << 20)


def sparse_of(text: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for w in words_of(text):
        out[_term(w)] = out.get(_term(w), 0.0) + 1.0
    return out


def dense_of(text: str, dim: int) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    for w in words_of(text):
        v[_term(w) % dim] += 1.0
    n = float(np.linalg.norm(v))
    return v / n if n else v + 1.0 / np.sqrt(dim)


class _Words:
    def __init__(self, definition: _base.FunctionDef, schema: Any) -> None:
        self.definition = definition

    def compute(self, columns: dict[str, Any]) -> dict[str, Any]:
        (texts,) = columns.values()
        if any(t is not None and "FAIL" in t for t in texts):
            raise RuntimeError("analyzer failed on purpose")
        return {self.definition.output_field_names[0]: [sparse_of(t or "") for t in texts]}

    def query(self, data: list[Any]) -> Any:
        return [sparse_of(t) for t in data]


class _Hashed:
    def __init__(self, definition: _base.FunctionDef, schema: Any) -> None:
        self.definition = definition
        provider = definition.params.get("provider")
        if provider != "hashed":
            raise ValueError(f"unknown provider {provider!r}; expected 'hashed'")
        out = schema.field(definition.output_field_names[0])
        self.dim = int(out.dim)

    def compute(self, columns: dict[str, Any]) -> dict[str, Any]:
        (texts,) = columns.values()
        rows = []
        for t in texts:
            if t is not None and "FAIL" in t:
                raise ConnectionError("embedding provider is down")
            rows.append(dense_of(t or "", self.dim))
        return {self.definition.output_field_names[0]: np.vstack(rows)}

    def query(self, data: list[Any]) -> Any:
        return np.vstack([dense_of(t, self.dim) for t in data])


def register_test_factories() -> None:
    _base.register("BM25", _Words)
    _base.register("TEXTEMBEDDING", _Hashed)


@contextmanager
def installed(bm25: bool = True, embedding: bool = True) -> Iterator[None]:
    """The test factories registered as BM25 and TEXTEMBEDDING (or one of them); the previous ones restored after."""
    before = dict(_base._FACTORIES)
    if bm25:
        _base.register("BM25", _Words)
    if embedding:
        _base.register("TEXTEMBEDDING", _Hashed)
    try:
        yield
    finally:
        _base._FACTORIES.clear()
        _base._FACTORIES.update(before)



#: Where ``sitecustomize.py`` is, for the ``PYTHONPATH`` of a ``heron serve`` that runs these factories.
SITE_DIR = str(Path(__file__).parent / "site")
