"""The differential harness: cases, the context they run in, and how outcomes are normalised and compared.

A case is one small pymilvus program, written once as ``async def case(ctx)``
against ``ctx.c``. In the ``async`` variant ``ctx.c`` is an
``AsyncMilvusClient``; in the ``sync`` variant it is a ``MilvusClient`` seen
through `AwaitableClient`, which returns each call's finished result as an
awaitable, so the program is the same line for line and only the client's
call style differs. The case returns what it observed; `normalise` turns it
into JSON-able data (enums by name, bytes as hex, exceptions as
``{"error": code, "kind": ...}``) and `same` checks two outcomes with a
tolerance on floats. Each case names its collections with ``ctx.name()``,
which gives the same name on every system, so that descriptions compare
equal; what a case creates is dropped after it.

Shared collections (``ctx.shared(key)``) are made once per system by a
registered setup and then only read, or written in primary-key ranges no
other case touches, so that hundreds of cases cost a few collections.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CaseFn = Callable[["Ctx"], Awaitable[Any]]
SetupFn = Callable[["Ctx", str], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """One program: ``fn(ctx)`` returns the outcome; ``variants`` are the client call styles it runs in."""

    name: str
    fn: CaseFn
    variants: tuple[str, ...] = ("sync", "async")


CASES: dict[str, Case] = {}
SETUPS: dict[str, SetupFn] = {}


def case(name: str, fn: CaseFn, *, sync_only: bool = False) -> None:
    """Register ``fn`` as the case ``name``; a name is registered once."""
    if name in CASES:
        raise ValueError(f"case {name!r} is registered twice")
    CASES[name] = Case(name, fn, ("sync",) if sync_only else ("sync", "async"))


def setup(key: str) -> Callable[[SetupFn], SetupFn]:
    """Register a shared collection's setup: ``fn(ctx, name)`` creates and fills collection ``name``."""

    def register(fn: SetupFn) -> SetupFn:
        SETUPS[key] = fn
        return fn

    return register


# -- the two call styles -----------------------------------------------------------------------------

# Methods that build local objects are plain calls on both pymilvus clients.
PLAIN = frozenset({"create_schema", "prepare_index_params", "create_field_schema", "get_server_type"})


class AwaitableClient:
    """A blocking client seen through awaitables: ``await c.m(...)`` is ``c.m(...)`` called now."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in PLAIN or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return _done(attr(*args, **kwargs))

        return call


async def _done(value: Any) -> Any:
    return value


@dataclass
class System:
    """One side of the comparison: clients of both call styles on one event loop, and its shared collections."""

    label: str
    sync_client: Any
    async_client: Any
    loop: asyncio.AbstractEventLoop
    shared: dict[str, str | Exception] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)

    def client(self, variant: str) -> Any:
        return AwaitableClient(self.sync_client) if variant == "sync" else self.async_client

    def run(self, c: Case, variant: str, api: Any) -> Any:
        """The normalised outcome of case ``c`` in ``variant`` on this system (computed once)."""
        key = f"{c.name}[{variant}]"
        if key not in self.outcomes:
            self.outcomes[key] = self.loop.run_until_complete(_run(self, c, variant, api))
        return self.outcomes[key]


class Ctx:
    """What a case sees: the client ``c``, the pymilvus module ``api``, and names for its collections."""

    def __init__(self, system: System, case_name: str, variant: str, api: Any) -> None:
        self.system = system
        self.c = system.client(variant)
        # Fixtures are made through the blocking client: AsyncMilvusClient's create_index waits
        # on AllocTimestamp, an RPC Milvus Lite lacks (the "collection.*-async" cases show it).
        self.admin = system.client("sync")
        self.api = api
        self.variant = variant
        self._stem = "c_" + re.sub(r"[^0-9a-zA-Z]+", "_", f"{case_name}_{variant}")[:200]
        self._made: list[str] = []

    def name(self, tag: str = "") -> str:
        """A collection name of this case's own, the same on every system; it is dropped after the case."""
        name = f"{self._stem}_{tag}" if tag else self._stem
        self._made.append(name)
        return name

    async def shared(self, key: str) -> str:
        """The shared collection ``key`` on this system, made by its setup when first asked for."""
        if key not in self.system.shared:
            name = "shared_" + re.sub(r"[^0-9a-zA-Z]+", "_", key)
            try:
                await SETUPS[key](_AsAdmin(self), name)
            except Exception as exc:
                self.system.shared[key] = exc
                raise
            self.system.shared[key] = name
        made = self.system.shared[key]
        if isinstance(made, Exception):
            raise made  # every case on a collection whose setup failed reports the setup's error
        return made

    async def cleanup(self) -> None:
        for name in self._made:
            try:
                await self.c.drop_collection(name)
            except Exception:  # the case may have dropped it, or never created it
                pass


