"""Vector index and search parameters: names, defaults and validation.

Parameter names follow Milvus (``nlist``, ``m``, ``nbits``, ``M``,
``efConstruction``, ``ef``, ``nprobe``, ...). Every bad value raises
`ParamError` naming the parameter, the value and what was expected; nothing
else in this module raises. Unknown keys are kept and ignored, as Milvus does,
so parameters written for Milvus keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._errors import ParamError
from ..._types import DataType

FLOAT_METRICS = ("COSINE", "L2", "IP")
SPARSE_METRICS = ("IP", "BM25")
BINARY_METRICS = ("HAMMING", "JACCARD")

_FLOAT_INDEXES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "IVF_RABITQ", "HNSW", "HNSW_SQ", "HNSW_PQ")
_SPARSE_INDEXES = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")
_BINARY_INDEXES = ("BIN_FLAT", "BIN_IVF_FLAT")

#: Per vector data type: index type -> accepted metrics (first is the default).
INDEX_TYPES: dict[DataType, dict[str, tuple[str, ...]]] = {
    **{
        t: {name: FLOAT_METRICS for name in _FLOAT_INDEXES}
        for t in (
            DataType.FLOAT_VECTOR,
            DataType.FLOAT16_VECTOR,
            DataType.BFLOAT16_VECTOR,
            DataType.INT8_VECTOR,
        )
    },
    DataType.SPARSE_FLOAT_VECTOR: {name: SPARSE_METRICS for name in _SPARSE_INDEXES},
    DataType.BINARY_VECTOR: {name: BINARY_METRICS for name in _BINARY_INDEXES},
}

#: What AUTOINDEX becomes, per kind of vector.
AUTOINDEX_FLOAT: tuple[str, dict[str, Any]] = ("HNSW", {"M": 16, "efConstruction": 200})
AUTOINDEX_SPARSE: tuple[str, dict[str, Any]] = ("SPARSE_INVERTED_INDEX", {"drop_ratio_build": 0.0})
AUTOINDEX_BINARY: tuple[str, dict[str, Any]] = ("BIN_FLAT", {})

SQ_TYPES = ("SQ4U", "SQ6", "SQ8", "FP16", "BF16")
REFINE_TYPES = ("SQ6", "SQ8", "FP16", "BF16", "FP32")
#: Bits a refine codec keeps per value: HNSW_SQ's ``refine_type`` must keep more than its ``sq_type``.
_PRECISION = {"SQ4U": 4, "SQ6": 6, "SQ8": 8, "FP16": 16, "BF16": 16, "FP32": 32}
SPARSE_ALGOS = ("DAAT_MAXSCORE", "DAAT_WAND", "TAAT_NAIVE")

DEFAULT_EF = 64
DEFAULT_NPROBE = 16
MAX_EF = 32768
MAX_NLIST = 65536


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value, ok = int(value), True
    if not ok or not lo <= value <= hi:
        raise ParamError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _float(name: str, value: Any, lo: float, hi: float, *, hi_open: bool = False) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if not (lo <= f < hi if hi_open else lo <= f <= hi):
        bracket = ")" if hi_open else "]"
        raise ParamError(f"{name} must be a number in [{lo}, {hi}{bracket}, got {value!r}")
    return f


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    v = str(value).upper() if isinstance(value, str) else value
    if v not in choices:
        raise ParamError(f"{name} must be one of {list(choices)}, got {value!r}")
    return str(v)


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ParamError(f"{name} must be true or false, got {value!r}")


_Check = Callable[[Any], Any]
_NLIST: dict[str, tuple[_Check, Any]] = {"nlist": (lambda v: _int("nlist", v, 1, MAX_NLIST), 128)}
_HNSW: dict[str, tuple[_Check, Any]] = {
    "M": (lambda v: _int("M", v, 2, 2048), 16),
    "efConstruction": (lambda v: _int("efConstruction", v, 1, 2**31 - 1), 200),
}
_PQ: dict[str, tuple[_Check, Any]] = {
    "m": (lambda v: _int("m", v, 1, 65536), None),
    "nbits": (lambda v: _int("nbits", v, 1, 16), 8),
}
_SPARSE: dict[str, tuple[_Check, Any]] = {
    "drop_ratio_build": (lambda v: _float("drop_ratio_build", v, 0.0, 1.0, hi_open=True), 0.0),
    "inverted_index_algo": (lambda v: _choice("inverted_index_algo", v, SPARSE_ALGOS), None),
}
#: BM25's parameters (metric BM25 on a sparse index), with Milvus's ranges and defaults.
_BM25: dict[str, tuple[_Check, Any]] = {
    "bm25_k1": (lambda v: _float("bm25_k1", v, 0.0, 3.0), 1.2),
    "bm25_b": (lambda v: _float("bm25_b", v, 0.0, 1.0), 0.75),
}
_REFINE: dict[str, tuple[_Check, Any]] = {
    "refine": (lambda v: _bool("refine", v), None),
    "refine_type": (lambda v: _refine_type(v), None),
}

#: Per index type: parameter -> (validator, default; None = leave unset).
_INDEX_PARAMS: dict[str, dict[str, tuple[_Check, Any]]] = {
    "FLAT": {},
    "BIN_FLAT": {},
    "IVF_FLAT": _NLIST,
    "IVF_SQ8": _NLIST,
    "IVF_PQ": {**_NLIST, **_PQ, **_REFINE},
    "IVF_RABITQ": {**_NLIST, **_REFINE},
    "BIN_IVF_FLAT": _NLIST,
    "HNSW": _HNSW,
    "HNSW_SQ": {**_HNSW, **_REFINE, "sq_type": (lambda v: _choice("sq_type", v, SQ_TYPES), "SQ8")},
    "HNSW_PQ": {**_HNSW, **_REFINE, **_PQ},
    "SPARSE_INVERTED_INDEX": _SPARSE,
    "SPARSE_WAND": _SPARSE,
}


def _refine_type(value: Any) -> str:
    """A refine codec name, any case; refused in Milvus's words."""
    v = str(value).upper() if isinstance(value, str) else value
    if v not in REFINE_TYPES:
        names = ", ".join(t.lower() for t in REFINE_TYPES)
        raise ParamError(f"invalid refine type : {value}, optional types are [{names}]")
    return str(v)


