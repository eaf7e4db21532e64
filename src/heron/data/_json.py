"""JSON values of JSON columns and dynamic fields: encoded once, checked, parsed from text.

The text stored beside each JSON value is what ``json.dumps(v, allow_nan=False)``
gives; a list of dicts is encoded in one pass with orjson when it is installed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from .._schema import META_FIELD, FieldSchema
from .._types import DataType
from ._check import fail
from ._column import Column


def json_documents(f: FieldSchema, values: Any, valid: np.ndarray | None, n: int) -> Column | None:
    """A JSON column whose values are all dicts, encoded without a loop in Python; None otherwise.

    Anything else (text to parse, numpy scalars, nulls, a value that does not
    encode) takes the general path, which also names the bad value.
    """
    if valid is not None or not isinstance(values, list) or set(map(type, values)) != {dict}:
        return None
    texts: Any = _json_list_texts(values) if _orjson is not None else None
    if texts is None:
        try:
            texts = list(map(dumps_json, values))
        except (TypeError, ValueError, RecursionError):
            return None
        if "\\ud" in "".join(texts):  # maybe a lone surrogate: the general path finds and names it
            return None
    out = np.empty(n, dtype=object)
    out[:] = values
    return Column(DataType.JSON, out, None, texts=texts)


def _json_list_texts(values: list[Any]) -> pa.Array | None:
    """The JSON texts of ``values`` as an Arrow string array, from one encoding of the whole list.

    orjson writes the list as ``[a,b,...]`` without spaces; the items are cut
    apart at the commas outside strings and at depth one, found with numpy.
    None where orjson cannot be used for this list: it writes NaN and
    infinities as ``null`` (any ``null`` sends the list to the general path,
    which refuses them), and subclasses, dates and dataclasses go to the
    general path too, which encodes them as ``json`` does or refuses them.
    """
    try:
        data = _orjson.dumps(values, default=_not_serialisable, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return None
    if b"null" in data or len(data) >= 2**31:  # beyond 32-bit offsets: the general path
        return None
    b = np.frombuffer(data, dtype=np.uint8)
    quote = b == 34  # '"'
    slash = b == 92  # '\\'
    if slash.any():  # in a run of backslashes every other one escapes the byte after it
        at = np.arange(b.size)
        run = at - np.maximum.accumulate(np.where(slash, -1, at)) - 1
        escaping = slash & (run % 2 == 0)
        quote[1:] &= ~escaping[:-1]
    outside = ~np.logical_xor.accumulate(quote)  # False from an opening quote up to its closing one
    outside &= ~quote
    opens = np.flatnonzero(outside & ((b == 91) | (b == 123)))  # '[' '{'
    closes = np.flatnonzero(outside & ((b == 93) | (b == 125)))  # ']' '}'
    commas = np.flatnonzero(outside & (b == 44))  # ','
    depth = np.searchsorted(opens, commas) - np.searchsorted(closes, commas)  # brackets open before each
    cuts = commas[depth == 1]
    if cuts.size != len(values) - 1:
        return None
    starts = np.concatenate(([1], cuts + 1))
    ends = np.concatenate((cuts, [b.size - 1]))
    keep = np.ones(b.size, dtype=bool)
    keep[[0, -1]] = False
    keep[cuts] = False
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(ends - starts, out=offsets[1:])
    body = b[keep]
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(body))


def parse_json_text(f: FieldSchema, i: int, v: str | bytes) -> Any:
    try:
        return json.loads(v)
    except ValueError:
        raise fail(f, i, v, "valid JSON text or a JSON-serialisable value") from None


def _not_serialisable(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _make_dumps() -> Any:
    """``json.dumps(v, allow_nan=False)`` with one C encoder made once, not once per value.

    ``json.dumps`` with any keyword builds a new encoder on every call, which costs
    more than encoding a small document; the text produced is the same.
    """
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json: keep the documented call
        return lambda v: json.dumps(v, allow_nan=False)
    enc = make(None, _not_serialisable, encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False)

    def dumps(v: Any) -> str:
        return "".join(enc(v, 0))

    return dumps


dumps_json = _make_dumps()


_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # the general path encodes every value with json
    _orjson = None
    _ORJSON_OPTIONS = 0
else:
    _ORJSON_OPTIONS = _orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS


def check_json(name: str, i: int, v: Any) -> str:
    """The JSON text of ``v``; `DataError` naming field ``name`` and row ``i`` if it has none.

    Strings (keys included) must be valid Unicode text: a lone surrogate
    (``"\\udcff"``, which Python strings can hold) has no UTF-8 form, and
    would make every JSON-path filter on the collection fail.
    """
    try:
        text: str = dumps_json(v)
    except (TypeError, ValueError, RecursionError):
        raise fail(name, i, v, "a JSON-serialisable value (dict, list, str, number, bool or None)") from None
    if "\\ud" in text:  # escapes of surrogates: a pair (one character past U+FFFF) is fine, a lone one is not
        bad = lone_surrogate(v)
        if bad is not None:
            path, s = bad
            where = name if not path else (path[0] if name == META_FIELD else name) + "".join(
                f"[{k!r}]" for k in (path[1:] if name == META_FIELD else path))
            raise fail(where, i, s, "valid UTF-8 text (a lone surrogate such as '\\udcff' cannot be stored)")
    return text


def lone_surrogate(v: Any) -> tuple[list[Any], str] | None:
    """The path to and the first string (value or key) in ``v`` that holds a lone surrogate, or None."""
    stack: list[tuple[list[Any], Any]] = [([], v)]
    while stack:
        path, x = stack.pop()
        if isinstance(x, str):
            if not is_utf8(x):
                return path, x
        elif isinstance(x, dict):
            for k, item in x.items():
                if isinstance(k, str) and not is_utf8(k):
                    return [*path, k], k
                stack.append(([*path, k], item))
        elif isinstance(x, (list, tuple)):
            stack.extend(([*path, j], item) for j, item in enumerate(x))
    return None


def is_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
