"""How big a filter may be, and the reading of long literal runs without the grammar.

A filter is refused with `FilterError` when its text is longer than
``HERON_FILTER_MAX_LENGTH`` characters (default 1 MiB), when its syntax tree
nests deeper than ``HERON_FILTER_MAX_DEPTH`` levels (default 100), or when it
holds more than ``HERON_FILTER_MAX_TERMS`` terms, list items included (default
1,000,000). The environment variables are read when a filter is first
compiled, so they can be changed while a process runs; the message of each
refusal names the variable that raises the limit.

Long lists of literals (``id in [1, 2, ...]``) and long chains of equalities
on one name (``a == 1 or a == 2 or ...``) are read here with regular
expressions, in one pass over the text, and handed to the parser as one
placeholder of the same width (so the offsets of everything else are kept):
the LALR parser builds several tree objects per token, which costs seconds
for 100,000 items where this reading costs milliseconds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ..._errors import FilterError
from . import _ast as A

DEFAULT_MAX_LENGTH = 1 << 20
DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_TERMS = 1_000_000

#: Lists and chains shorter than this go through the grammar like everything else.
LIFT_MIN = 16


@dataclass(frozen=True)
class Limits:
    max_length: int
    max_depth: int
    max_terms: int


def filter_error(message: str, expr: str, pos: int | None) -> FilterError:
    """`FilterError` showing at most ~120 characters of ``expr`` around ``pos`` (a long filter is cut)."""
    if len(expr) <= 120:
        return FilterError(message, expr, pos)
    at = pos or 0
    lo = max(0, at - 60)
    hi = min(len(expr), lo + 120)
    head = "..." if lo else ""
    text = head + expr[lo:hi] + ("..." if hi < len(expr) else "")
    return FilterError(f"{message} (at offset {at} of {len(expr):,} characters)", text, at - lo + len(head))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        v = int(raw)
    except ValueError:
        raise FilterError(f"{name}={raw!r}: expected a positive integer") from None
    if v < 1:
        raise FilterError(f"{name}={raw!r}: expected a positive integer")
    return v


def current_limits() -> Limits:
    """The limits in force now (from the environment, else the defaults)."""
    return Limits(
        _env_int("HERON_FILTER_MAX_LENGTH", DEFAULT_MAX_LENGTH),
        _env_int("HERON_FILTER_MAX_DEPTH", DEFAULT_MAX_DEPTH),
        _env_int("HERON_FILTER_MAX_TERMS", DEFAULT_MAX_TERMS),
    )


def check_length(expr: str, limits: Limits) -> None:
    if len(expr) > limits.max_length:
        raise FilterError(
            f"filter is {len(expr):,} characters long; the limit is {limits.max_length:,} "
            "(set HERON_FILTER_MAX_LENGTH to raise it, or pass long value lists as filter_params)"
        )


def check_tree(node: A.Node, expr: str, limits: Limits, lifted_terms: int) -> None:
    """Refuse a tree deeper than the depth limit or with more terms than the term limit, without recursion."""
    terms = lifted_terms
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > limits.max_depth:
            raise filter_error(
                f"filter nests more than {limits.max_depth} levels deep "
                "(set HERON_FILTER_MAX_DEPTH to raise the limit)", expr, getattr(n, "pos", 0))
        terms += 1
        for child in _children(n):
            stack.append((child, depth + 1))
    if terms > limits.max_terms:
        raise FilterError(
            f"filter has {terms:,} terms; the limit is {limits.max_terms:,} "
            "(set HERON_FILTER_MAX_TERMS to raise it)")


def _children(n: Any) -> tuple[Any, ...]:
    if isinstance(n, (A.Literal, A.Name, A.Param, A.ConstList, A.EqChain)):
        return ()
    if isinstance(n, A.ListExpr):
        return n.items
    if isinstance(n, A.Index):
        return (n.base, n.key)
    if isinstance(n, A.Call):
        return (*n.args, *(v for _, v in n.kwargs))
    if isinstance(n, A.Unary):
        return (n.operand,)
    if isinstance(n, A.BinOp):
        return (n.left, n.right)
    if isinstance(n, A.Compare):
        return n.operands
    if isinstance(n, A.InTest):
        return (n.value, n.container)
    if isinstance(n, A.LikeTest):
        return (n.value, n.pattern)
    if isinstance(n, (A.NullTest, A.Exists)):
        return (n.value,)
    if isinstance(n, A.BoolOp):
        return n.items
    if isinstance(n, A.Not):
        return (n.operand,)
    return ()


def check_text_depth(expr: str, limits: Limits) -> None:
    """Refuse brackets nested past the depth limit before the parser builds a tree for them.

    Brackets inside string literals count too: this only ever refuses early
    what could be refused later, and a caret still points at the bracket.
    """
    if expr.count("(") + expr.count("[") <= limits.max_depth:
        return
    depth = 0
    for m in _BRACKETS.finditer(expr):
        c = m.group()
        if c in "([":
            depth += 1
            if depth > limits.max_depth:
                raise filter_error(
                    f"filter nests more than {limits.max_depth} levels deep "
                    "(set HERON_FILTER_MAX_DEPTH to raise the limit)", expr, m.start())
        elif c in ")]":
            depth -= 1


# -- reading long literal runs ----------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "b": "\b", "f": "\f"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|.)", re.S)
_STR = r"""[rR]?"(?:[^"\\]|\\.)*"|[rR]?'(?:[^'\\]|\\.)*'"""
_NUM = r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|\d+)"
_LIT = rf"(?:{_STR}|{_NUM}|(?i:true|false)\b)"
_BRACKETS = re.compile(rf"{_STR}|[()\[\]]", re.S)
_SCAN = re.compile(rf"{_STR}|\[|(?<![A-Za-z0-9_$])[A-Za-z_][A-Za-z0-9_]*", re.S)
_LIT_RE = re.compile(_LIT, re.S)
_INTS = re.compile(r"\[([\s\d,+-]*)\]")
_PLAIN_STRS = re.compile(r'\[(\s*"[^"\\]*"\s*(?:,\s*"[^"\\]*"\s*)*)\]')
_PLAIN_STR = re.compile(r'"([^"\\]*)"')
_LIST = re.compile(rf"\[\s*{_LIT}(?:\s*,\s*{_LIT})*\s*,?\s*\]", re.S)
_TERM = re.compile(rf"\s*==\s*({_LIT})", re.S)
_OR_BEFORE = re.compile(r"(?<![A-Za-z0-9_$])(?i:or)\Z")
_OR = re.compile(r"\s*(?:(?i:or)\b|\|\|)\s*")
_KEYWORDS = frozenset({"or", "and", "not", "in", "like", "is", "null", "exists", "true", "false"})
_NUMBER_START = frozenset("+-.0123456789")


