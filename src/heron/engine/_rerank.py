"""Function rankers: the decay and boost rerank functions of a search, Milvus's way.

A ranker arrives as a function score, ``{"functions": [...], "params": {...}}``,
each function ``{"name", "input_field_names", "output_field_names", "params"}``
with ``params["reranker"]`` one of ``decay``, ``boost`` (search) or ``rrf``,
``weighted``, ``decay`` (hybrid search). Parameter values may be Python
values (the embedded client) or the strings pymilvus puts on the wire; both
read the same. `parse_function_score` validates the whole definition against
the collection's schema before any work, so a bad ranker changes nothing and
raises `ParamError` naming the function, the parameter and what was expected,
with Milvus's code for a rejected rerank function (65535) and its wording.

The formulas are Milvus's:

- decay: ``d = max(0, |v - origin| - offset)``; gauss ``exp(d² · ln(decay) / scale²)``,
  exp ``exp(ln(decay) / scale · d)``, linear ``max(decay, 1 - (1 - decay) / scale · d)``;
  the score, first made larger-is-better (``1 - 2·atan(s)/π`` for distance
  metrics), is multiplied by the factor.
- boost: each function whose ``filter`` matches a hit (every hit without a
  filter) yields ``weight`` (times a random value in [0, 1) with
  ``random_score``: MurmurHash3 of the ``field``'s INT64 value, or of the row,
  with ``seed``); the values are combined by ``function_mode`` (multiply or
  sum) and applied to the raw score by ``boost_mode`` (multiply or sum).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import ParamError
from .._schema import CollectionSchema
from .._types import DataType

#: Field types a decay function reads.
DECAY_TYPES = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.FLOAT, DataType.DOUBLE)
_DECAY_CURVES = ("gauss", "exp", "linear")
_MODES = ("multiply", "sum")
_KNOWN = {
    "decay": {"reranker", "function", "origin", "scale", "offset", "decay"},
    "boost": {"reranker", "weight", "filter", "random_score"},
    "rrf": {"reranker", "k"},
    "weighted": {"reranker", "weights", "norm_score"},
}
_SCORE_PARAMS = {"boost_mode", "function_mode"}
_MASK64 = (1 << 64) - 1
#: The code Milvus answers a rejected rerank function with (its proxy passes the function's error through).
RERANK_ERROR_CODE = 65535


def _bad(message: str) -> ParamError:
    return ParamError(message, code=RERANK_ERROR_CODE)


@dataclass(frozen=True)
class Decay:
    """One decay function over the numeric field ``field``."""

    name: str
    field: str
    curve: str
    origin: float
    scale: float
    offset: float = 0.0
    decay: float = 0.5

    def factors(self, values: np.ndarray) -> np.ndarray:
        """The decay factor of each value (float64), vectorised."""
        d = np.maximum(0.0, np.abs(values.astype(np.float64) - self.origin) - self.offset)
        ln = math.log(self.decay)
        if self.curve == "gauss":
            return np.exp(d * d * ln / (self.scale * self.scale))
        if self.curve == "exp":
            return np.exp(ln / self.scale * d)
        return np.maximum(self.decay, 1.0 - (1.0 - self.decay) / self.scale * d)


@dataclass(frozen=True)
class Boost:
    """One boost function: ``weight`` for the hits ``filter`` matches, optionally times a random value."""

    name: str
    weight: float
    filter: str = ""
    seed: int | None = None
    random_field: str = ""


@dataclass(frozen=True)
class Fusion:
    """An ``rrf`` or ``weighted`` function of a hybrid search, in the ranker form the engine fuses with."""

    strategy: str
    params: dict[str, Any]


@dataclass(frozen=True)
class RerankPlan:
    """A validated function score: boosts first (on raw scores), then at most one decay or fusion."""

    boosts: tuple[Boost, ...] = ()
    boost_mode: str = "multiply"
    function_mode: str = "multiply"
    decay: Decay | None = None
    fusion: Fusion | None = None


def is_function_score(ranker: Any) -> bool:
    """True when ``ranker`` is a function score (``{"functions": [...]}``) rather than a strategy ranker."""
    return isinstance(ranker, dict) and "functions" in ranker


def parse_function_score(spec: dict[str, Any], schema: CollectionSchema, *, hybrid: bool = False) -> RerankPlan:
    """The validated plan of function score ``spec`` over ``schema``; `ParamError` on any bad part."""
    functions = spec.get("functions") or []
    if not isinstance(functions, (list, tuple)) or not functions:
        raise _bad("ranker: the function score has no functions; expected at least one rerank function")
    params = {str(k).lower(): v for k, v in dict(spec.get("params") or {}).items()}
    unknown = sorted(set(params) - _SCORE_PARAMS)
    if unknown:
        raise _bad(f"ranker: unknown function score params {unknown}; expected {sorted(_SCORE_PARAMS)}")
    modes = {k: _mode(k, params.get(k, "multiply")) for k in _SCORE_PARAMS}
    boosts: list[Boost] = []
    decay: Decay | None = None
    fusion: Fusion | None = None
    for fn in functions:
        name, kind, fp = _function_parts(fn)
        if kind == "boost":
            if hybrid:
                raise _bad(f"ranker: function {name!r}: the boost reranker cannot rank a hybrid search; "
                           "expected rrf, weighted or decay (a boost may rank a single search)")
            boosts.append(_boost(name, fn, fp, schema))
            continue
        if kind not in ("decay", "rrf", "weighted") or (kind != "decay" and not hybrid):
            allowed = "'rrf', 'weighted', 'decay'" if hybrid else "'decay', 'boost'"
            raise _bad(f"ranker: function {name!r}: Unsupported rerank function: [{kind}]; expected one of {allowed}")
        if decay is not None or fusion is not None:
            raise _bad(f"ranker: function {name!r}: Currently only supports one rerank, but got a second "
                       f"non-boost rerank function ({kind})")
        if kind == "decay":
            decay = _decay(name, fn, fp, schema)
        else:
            fusion = _fusion(name, kind, fn, fp)
    if not hybrid and decay is None and not boosts:
        raise _bad("ranker: expected a decay or boost rerank function")
    if hybrid and decay is None and fusion is None:
        raise _bad("ranker: a hybrid search needs an rrf, weighted or decay rerank function")
    return RerankPlan(tuple(boosts), modes["boost_mode"], modes["function_mode"], decay, fusion)


def _function_parts(fn: Any) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(fn, dict):
        raise _bad(f"ranker: got function {fn!r}, expected a rerank Function")
    name = str(fn.get("name") or "")
    kind_of = fn.get("type")
    if kind_of not in (None, 3, "RERANK", "Rerank") and getattr(kind_of, "value", None) != 3:
        raise _bad(f"ranker: function {name!r} has type {kind_of!r}; expected FunctionType.RERANK")
    if fn.get("output_field_names"):
        raise _bad(f"ranker: function {name!r}: Rerank function should not have output field, got "
                   f"{list(fn['output_field_names'])} (a search's columns are read-only)")
    fp = {str(k).lower(): v for k, v in dict(fn.get("params") or {}).items()}
    kind = str(fp.get("reranker", "")).lower()
    if not kind:
        raise _bad(f"ranker: function {name!r} has no 'reranker' param; expected decay, boost, rrf or weighted")
    unknown = sorted(set(fp) - _KNOWN.get(kind, set(fp)))
    if unknown:
        raise _bad(f"ranker: function {name!r} ({kind}): unknown params {unknown}; "
                   f"expected {sorted(_KNOWN[kind])}")
    return name, kind, fp


def _decay(name: str, fn: dict[str, Any], fp: dict[str, Any], schema: CollectionSchema) -> Decay:
    inputs = list(fn.get("input_field_names") or [])
    if len(inputs) != 1:
        raise _bad(f"ranker: decay function {name!r}: Decay function only supports single input, got {inputs}")
    f = schema.field(inputs[0])
    if f is None:
        raise _bad(f"ranker: decay function {name!r}: input field {inputs[0]!r} does not exist; "
                   f"fields are {schema.field_names()}")
    if f.nullable:
        raise _bad(f"ranker: decay function {name!r}: Function input field cannot be nullable ({f.name!r})")
    if f.dtype not in DECAY_TYPES:
        raise _bad(f"ranker: decay function {name!r}: Decay rerank: unsupported input field type:{f.dtype.name} "
                   f"of {f.name!r}, only support numberic field ({', '.join(t.name for t in DECAY_TYPES)})")
    curve = str(fp.get("function", "")).lower()
    if curve not in _DECAY_CURVES:
        raise _bad(f"ranker: decay function {name!r}: Invalid decay function: {fp.get('function')!r}, "
                   "only support [gauss,linear,exp]")
    for need in ("origin", "scale"):
        if need not in fp:
            raise _bad(f"ranker: decay function {name!r}: Decay function lost param: {need}")
    origin = _number(name, "origin", fp["origin"])
    scale = _number(name, "scale", fp["scale"])
    offset = _number(name, "offset", fp.get("offset", 0))
    decay = _number(name, "decay", fp.get("decay", 0.5))
    if scale <= 0:
        raise _bad(f"ranker: decay function {name!r}: Decay function param: scale must > 0, but got {scale}")
    if offset < 0:
        raise _bad(f"ranker: decay function {name!r}: Decay function param: offset must >= 0, but got {offset}")
    if not 0 < decay < 1:
        raise _bad(f"ranker: decay function {name!r}: Decay function param: decay must 0 < decay < 1, but got {decay}")
    return Decay(name, f.name, curve, origin, scale, offset, decay)


def _boost(name: str, fn: dict[str, Any], fp: dict[str, Any], schema: CollectionSchema) -> Boost:
    if fn.get("input_field_names"):
        raise _bad(f"ranker: boost function {name!r} takes no input fields; got "
                   f"{list(fn['input_field_names'])} (expected [])")
    if "weight" not in fp:
        raise _bad(f"ranker: boost function {name!r} lacks param 'weight'; expected a number")
    weight = _number(name, "weight", fp["weight"])
    flt = fp.get("filter", "") or ""
    if not isinstance(flt, str):
        raise _bad(f"ranker: boost function {name!r}: filter {flt!r} is not a string; expected an expression")
    seed: int | None = None
    rfield = ""
    if "random_score" in fp:
        rs = _json_value(fp["random_score"])
        if not isinstance(rs, dict):
            raise _bad(f"ranker: boost function {name!r}: random_score {fp['random_score']!r} is not an "
                       "object; expected {'seed': int, 'field': name}")
        extra = sorted(set(rs) - {"seed", "field"})
        if extra:
            raise _bad(f"ranker: boost function {name!r}: unknown random_score keys {extra}; "
                       "expected 'seed' and 'field'")
        seed = _integer(name, "random_score.seed", rs.get("seed", 0))
        rfield = str(rs.get("field") or "")
        if rfield:
            f = schema.field(rfield)
            if f is None or f.dtype is not DataType.INT64:
                got = "does not exist" if f is None else f"is {f.dtype.name}"
                raise _bad(f"ranker: boost function {name!r}: random_score field {rfield!r} {got}; "
                           "expected an INT64 field")
    return Boost(name, weight, flt.strip(), seed, rfield)


def _fusion(name: str, kind: str, fn: dict[str, Any], fp: dict[str, Any]) -> Fusion:
    if kind == "rrf":
        k = _number(name, "k", fp.get("k", 60))
        if not 0 < k < 16384:
            raise _bad(f"ranker: rrf function {name!r}: k must be in (0, 16384), got {k}")
        return Fusion("rrf", {"k": k})
    weights = _json_value(fp.get("weights", []))
    if not isinstance(weights, list) or not weights:
        raise _bad(f"ranker: weighted function {name!r}: weights {fp.get('weights')!r} is not a "
                   "non-empty list of numbers")
    norm = fp.get("norm_score", False)
    if isinstance(norm, str):
        if norm.lower() not in ("true", "false"):
            raise _bad(f"ranker: weighted function {name!r}: norm_score {norm!r} is not a bool")
        norm = norm.lower() == "true"
    values = [_number(name, "weights", w) for w in weights]
    if any(not 0 <= w <= 1 for w in values):
        raise _bad(f"ranker: weighted function {name!r}: weights {values} must each be in [0, 1]")
    return Fusion("weighted", {"weights": values, "norm_score": bool(norm)})


def _mode(key: str, value: Any) -> str:
    mode = str(value).lower()
    if mode not in _MODES:
        raise _bad(f"ranker: {key} {value!r} is not one of {list(_MODES)} (case does not matter)")
    return mode


def _json_value(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _number(fname: str, key: str, v: Any) -> float:
    if isinstance(v, bool):
        raise _bad(f"ranker: function {fname!r}: Param {key}:{v} is not a number")
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise _bad(f"ranker: function {fname!r}: Param {key}:{v} is not a number") from None
    if not math.isfinite(out):
        raise _bad(f"ranker: function {fname!r}: {key} {v!r} is not a finite number")
    return out


def _integer(fname: str, key: str, v: Any) -> int:
    x = _number(fname, key, v)
    if x != int(x):
        raise _bad(f"ranker: function {fname!r}: {key} {v!r} is not an integer")
    return int(x)


# -- the formulas, vectorised -------------------------------------------------------------------------------------


def greater_is_better(scores: np.ndarray, metric: str) -> np.ndarray:
    """Scores as larger-is-better: unchanged for IP, COSINE and BM25, ``1 - 2·atan(s)/π`` for distances."""
    if metric.upper() in ("IP", "COSINE", "BM25"):
        return scores
    return 1.0 - 2.0 * np.arctan(scores) / math.pi


def murmur_random(keys: np.ndarray, seed: int) -> np.ndarray:
    """Milvus's random score: MurmurHash3 (x64, one 16-byte block of key and seed) mapped into [0, 1)."""
    k = keys.astype(np.int64).view(np.uint64)
    s = np.uint64(seed & _MASK64)
    c1, c2 = np.uint64(0x87C37B91114253D5), np.uint64(0x4CF5AD432745937F)
    with np.errstate(over="ignore"):
        h1 = k ^ s
        h2 = np.full_like(k, s)
        k1 = _rotl(k * c1, 31) * c2
        h1 ^= k1
        h1 = _rotl(h1, 27) + h2
        h1 = h1 * np.uint64(5) + np.uint64(0x52DCE729)
        k2 = _rotl(h2 * c2, 33) * c1
        h2 ^= k2
        h2 = _rotl(h2, 31) + h1
        h2 = h2 * np.uint64(5) + np.uint64(0x38495AB5)
        h1 ^= np.uint64(16)
        h2 ^= np.uint64(16)
        h1 = h1 + h2
        h2 = h2 + h1
        h1 = _fmix(h1)
        h2 = _fmix(h2)
        h1 = h1 + h2
    bits = np.uint64(0x3FF << 52) | (h1 & np.uint64(0xFFFFFFFFFFFFF))
    return bits.view(np.float64) - 1.0


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _fmix(k: np.ndarray) -> np.ndarray:
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xFF51AFD7ED558CCD)
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xC4CEB9FE1A85EC53)
    return k ^ (k >> np.uint64(33))


def combine_boosts(values: list[np.ndarray], mode: str) -> np.ndarray:
    """The function values of several boosts (NaN where a boost does not apply) combined by ``mode``; NaN: none."""
    out = values[0].copy()
    for v in values[1:]:
        both = ~np.isnan(out) & ~np.isnan(v)
        merged = out * v if mode == "multiply" else out + v
        out = np.where(both, merged, np.where(np.isnan(out), v, out))
    return out


def apply_boost(scores: np.ndarray, boost: np.ndarray, mode: str) -> np.ndarray:
    """Raw scores with the combined boost applied by ``boost_mode``, where one applies."""
    has = ~np.isnan(boost)
    new = scores * boost if mode == "multiply" else scores + boost
    return np.where(has, new, scores)