class _AsAdmin:
    """A context whose client is the blocking one, for setups."""

    def __init__(self, ctx: Ctx) -> None:
        self.c = ctx.admin
        self.api = ctx.api
        self.variant = ctx.variant


async def _run(system: System, c: Case, variant: str, api: Any) -> Any:
    ctx = Ctx(system, c.name, variant, api)
    try:
        return normalise(await c.fn(ctx))
    except Exception as exc:
        return error_outcome(exc)
    finally:
        await ctx.cleanup()


# -- normalising outcomes ----------------------------------------------------------------------------

_KINDS = (
    (
        "not_exist",
        re.compile(r"not (?:exist|found)|doesn't exist|does not exist|no such|can't find|cannot find", re.I),
    ),
    ("exists", re.compile(r"already exist|duplicate", re.I)),
    ("not_loaded", re.compile(r"not loaded|load", re.I)),
)


def error_outcome(exc: BaseException) -> dict[str, Any]:
    """An exception as data: its code, and a coarse kind read from the message ("not_exist", "exists", ...)."""
    message = str(getattr(exc, "message", "") or exc)
    if callable(getattr(exc, "details", None)):  # a gRPC error that pymilvus passed through
        message = str(exc.details())
    code = getattr(exc, "code", type(exc).__name__)
    if callable(code):
        code = f"grpc:{code().name}"
    elif isinstance(code, int):
        code = int(code)  # pymilvus's codes are IntEnum members (UNEXPECTED_ERROR is 1): compare the numbers
    kind = next((k for k, pattern in _KINDS if pattern.search(message)), "other")
    if code == "grpc:UNIMPLEMENTED":
        kind = "unimplemented"  # the wording is the gRPC library's, not the server's
    return {"error": normalise(code), "kind": kind, "message": message[:300]}


def normalise(value: Any) -> Any:
    """``value`` as JSON-able data: dicts with str keys, lists, numbers, strings; enums by name."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else str(f)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, np.ndarray):
        return normalise(value.tolist())
    if isinstance(value, BaseException):
        return error_outcome(value)
    if isinstance(value, dict) or hasattr(value, "items") and callable(value.items):
        return {str(normalise(k)): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)) or inspect.isgenerator(value):
        items = [normalise(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "to_dict"):
        return normalise(value.to_dict())
    try:  # protobuf repeated fields iterate through __getitem__ alone
        return [normalise(v) for v in iter(value)]
    except TypeError:
        return repr(value)


def rows(result: Iterable[Any], key: str = "id") -> list[Any]:
    """Query rows in primary-key order: Milvus does not define the order of a query without ``order_by``."""
    out = [normalise(dict(r)) for r in result]
    return sorted(out, key=lambda r: _order(r.get(key)))


def _order(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, repr(v))


def hits(result: Iterable[Any], pk: str = "id", ties: bool = False) -> list[list[Any]]:
    """Search hits per query, ordered by distance then primary key (equal distances have no defined order).

    With ``ties``, for scores that tie often (RRF, Hamming), the hits at the last distance are
    given as that distance and their count: which of the tied candidates make the cut is not
    defined either.
    """
    out = []
    for per_query in result:
        hs = [normalise(dict(h)) for h in per_query]
        last = round(float(hs[-1]["distance"]), 4) if hs else 0.0  # the cut, in the server's own order
        hs.sort(key=lambda h: (round(float(h.get("distance", 0)), 4), _order(h.get(pk))))
        if ties and hs:
            cut = [h for h in hs if round(float(h["distance"]), 4) == last]
            hs = [h for h in hs if round(float(h["distance"]), 4) != last] + [
                {"distance": last, "tied": len(cut)}
            ]
        out.append(hs)
    return out


def same(a: Any, b: Any, path: str = "") -> str | None:
    """``None`` when ``a`` and ``b`` agree (floats within 1e-3 relative), else where they first differ."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if abs(a - b) <= 1e-3 * max(1.0, abs(a), abs(b)):
                return None
        return f"{path or '.'}: {a!r} != {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path or '.'}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            if k == "message" and "error" in a:
                continue  # wording is compared through "kind"; the text is shown when codes differ
            d = same(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path or '.'}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b and type(a) is type(b) else f"{path or '.'}: {a!r} != {b!r}"
