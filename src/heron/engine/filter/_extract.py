"""Typed views of JSON paths and ARRAY columns, built once per column and cached.

JSON and ARRAY columns hold Python objects, so reading a path or flattening
lists is one Python-level pass over the rows; everything after it (compare,
``in``, ``like``, containment, length) is vectorised over the typed lanes
built here. The pass is cached per values array: the cache holds a weak
reference to the array, so entries die with it. A values array that is a
prefix view of a larger buffer (as growing segments hand out) shares the
entry of that buffer, so appending rows does not recompute the prefix.
Callers must not change rows of a values array in place after evaluating a
filter over it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..._types import DataType
from ...data._pa import strings
from ._scalar import INT64_MAX, INT64_MIN


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

OTHER, NULL, BOOL, INT, FLOAT, STR, ABSENT = 0, 1, 2, 3, 4, 5, 6
_KIND: dict[Any, int] = {bool: BOOL, int: INT, float: FLOAT, str: STR, type(None): NULL, _Missing: ABSENT}
_KIND.update(dict.fromkeys((np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32), INT))
_KIND.update(dict.fromkeys((np.float16, np.float32, np.float64), FLOAT))
_KIND[np.bool_] = BOOL
_KIND[np.str_] = STR


@dataclass(frozen=True)
class Lane:
    """Values of one type (``data``) and the rows that hold one (``mask``; None = every row)."""

    data: Any
    mask: np.ndarray | None

    def head(self, n: int) -> Lane:
        return Lane(self.data[:n], None if self.mask is None else self.mask[:n])


Vals = dict[str, Lane]  # keys: "i" int64, "f" float64, "s" Arrow string, "b" bool


@dataclass(frozen=True)
class Typed:
    """Per-row values of one JSON path (or the elements of lists), split by type."""

    vals: Vals
    null: np.ndarray  # missing or JSON null
    present: np.ndarray  # the key exists (its value may be null)
    raw: np.ndarray  # the Python values, MISSING where the path does not exist

    def head(self, n: int) -> Typed:
        return Typed(
            {k: v.head(n) for k, v in self.vals.items()}, self.null[:n], self.present[:n], self.raw[:n]
        )


@dataclass(frozen=True)
class ListView:
    """Lists per row flattened: row ``r`` owns ``elems[offsets[r]:offsets[r+1]]``."""

    offsets: np.ndarray
    is_list: np.ndarray
    elems: Typed

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def head(self, n: int) -> ListView:
        return ListView(self.offsets[: n + 1], self.is_list[:n], self.elems.head(int(self.offsets[n])))


def _objects(items: Any, n: int) -> np.ndarray:
    return np.fromiter(items, dtype=object, count=n)


def _lane(mask: np.ndarray, data: np.ndarray) -> Lane:
    return Lane(data, None if mask.all() else mask)


_ONE_TYPE = {str: STR, int: INT, float: FLOAT, bool: BOOL}
_EMPTY = {type(None), _Missing}


def _classify_one_type(objs: np.ndarray) -> Typed | None:
    """`classify` for the common column whose values share one type (besides null / missing).

    Reads the types with C-level loops; None when the values mix types (the
    general pass handles those) or an integer does not fit in int64.
    """
    types = set(map(type, objs))
    kinds = [_ONE_TYPE.get(t) for t in types - _EMPTY]
    if len(kinds) != 1 or kinds[0] is None:
        return None
    n = len(objs)
    absent = objs == MISSING if _Missing in types else np.zeros(n, dtype=bool)
    null = (objs == None) if type(None) in types else np.zeros(n, dtype=bool)  # noqa: E711 (elementwise)
    m = ~(absent | null)
    kind = kinds[0]
    if kind == STR:
        strs = objs if m.all() else np.where(m, objs, np.array(None, dtype=object))
        data: Any = strings(strs)
        key = "s"
    else:
        key, dtype = {INT: ("i", np.int64), FLOAT: ("f", np.float64), BOOL: ("b", np.bool_)}[kind]
        try:
            data = (objs if m.all() else np.where(m, objs, 0)).astype(dtype)
        except OverflowError:
            return None
    return Typed({key: _lane(m, data)}, absent | null, ~absent, objs)


def classify(objs: np.ndarray) -> Typed:
    """Split an object array of values into typed lanes (one pass to read the types)."""
    fast = _classify_one_type(objs)
    if fast is not None:
        return fast
    n = len(objs)
    get = _KIND.get
    kinds = np.fromiter((get(type(v), OTHER) for v in objs), dtype=np.int8, count=n)
    vals: Vals = {}
    m = kinds == INT
    if m.any():
        sel = objs[m]
        try:
            ints = sel.astype(np.int64)
        except OverflowError:  # integers past int64 are kept out of every comparison
            ok = np.fromiter((INT64_MIN <= int(v) <= INT64_MAX for v in sel), dtype=bool, count=len(sel))
            kinds[np.flatnonzero(m)[~ok]] = OTHER
            m = kinds == INT
            ints = objs[m].astype(np.int64)
        data = np.zeros(n, dtype=np.int64)
        data[m] = ints
        vals["i"] = _lane(m, data)
    for kind, key, dtype in ((FLOAT, "f", np.float64), (BOOL, "b", np.bool_)):
        m = kinds == kind
        if m.any():
            data = np.zeros(n, dtype=dtype)
            data[m] = objs[m].astype(dtype)
            vals[key] = _lane(m, data)
    m = kinds == STR
    if m.any():
        strs = objs.copy()
        strs[~m] = None
        vals["s"] = _lane(m, strings(strs))
    absent = kinds == ABSENT
    return Typed(vals, (kinds == NULL) | absent, ~absent, objs)


def extract_path(values: np.ndarray, path: tuple[str | int, ...]) -> np.ndarray:
    """The value at ``path`` in each row (MISSING where a step does not exist)."""
    cur = values
    n = len(values)
    for step in path:
        if isinstance(step, str):
            try:  # every row a dict: a C-level loop
                cur = _objects(map(dict.get, cur, itertools.repeat(step), itertools.repeat(MISSING)), n)
                continue
            except TypeError:
                pass
            cur = _objects((v.get(step, MISSING) if type(v) is dict else MISSING for v in cur), n)
        else:
            i = step
            cur = _objects((v[i] if type(v) is list and 0 <= i < len(v) else MISSING for v in cur), n)
    return cur


def flatten(objs: np.ndarray) -> ListView:
    """Flatten the lists in ``objs`` (rows holding anything else count as null)."""
    n = len(objs)
    lens = np.fromiter(
        (len(v) if isinstance(v, (list, tuple)) else -1 for v in objs), dtype=np.int64, count=n
    )
    is_list = lens >= 0
    lens[~is_list] = 0
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    chain = itertools.chain.from_iterable(v for v in objs if isinstance(v, (list, tuple)))
    flat = _objects(chain, int(offsets[-1]))
    return ListView(offsets, is_list, classify(flat))


T = TypeVar("T", Typed, ListView)


class _Cache:
    """Bounded cache of views keyed by (values buffer, what); thread-safe."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, Hashable], tuple[weakref.ref[Any], int, Any]] = OrderedDict()
        self._lock = threading.RLock()

    @staticmethod
    def _root(values: np.ndarray) -> np.ndarray:
        root = values
        while isinstance(root.base, np.ndarray) and root.base.ndim == 1:
            root = root.base
        same = root is values or (
            root.dtype == values.dtype
            and root.strides == values.strides
            and root.__array_interface__["data"][0] == values.__array_interface__["data"][0]
        )
        return root if same else values

    def get(self, values: np.ndarray, what: Hashable, build: Callable[[np.ndarray], T]) -> T:
        root = self._root(values)
        key = (id(root), what)
        n = len(values)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0]() is root and hit[1] >= n:
                self._items.move_to_end(key)
                return hit[2] if hit[1] == n else hit[2].head(n)  # type: ignore[no-any-return]
        view = build(values)
        with self._lock:
            self._items[key] = (weakref.ref(root, self._discarder(key)), n, view)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return view

    def _discarder(self, key: tuple[int, Hashable]) -> Callable[[Any], None]:
        def discard(_ref: Any) -> None:
            with self._lock:
                self._items.pop(key, None)

        return discard

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = _Cache()


