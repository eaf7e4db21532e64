"""The package structure, read from the source with `ast`: layers, import cycles, module size.

Layers, top to bottom: client and server -> wire -> engine -> data -> the
top-level shared modules (`_errors`, `_types`, `_schema`, `_requests`,
`_workers`). Imports flow one way. Every ``import`` counts for the layers,
wherever it is written: at module level, inside a function or under
``if TYPE_CHECKING:``. Cycles are those of the imports that run: an import
under ``if TYPE_CHECKING:`` names a type for annotations only (the parts of
the engine annotate the `Engine` they belong to) and runs nothing.

A known violation that is being removed is listed in `EXPECTED_VIOLATIONS`
under the key the failure message prints; a listed violation that no longer
occurs fails too, so the list cannot go stale.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_LINES = 600
GENERATED = {"heron.client._sync_client"}  # never longer than its _async_ source

EXPECTED_VIOLATIONS: frozenset[str] = frozenset()

_UPPER = ("heron.wire", "heron.client", "heron.server")
_SHARED = ("heron._errors", "heron._types", "heron._schema", "heron._requests", "heron._requests_admin",
           "heron._requests_ops", "heron._workers")

_TEXT_MODULES = (
    "heron.engine.functions._analyzer",
    "heron.engine.functions._analyzer_filters",
    "heron.engine.functions._analyzer_tokenizers",
    "heron.engine.index._text_index",
)

# (modules the rule is about, modules they must not import, modules exempt from that)
LAYER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (("heron.engine", "heron.data"), (*_UPPER, "grpc", "asyncio"), ()),
    (("heron.data",), ("heron.engine",), ()),
    (("heron.wire",), ("heron.engine", "heron.client", "heron.server", "grpc"), ()),
    (("heron.server",), ("heron.client",), ()),
    (("heron.client",), ("heron.server",), ()),
    (("heron.client._base",), ("heron.client.transports",), ()),
    # The filter language stands on data and the shared modules alone; its
    # warm-up also runs the insert path once, which ends in an IPC record;
    # text_match/phrase_match analyze their query and read the token index
    # (modules that themselves import no other part of the engine).
    (("heron.engine.filter",), ("heron.engine",), ("heron.engine.filter", "heron.engine.storage._ipc",
                                                   *_TEXT_MODULES)),
    (_SHARED, ("heron.data", "heron.engine", *_UPPER), ()),
)


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    path: Path
    line: int
    type_only: bool = False

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@cache
def _modules(package: str) -> dict[str, Path]:
    base = SRC if package == "heron" else ROOT
    out = {}
    for path in sorted((base / package).rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


@cache
def _imports(package: str) -> tuple[Import, ...]:
    """Every import in `package`, resolved to absolute module names (a submodule where one is named)."""
    modules = _modules(package)
    found = []
    for source, path in modules.items():
        own_package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        type_only = {
            id(inner) for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
            for stmt in node.body for inner in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [Import(source, a.name, path, node.lineno, id(node) in type_only) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = own_package.split(".")[: len(own_package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    found.append(Import(source, sub if sub in modules else target, path, node.lineno,
                                        id(node) in type_only))
    return tuple(i for i in found if i.target != "__future__")


def _check(prefix: str, violations: dict[str, list[str]]) -> None:
    expected = {v for v in EXPECTED_VIOLATIONS if v.startswith(prefix)}
    new = {k: v for k, v in violations.items() if k not in expected}
    gone = sorted(expected - violations.keys())
    msg = []
    for key, lines in sorted(new.items()):
        msg.append(key + ":\n" + "\n".join("    " + line for line in lines))
    msg += [f"{key}: no longer occurs; remove it from EXPECTED_VIOLATIONS" for key in gone]
    assert not msg, "\n".join(msg)


def test_layers_import_only_downwards():
    violations: dict[str, list[str]] = defaultdict(list)
    for imp in _imports("heron"):
        for sources, forbidden, exempt in LAYER_RULES:
            if _within(imp.source, sources) and _within(imp.target, forbidden) \
                    and not _within(imp.target, exempt):
                violations[f"layer {imp.source} -> {imp.target}"].append(f"{imp.where()} imports {imp.target}")
    _check("layer ", violations)


def _cycles(package: str) -> dict[str, list[str]]:
    """Each strongly connected set of modules, keyed by its sorted members, shown as one chain."""
    modules = _modules(package)
    edges: dict[str, dict[str, Import]] = defaultdict(dict)
    for imp in _imports(package):
        if imp.target in modules and imp.target != imp.source and not imp.type_only:
            edges[imp.source].setdefault(imp.target, imp)
    out = {}
    for scc in _strongly_connected(sorted(modules), edges):
        if len(scc) < 2:
            continue
        start = min(scc)
        chain = _shortest_cycle(start, scc, edges)
        shown = [f"{a} -> {b} ({edges[a][b].where()})" for a, b in zip(chain, chain[1:])]
        if len(scc) > len(chain) - 1:
            shown.append(f"(the cycle set also holds {', '.join(sorted(scc - set(chain)))})")
        out["cycle " + " ".join(sorted(scc))] = shown
    return out


def _strongly_connected(nodes: list[str], edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.add(w)
                if w == v:
                    break
            out.append(scc)

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def _shortest_cycle(start: str, scc: set[str], edges: dict[str, dict[str, Import]]) -> list[str]:
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w == start:
                    chain = [v]
                    while chain[-1] != start:
                        chain.append(prev[chain[-1]])
                    return [*reversed(chain), start]
                if w in scc and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def test_no_import_cycles_in_heron():
    _check("cycle heron", _cycles("heron"))


def test_no_import_cycles_in_bench():
    _check("cycle bench", _cycles("bench"))


def test_no_module_over_600_lines():
    violations = {}
    for module, path in _modules("heron").items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and module not in GENERATED:
            violations[f"size {module}"] = [f"{path.relative_to(ROOT)}: {lines} lines (limit {MAX_LINES})"]
    _check("size ", violations)