def _check_refine(name: str, params: dict[str, Any]) -> None:
    """A refine copy must be finer than the quantised vectors it re-ranks (HNSW_SQ's ``sq_type``)."""
    if name != "HNSW_SQ" or not params.get("refine") or params.get("refine_type") is None:
        return
    sq_type, refine_type = str(params.get("sq_type", "SQ8")), str(params["refine_type"])
    if _PRECISION[refine_type] <= _PRECISION[sq_type]:
        finer = [t for t in REFINE_TYPES if _PRECISION[t] > _PRECISION[sq_type]]
        raise ParamError(
            f"refine_type {refine_type!r} must be of higher precision than sq_type {sq_type!r}; expected one of {finer}"
        )


def _vector_kind(dtype: DataType) -> str:
    if dtype not in INDEX_TYPES:
        raise ParamError(
            f"data type {dtype!r} is not a vector type; expected one of {[t.name for t in INDEX_TYPES]}"
        )
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return "sparse"
    return "binary" if dtype is DataType.BINARY_VECTOR else "float"


def normalize_index_params(
    dtype: DataType, index_type: str | None, metric_type: str | None, params: dict[str, Any] | None
) -> tuple[str, str, dict[str, Any]]:
    """Validate an index definition and fill Milvus's defaults.

    Returns ``(index_type, metric, params)`` with ``AUTOINDEX`` resolved
    (HNSW M=16 efConstruction=200 for float types, SPARSE_INVERTED_INDEX for
    sparse, BIN_FLAT for binary) and the metric defaulted (COSINE, IP or
    HAMMING). Raises `ParamError` for an unknown index type, a metric the
    vector type cannot use or a bad parameter value.
    """
    kind = _vector_kind(dtype)
    accepted = INDEX_TYPES[dtype]
    params = dict(params or {})
    name = str(index_type or "AUTOINDEX").upper()
    if name == "AUTOINDEX":
        auto: tuple[str, dict[str, Any]] = {
            "float": AUTOINDEX_FLOAT,
            "sparse": AUTOINDEX_SPARSE,
            "binary": AUTOINDEX_BINARY,
        }[kind]
        name, params = auto[0], {**auto[1], **params}
    if name not in accepted:
        raise ParamError(
            f"index_type {index_type!r} cannot index a {dtype.name} field; expected one of {['AUTOINDEX', *accepted]}"
        )
    metrics = accepted[name]
    metric = str(metric_type).upper() if metric_type else metrics[0]
    if metric not in metrics:
        raise ParamError(
            f"metric_type {metric_type!r} is not valid for {name} on {dtype.name}; expected one of {list(metrics)}"
        )
    out: dict[str, Any] = dict(params)
    checks = {**_INDEX_PARAMS[name], **(_BM25 if metric == "BM25" else {})}
    for key, (check, default) in checks.items():
        if params.get(key) is not None:
            out[key] = check(params[key])
        elif default is not None:
            out[key] = default
    _check_refine(name, out)
    return name, metric, out