def json_view(values: np.ndarray, path: tuple[str | int, ...]) -> Typed:
    """Typed lanes of ``path`` over a JSON column (cached)."""
    return CACHE.get(values, ("json", path), lambda v: classify(extract_path(v, path)))


def list_view(values: np.ndarray, path: tuple[str | int, ...] | None) -> ListView:
    """Flattened lists of an ARRAY column (``path`` None) or of a JSON path (cached)."""
    if path is None:
        return CACHE.get(values, ("array",), flatten)
    return CACHE.get(values, ("jsonlist", path), lambda v: flatten(extract_path(v, path)))


#: `prewarm_json_keys` extracts at most this many top-level keys per JSON column,
#: those found in at least half of the rows it samples.
PREWARM_KEYS = 4
_PREWARM_SAMPLE = 64


def prewarm_json_keys(values: np.ndarray) -> list[str]:
    """Extract the common top-level keys of a JSON column into the view cache, ahead of any filter.

    A filter on a JSON key first pulls that key out of every document (about
    0.1 us a row, ~11 ms for 100,000), then remembers it. A sealed segment's
    maintenance does this for the keys most rows have, so the first such filter
    runs at the speed of the later ones. Returns the keys extracted.
    """
    n = len(values)
    if n == 0:
        return []
    counts: dict[str, int] = {}
    sample = values[:: max(1, n // _PREWARM_SAMPLE)][:_PREWARM_SAMPLE]
    for v in sample:
        if type(v) is dict:
            for key in v:
                if type(key) is str:
                    counts[key] = counts.get(key, 0) + 1
    common = sorted((k for k, c in counts.items() if 2 * c >= len(sample)), key=lambda k: -counts[k])
    keys = common[:PREWARM_KEYS]
    for key in keys:
        json_view(values, (key,))
    return keys


def prewarm_segment(seg: Any) -> None:
    """`prewarm_json_keys` for each JSON column of sealed segment `seg` (derived data: a failure is logged)."""
    for name, dtype in seg.dtypes.items():
        if dtype is not DataType.JSON or name not in seg.cols:
            continue
        try:
            prewarm_json_keys(seg.column(name, seg.n).values)
        except Exception:  # only time is lost: the first filter on the key extracts it itself
            logging.getLogger("heron.engine").exception("extracting JSON keys of %s in segment %s failed",
                                                        name, seg.id)
