"""Value helpers of `heron._schema`: data types by name or number, VARCHAR text options, typed defaults."""

from __future__ import annotations

import json
from typing import Any

from ._errors import SchemaError
from ._types import DataType


def _coerce_type(value: Any, what: str) -> DataType:
    if isinstance(value, DataType):
        return value
    try:
        if isinstance(value, str):
            return DataType[value.upper()]
        return DataType(int(value))
    except (KeyError, ValueError, TypeError):
        raise SchemaError(f"{what}: {value!r} is not a data type; expected a heron.DataType") from None


#: A VARCHAR field's text options; kept in ``params`` as Milvus shows them ("true"/"false", JSON text).
_TEXT_KEYS = ("enable_analyzer", "enable_match", "analyzer_params", "multi_analyzer_params")


#: The spellings of true (the first six) and false that Milvus reads (Go's strconv.ParseBool).
_GO_BOOLS = ("1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False")


def _text_params(params: dict[str, Any]) -> dict[str, Any]:
    for key in ("enable_analyzer", "enable_match"):
        v = params.get(key)
        if isinstance(v, bool) or (isinstance(v, str) and v in _GO_BOOLS):
            params[key] = "true" if v is True or v in _GO_BOOLS[:6] else "false"
    for key in ("analyzer_params", "multi_analyzer_params"):
        if key in params and params[key] is None:
            del params[key]
        if isinstance(params.get(key), dict):
            params[key] = json.dumps(params[key], separators=(",", ":"), ensure_ascii=False)
    return params


def _utc_text(v: str) -> str:
    """ISO-8601 text (without an offset: UTC) as UTC text, ``Z`` and microseconds only if any, as reads show it."""
    import datetime

    d = datetime.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("z", "Z")) else v)
    d = d.replace(tzinfo=datetime.timezone.utc) if d.tzinfo is None else d.astimezone(datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{d.microsecond:06d}" if d.microsecond else "") + "Z"


def _typed_default_fits(t: DataType, v: Any) -> bool:
    """Whether ``v`` is ISO-8601 text (TIMESTAMPTZ) or WKT text (GEOMETRY)."""
    if not isinstance(v, str):
        return False
    if t is DataType.TIMESTAMPTZ:
        import datetime

        try:
            datetime.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("z", "Z")) else v)
        except ValueError:
            return False
        return True
    import shapely

    return shapely.from_wkt(v, on_invalid="ignore") is not None