_SEARCH_PARAMS: dict[str, tuple[_Check, Any]] = {
    "ef": (lambda v: _int("ef", v, 1, MAX_EF), DEFAULT_EF),
    "nprobe": (lambda v: _int("nprobe", v, 1, MAX_NLIST), DEFAULT_NPROBE),
    "drop_ratio_search": (lambda v: _float("drop_ratio_search", v, 0.0, 1.0, hi_open=True), 0.0),
    "refine_k": (lambda v: _float("refine_k", v, 1.0, float(MAX_EF)), 1.0),
    "rbq_query_bits": (lambda v: _int("rbq_query_bits", v, 0, 8), 0),
}
_SEARCH_KEYS: dict[str, tuple[str, ...]] = {
    "HNSW": ("ef",),
    "HNSW_SQ": ("ef", "refine_k"),
    "HNSW_PQ": ("ef", "refine_k"),
    "IVF_FLAT": ("nprobe",),
    "IVF_SQ8": ("nprobe",),
    "IVF_PQ": ("nprobe", "refine_k"),
    "IVF_RABITQ": ("nprobe", "rbq_query_bits", "refine_k"),
    "BIN_IVF_FLAT": ("nprobe",),
    "SPARSE_INVERTED_INDEX": ("drop_ratio_search",),
    "SPARSE_WAND": ("drop_ratio_search",),
}


def normalize_search_params(index_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Validate search parameters for `index_type` and fill defaults.

    Accepts Milvus's nested form (``{"params": {"ef": 64}}``) as well as the
    flat one. ``ef`` below ``k`` is allowed: search uses ``max(ef, k)``.
    ``radius`` and ``range_filter`` must be numbers when given. Unknown keys
    are kept. Raises `ParamError` for a bad value.
    """
    return dict(shared_search_params(index_type, params))


def shared_search_params(index_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """`normalize_search_params`, remembered: the dict returned is shared and must not be changed."""
    try:  # value types are part of the key: 1, 1.0 and True compare equal but do not validate alike
        key = (index_type, tuple(params.items()), tuple(map(type, params.values()))) if params else index_type
        hit = _SEARCH_CACHE.get(key)
    except TypeError:  # unhashable values (nested dicts): no caching
        key, hit = None, None
    if hit is not None:
        return hit
    out = _normalize_search_params(index_type, params)
    if key is not None:
        if len(_SEARCH_CACHE) > 1024:
            _SEARCH_CACHE.clear()
        _SEARCH_CACHE[key] = out
    return out


_SEARCH_CACHE: dict[Any, dict[str, Any]] = {}


def _normalize_search_params(index_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
    raw = dict(params or {})
    nested = raw.pop("params", None)
    if isinstance(nested, dict):
        raw = {**raw, **nested}
    out: dict[str, Any] = dict(raw)
    for key in _SEARCH_KEYS.get(str(index_type).upper(), ()):
        check, default = _SEARCH_PARAMS[key]
        out[key] = check(raw[key]) if raw.get(key) is not None else default
    for key in ("radius", "range_filter"):
        if raw.get(key) is not None:
            out[key] = _float(key, raw[key], float("-inf"), float("inf"))
    return out
