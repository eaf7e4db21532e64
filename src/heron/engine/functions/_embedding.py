"""TEXTEMBEDDING: a VARCHAR field embedded into a FLOAT_VECTOR field by an embedding provider.

A function ``Function(name, FunctionType.TEXTEMBEDDING, input_field_names=[text],
output_field_names=[vector], params={...})`` fills ``vector`` from ``text``
on every insert and upsert, and turns the texts of a search on ``vector``
into query vectors with the same model. ``params`` (Milvus's names; values
may be strings, as they travel over the wire):

- ``provider`` (required): ``local``, ``openai`` or ``callable``;
- ``model_name``: the model (``local``: ``all-MiniLM-L6-v2``, the default, or
  a directory with a BERT sentence model's files; ``openai``:
  ``text-embedding-3-small`` by default, as in Milvus Lite);
- ``dim`` (Milvus Lite: ``dimensions``): the dimension asked of the
  provider; must equal the output field's ``dim`` (``openai`` sends it as
  ``dimensions``);
- ``batch_size``: texts per provider call (``local`` 32, ``openai`` 128);
- ``openai`` only: ``url`` or ``endpoint`` (the server's address, or the full
  ``/v1/embeddings`` URL), or ``base_url`` (the OpenAI SDK's and Milvus
  Lite's: the API's base, ``/embeddings`` appended; default OpenAI's), ``api_key``,
  or ``credential`` (the name of an environment variable holding the key;
  neither: ``OPENAI_API_KEY``), ``user``, ``timeout`` (seconds, 30),
  ``max_retries`` (on 429 and 5xx answers, 3);
- ``callable`` only: ``name``, a function registered in this process with
  `register_embedding_function`.

The definition is checked when the function is built (unknown provider,
input not VARCHAR, output not FLOAT_VECTOR, ``dim`` not the field's, a
malformed number): `ParamError` naming the function, the key and the value.
Keys the provider does not know are ignored, as Milvus and Milvus Lite
ignore them, with a warning naming them. Providers are
started on first use. Any failure while embedding (provider down or
refusing, a wrong dimension, a rate limit past the retries, a text that is
null) raises `HeronError` (or `DataError`) naming the provider and the
cause, and the write that asked writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._errors import DataError, HeronError, ParamError
from ..._types import DataType
from . import _base, _embedding_local, _embedding_openai

log = logging.getLogger("heron.functions")

EmbeddingCallable = Callable[[list[str]], Any]

_CALLABLES: dict[str, EmbeddingCallable] = {}
_CALLABLES_REFUSED: list[str] = []
_COMMON = {"provider", "model_name", "dim", "dimensions", "batch_size"}
_KEYS = {
    "local": _COMMON,
    "openai": _COMMON | {"url", "endpoint", "base_url", "api_key", "credential", "user", "timeout",
                         "max_retries"},
    "callable": _COMMON | {"name"},
}
_BATCH = {"local": 32, "openai": 128, "callable": 256}


def register_embedding_function(name: str, fn: EmbeddingCallable | None) -> None:
    """Make ``fn`` the embedding provider of TEXTEMBEDDING functions with ``params={"provider": "callable", "name": name}``.

    ``fn`` takes a list of texts and returns one vector per text (a 2-D
    array-like of numbers, as many columns as the output field's ``dim``);
    it is called from the engine's worker threads, in batches of the
    function's ``batch_size``, and should raise on failure (the write then
    writes nothing). ``None`` removes the registration. The registry belongs
    to this process: an embedded client uses it; ``heron serve`` refuses the
    ``callable`` provider, since its clients' functions do not run there.
    """
    if not isinstance(name, str) or not name:
        raise ParamError(f"register_embedding_function: name must be a non-empty string, got {name!r}")
    if fn is None:
        _CALLABLES.pop(name, None)
        return
    if not callable(fn):
        raise ParamError(f"register_embedding_function: fn for {name!r} must be callable, got {type(fn).__name__}")
    _CALLABLES[name] = fn


def refuse_callable_provider(reason: str) -> None:
    """Refuse the ``callable`` provider in this process from now on (a server calls this), saying ``reason``."""
    _CALLABLES_REFUSED.append(reason)


def _int_param(fn: str, params: dict[str, Any], key: str, default: int | None, low: int) -> int | None:
    value = params.get(key, default)
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = low - 1
    if number < low:
        raise ParamError(f"function {fn!r}: param {key!r} is {value!r}; expected an integer >= {low}")
    return number


class TextEmbedding:
    """A built TEXTEMBEDDING function: ``compute`` for writes, ``query`` for searches."""

    def __init__(self, definition: _base.FunctionDef, schema: Any) -> None:
        self.definition = definition
        fn = definition.name
        params = {str(k): v for k, v in (definition.params or {}).items()}
        self.provider_name = str(params.get("provider", "")).strip().lower()
        if self.provider_name not in _KEYS:
            raise ParamError(f"function {fn!r}: provider {params.get('provider')!r} is not supported; "
                             f"expected one of {sorted(_KEYS)}")
        unknown = sorted(set(params) - _KEYS[self.provider_name])
        if unknown:
            log.warning("function %r: provider %r ignores params %s (it knows %s)", fn, self.provider_name,
                        unknown, sorted(_KEYS[self.provider_name]))
        self.input_field, self.output_field, self.dim = self._fields(definition, schema)
        asked = None
        for key in ("dim", "dimensions"):
            asked = _int_param(fn, params, key, None, 1)
            if asked is not None and asked != self.dim:
                raise ParamError(f"function {fn!r}: param {key!r} is {asked}, but output field "
                                 f"{self.output_field!r} has dim {self.dim}")
            if asked is not None:
                break
        self.asked_dim = asked
        self.batch_size = _int_param(fn, params, "batch_size", _BATCH[self.provider_name], 1) or 1
        self.params = params
        self._check_provider_params()
        self._lock = threading.Lock()
        self._embed: Callable[[list[str]], Any] | None = None

    @staticmethod
    def _fields(definition: _base.FunctionDef, schema: Any) -> tuple[str, str, int]:
        fn = definition.name
        if len(definition.input_field_names) != 1 or len(definition.output_field_names) != 1:
            raise ParamError(f"function {fn!r}: TEXTEMBEDDING takes one input field and one output field, got "
                             f"{list(definition.input_field_names)} -> {list(definition.output_field_names)}")
        source = schema.field(definition.input_field_names[0])
        target = schema.field(definition.output_field_names[0])
        for name, field in ((definition.input_field_names[0], source), (definition.output_field_names[0], target)):
            if field is None:
                raise ParamError(f"function {fn!r}: field {name!r} is not in the schema")
        if source.dtype != DataType.VARCHAR:
            raise ParamError(f"function {fn!r}: input field {source.name!r} is {source.dtype.name}; "
                             f"TEXTEMBEDDING expects a VARCHAR field")
        if target.dtype != DataType.FLOAT_VECTOR or not target.dim:
            raise ParamError(f"function {fn!r}: output field {target.name!r} is {target.dtype.name}; "
                             f"TEXTEMBEDDING expects a FLOAT_VECTOR field with a dim")
        return source.name, target.name, int(target.dim)

    def _check_provider_params(self) -> None:
        fn, p = self.definition.name, self.params
        if self.provider_name == "local":
            name = str(p.get("model_name") or _embedding_local.DEFAULT_MODEL)
            try:
                width = _embedding_local.model_width(name)
            except ParamError as exc:
                raise ParamError(f"function {fn!r}: {exc}") from None
            except HeronError:
                width = None  # the default model is not installed: said on first use, naming the package
            if width is not None and width != self.dim:
                raise ParamError(f"function {fn!r}: the local model {name!r} gives vectors of dimension {width}, "
                                 f"but output field {self.output_field!r} has dim {self.dim}")
        elif self.provider_name == "openai":
            _int_param(fn, p, "max_retries", 3, 0)
            try:
                float(p.get("timeout", 30))
            except ValueError:
                raise ParamError(f"function {fn!r}: param 'timeout' is {p['timeout']!r}; "
                                 f"expected seconds as a number") from None
        else:
            if _CALLABLES_REFUSED:
                raise ParamError(f"function {fn!r}: provider 'callable' is refused here: {_CALLABLES_REFUSED[-1]}")
            if not p.get("name"):
                raise ParamError(f"function {fn!r}: provider 'callable' needs param 'name', the name given "
                                 f"to heron.register_embedding_function")

    def _provider(self) -> Callable[[list[str]], Any]:
        with self._lock:
            if self._embed is None:
                self._embed = self._start()
            return self._embed

    def _start(self) -> Callable[[list[str]], Any]:
        p = self.params
        if self.provider_name == "local":
            model = _embedding_local.load(str(p.get("model_name") or _embedding_local.DEFAULT_MODEL))
            return lambda texts: model.embed(texts, self.batch_size)
        if self.provider_name == "openai":
            client = _embedding_openai.OpenAIEmbeddings(
                url=_embedding_openai.url_of(p), model=str(p.get("model_name") or _embedding_openai.DEFAULT_MODEL),
                api_key=_embedding_openai.api_key(p), dimensions=self.asked_dim,
                user=str(p["user"]) if p.get("user") else None, timeout=float(p.get("timeout", 30)),
                max_retries=int(str(p.get("max_retries", 3))))
            return client.embed
        return self._callable

    def _callable(self, texts: list[str]) -> Any:
        name = str(self.params["name"])
        if _CALLABLES_REFUSED:
            raise HeronError(f"embedding provider 'callable' {name!r} is refused here: {_CALLABLES_REFUSED[-1]}")
        fn = _CALLABLES.get(name)
        if fn is None:
            raise HeronError(f"embedding provider 'callable': no function is registered as {name!r} in this "
                             f"process; call heron.register_embedding_function({name!r}, fn) first")
        try:
            return fn(texts)
        except Exception as exc:
            raise HeronError(f"embedding provider 'callable' {name!r} failed: {type(exc).__name__}: {exc}") from exc

    def embed(self, texts: Sequence[Any], what: str) -> np.ndarray:
        """One float32 row of the output field's dim per text; raises as the module docstring says."""
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"function {self.definition.name!r}: {what} row {i} is {text!r}; "
                                f"expected a string to embed")
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        embed = self._provider()
        step = len(texts) if self.provider_name == "local" else self.batch_size
        parts = [self._checked(embed(texts[i:i + step]), min(step, len(texts) - i)) for i in range(0, len(texts), step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _checked(self, vectors: Any, count: int) -> np.ndarray:
        where = f"embedding provider {self.provider_name!r} (function {self.definition.name!r})"
        try:
            out = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise HeronError(f"{where}: the answer is not a matrix of numbers: {exc}") from exc
        if out.ndim != 2 or out.shape[0] != count:
            raise HeronError(f"{where}: expected {count} vectors, got an array of shape {out.shape}")
        if out.shape[1] != self.dim:
            raise HeronError(f"{where}: returned vectors of dimension {out.shape[1]}, but output field "
                             f"{self.output_field!r} has dim {self.dim}")
        if not np.isfinite(out).all():
            raise HeronError(f"{where}: returned a vector with NaN or infinity")
        return out

    def compute(self, columns: dict[str, Any]) -> dict[str, Any]:
        """The output field's vectors (float32, one row per row) for the batch's input column."""
        column = columns[self.input_field]
        if hasattr(column, "to_pylist"):
            column = column.to_pylist()
        return {self.output_field: self.embed(column, f"field {self.input_field!r}")}

    def query(self, data: list[Any]) -> np.ndarray:
        """The query vectors (float32, one row per text) for search texts."""
        return self.embed(data, "search data")


def text_embedding(definition: _base.FunctionDef, schema: Any) -> TextEmbedding:
    """The factory registered for TEXTEMBEDDING."""
    return TextEmbedding(definition, schema)


_base.register("TEXTEMBEDDING", text_embedding)