def unquote(text: str) -> str:
    """The value of a string literal token (quotes removed, escapes applied unless raw).

    An escape that is not recognised (``\\%``, ``\\_``, ``\\d``) keeps its
    backslash, so ``like`` patterns can escape their wildcards.
    """
    if text[0] in "rR":
        return text[2:-1]

    def repl(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "uUx" and len(s) > 1:
            return chr(int(s[1:], 16))
        return _ESCAPES.get(s, "\\" + s)

    return _ESCAPE_RE.sub(repl, text[1:-1])


def _literal(text: str) -> Any:
    c = text[0]
    if c in _NUMBER_START:
        body = text.lstrip("+-")
        neg = text.startswith("-")
        low = body.lower()
        if low.startswith(("0x", "0b", "0o")):
            v: Any = int(low, 0)
        elif any(ch in low for ch in ".e"):
            v = float(body)
        else:
            v = int(body, 10)
        return -v if neg else v
    if c in "tTfF" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return unquote(text)


def _fits_int64(v: Any) -> bool:
    return type(v) is not int or -(2**63) <= v < 2**63


def lift(expr: str) -> tuple[str, dict[int, A.Node], int]:
    """``expr`` with its long literal lists and equality chains replaced by placeholders.

    Returns the text for the parser, the node each placeholder stands for (by
    the offset of its ``{``) and how many values were lifted. An expression
    with nothing long enough comes back as it is.
    """
    if len(expr) < 64 or ("[" not in expr and "==" not in expr):
        return expr, {}, 0
    out: list[str] = []
    nodes: dict[int, A.Node] = {}
    count = 0
    pos = 0
    done = 0
    while True:
        m = _SCAN.search(expr, pos)
        if m is None:
            break
        tok = m.group()
        if tok[0] in "\"'" or (tok[0] in "rR" and len(tok) > 1 and tok[1] in "\"'"):
            pos = m.end()
            continue
        if tok == "[":
            got = _read_list(expr, m.start())
        elif tok.lower() in _KEYWORDS:
            got = None
        else:
            got = _read_chain(expr, m.start(), tok)
        if got is None:
            pos = m.end()
            continue
        start, end, node, n = got
        out.append(expr[done:start])
        out.append(_placeholder(start, end))
        nodes[start] = node
        count += n
        done = pos = end
    if not nodes:
        return expr, {}, 0
    out.append(expr[done:])
    return "".join(out), nodes, count


def _placeholder(start: int, end: int) -> str:
    text = "{_heron_lifted}"
    return text + " " * (end - start - len(text))


def _read_list(expr: str, start: int) -> tuple[int, int, A.Node, int] | None:
    vals: list[Any] | None = None
    m = _INTS.match(expr, start)
    if m is not None:  # the usual list of decimal integers, read without a match per item
        try:
            vals, end = list(map(int, m.group(1).split(","))), m.end()
        except ValueError:
            vals = None
    if vals is None and (m := _PLAIN_STRS.match(expr, start)) is not None:
        vals, end = _PLAIN_STR.findall(m.group(1)), m.end()  # no escapes: each string's text is its value
    if vals is None:
        if (m := _LIST.match(expr, start)) is None:
            return None
        end = m.end()
        vals = [_literal(t.group()) for t in _LIT_RE.finditer(expr, start, end)]
    if len(vals) < LIFT_MIN or not all(map(_fits_int64, vals)):
        return None  # short lists, and integers past int64 (named by the grammar's path), go the usual way
    return start, end, A.ConstList(start, tuple(vals), end), len(vals)


def item_positions(expr: str, node: A.ConstList) -> list[int]:
    """The offset of each item of a lifted list (found again: only errors need them)."""
    return [t.start() for t in _LIT_RE.finditer(expr, node.pos, node.end)]


def _read_chain(expr: str, start: int, name: str) -> tuple[int, int, A.Node, int] | None:
    if not _before_ok(expr, start):
        return None
    values: list[str] = []
    positions: list[int] = []
    ops: list[int] = []
    ends: list[int] = []
    pos = start + len(name)
    while True:
        m = _TERM.match(expr, pos)
        if m is None:
            break
        ops.append(expr.index("==", pos))
        values.append(m.group(1))
        positions.append(m.start(1))
        ends.append(m.end())
        s = _OR.match(expr, m.end())
        if s is None or expr[s.end():s.end() + len(name)] != name:
            break
        nxt = s.end() + len(name)
        if nxt < len(expr) and (expr[nxt].isalnum() or expr[nxt] == "_"):
            break
        pos = nxt
    if len(values) >= 1 and not _after_ok(expr, ends[-1]):
        values.pop(), positions.pop(), ops.pop(), ends.pop()
    if len(values) < LIFT_MIN:
        return None
    vals = [_literal(v) for v in values]
    if not all(map(_fits_int64, vals)):
        return None
    node = A.EqChain(ops[0], A.Name(start, name), tuple(vals), tuple(positions), tuple(ops))
    return start, ends[-1], node, len(vals)


def _before_ok(expr: str, start: int) -> bool:
    """Whether what precedes ``start`` ends an operand of ``or`` (nothing, ``(``, ``or``, ``||``)."""
    head = expr[:start].rstrip()
    if not head or head.endswith(("(", "||")):
        return True
    return _OR_BEFORE.search(head[-3:]) is not None


def _after_ok(expr: str, end: int) -> bool:
    """Whether what follows ``end`` starts after an operand of ``or`` (nothing, ``)``, ``or``, ``||``)."""
    tail = expr[end:end + 8].lstrip()
    if not tail or tail.startswith((")", "||")):
        return True
    return bool(re.match(r"(?i:or)\b", tail))
