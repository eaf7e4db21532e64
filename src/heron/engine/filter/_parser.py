"""Text → syntax tree, with a cache: each distinct expression is parsed once.

Syntax errors become `FilterError` with a caret under the offending
character. The grammar lives in ``_grammar.lark``; ``_grammar.tables`` holds
the parser built from it (``Lark.save``), which loads in ~3 ms where building
takes ~65 ms of grammar analysis. ``scripts/filter_tables.py`` writes it. It is
used only when it was made from this grammar by this version of lark;
otherwise the parser is built from the grammar.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import lark
from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from . import _ast as A
from ._cache import ByteBoundedCache, cache_bytes
from ._limits import check_length, check_text_depth, check_tree, current_limits, filter_error, lift, unquote

log = logging.getLogger("heron.engine")

_TOKEN_NAMES = {
    "COMP_OP": "a comparison",
    "RPAR": "')'",
    "RSQB": "']'",
    "$END": "the end of the expression",
    "NAME": "a field name",
}


def _int(text: str) -> int:
    t = text.lower()
    if t.startswith(("0x", "0b", "0o")):
        return int(t, 0)
    return int(t, 10)


@v_args(inline=True)
class _ToAst(Transformer_NonRecursive):
    """Tree → syntax tree without recursion in Python (a deep tree cannot overflow the stack here).

    ``lifted`` maps the offset of each placeholder `_limits.lift` put in the text to its node.
    """

    def __init__(self, lifted: dict[int, A.Node]) -> None:
        super().__init__()
        self.lifted = lifted

    def int_lit(self, tok: Token) -> A.Literal:
        return A.Literal(tok.start_pos or 0, _int(str(tok)))

    def float_lit(self, tok: Token) -> A.Literal:
        return A.Literal(tok.start_pos or 0, float(str(tok)))

    def string_lit(self, tok: Token) -> A.Literal:
        return A.Literal(tok.start_pos or 0, unquote(str(tok)))

    def iso_lit(self, kw: Token, tok: Token) -> A.Call:  # ISO '...': a TIMESTAMPTZ literal
        return A.Call(kw.start_pos or 0, "ISO", (A.Literal(tok.start_pos or 0, unquote(str(tok))),))

    def interval_lit(self, kw: Token, tok: Token) -> A.Call:  # INTERVAL 'P1D': an ISO-8601 duration
        return A.Call(kw.start_pos or 0, "INTERVAL", (A.Literal(tok.start_pos or 0, unquote(str(tok))),))

    def true_lit(self, tok: Token) -> A.Literal:
        return A.Literal(tok.start_pos or 0, True)

    def false_lit(self, tok: Token) -> A.Literal:
        return A.Literal(tok.start_pos or 0, False)

    def name(self, tok: Token) -> A.Name:
        return A.Name(tok.start_pos or 0, str(tok))

    def param(self, lb: Token, tok: Token, rb: Token) -> A.Node:
        node = self.lifted.get(lb.start_pos or 0)
        return node if node is not None else A.Param(lb.start_pos or 0, str(tok))

    def list_lit(self, lb: Token, *items: Any) -> A.ListExpr:
        return A.ListExpr(lb.start_pos or 0, tuple(i for i in items[:-1] if i is not None))

    def call(self, tok: Token, lp: Token, *rest: Any) -> A.Call:
        items = [r for r in rest[:-1] if r is not None]
        args = tuple(i for i in items if not isinstance(i, tuple))
        kwargs = tuple(i for i in items if isinstance(i, tuple))
        return A.Call(tok.start_pos or 0, str(tok), args, kwargs)

    def kwarg(self, tok: Token, value: A.Node) -> tuple[str, A.Node]:
        return (str(tok), value)

    def index(self, base: A.Node, lb: Token, key: A.Node, rb: Token) -> A.Index:
        return A.Index(lb.start_pos or 0, base, key)

    def unary(self, op: Token, operand: A.Node) -> A.Node:
        return A.Unary(op.start_pos or 0, str(op), operand)

    def binop(self, *items: Any) -> A.Node:
        node = items[0]
        for i in range(1, len(items), 2):
            op = items[i]
            node = A.BinOp(op.start_pos or 0, str(op), node, items[i + 1])
        return node

    bit_or = bit_xor = bit_and = shift = arith = term = power = binop

    def comparison(self, *items: Any) -> A.Compare:
        operands = tuple(items[0::2])
        ops = tuple(str(t) for t in items[1::2])
        op_pos = tuple(t.start_pos or 0 for t in items[1::2])
        return A.Compare(op_pos[0], ops, operands, op_pos)

    def in_test(self, value: A.Node, *rest: Any) -> A.InTest:
        negated = len(rest) == 3
        kw = rest[-2]
        return A.InTest(kw.start_pos or 0, value, rest[-1], negated)

    def like_test(self, value: A.Node, *rest: Any) -> A.LikeTest:
        negated = len(rest) == 3
        kw = rest[-2]
        return A.LikeTest(kw.start_pos or 0, value, rest[-1], negated)

    def null_test(self, value: A.Node, is_tok: Token, *rest: Any) -> A.NullTest:
        return A.NullTest(is_tok.start_pos or 0, value, len(rest) == 2)

    def exists_test(self, kw: Token, value: A.Node) -> A.Exists:
        return A.Exists(kw.start_pos or 0, value)

    def not_test(self, kw: Token, operand: A.Node) -> A.Not:
        return A.Not(kw.start_pos or 0, operand)

    def or_test(self, *items: Any) -> A.BoolOp:
        return A.BoolOp(items[1].start_pos or 0, "or", tuple(items[0::2]))

    def and_test(self, *items: Any) -> A.BoolOp:
        return A.BoolOp(items[1].start_pos or 0, "and", tuple(items[0::2]))


_lark_lock = threading.Lock()
_lark_parser: Lark | None = None
_warming = False


def _after_fork_in_child() -> None:
    # the warm-up thread may have held the lock at the fork; it does not exist in the child
    global _lark_lock
    _lark_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _lark() -> Lark:
    """The LALR parser, loaded (or built) once per process."""
    global _lark_parser
    if _lark_parser is None:
        with _lark_lock:
            if _lark_parser is None:
                text = grammar_text()
                _lark_parser = load_tables(text) or build_parser(text)
    return _lark_parser


def grammar_text() -> str:
    return resources.files(__package__).joinpath("_grammar.lark").read_text(encoding="utf-8")


def build_parser(text: str) -> Lark:
    return Lark(text, parser="lalr", maybe_placeholders=True)


def tables_header(text: str) -> dict[str, str]:
    """What the saved parser must have been made from: this grammar, this lark."""
    return {"grammar_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "lark": lark.__version__}


def save_tables(parser: Lark, text: str) -> bytes:
    """The contents of ``_grammar.tables``: a JSON header line, then the saved parser."""
    out = io.BytesIO()
    out.write(json.dumps(tables_header(text), sort_keys=True).encode("utf-8") + b"\n")
    parser.save(out)
    return out.getvalue()


def load_tables(text: str) -> Lark | None:
    """The parser saved in ``_grammar.tables`` if it was made from ``text`` by this lark, else None."""
    try:
        raw = resources.files(__package__).joinpath("_grammar.tables").read_bytes()
        head, _, data = raw.partition(b"\n")
        if json.loads(head) != tables_header(text):
            log.debug("filter parser tables are out of date; building the parser from the grammar")
            return None
        return Lark.load(io.BytesIO(data))
    except Exception:  # missing or unreadable: building works everywhere, only slower
        log.debug("could not load the filter parser tables", exc_info=True)
        return None


#: Parsed once at warm-up, so the lexer has built its scanners for the common token states.
_WARM_UP_EXPRS = (
    'a == 1 and b != "x" or not (c >= 2.5)',
    'a in [1, 2] and b like "p%" and c["k"] < 3 and d is null',
    'array_contains(a, 1) and b > {p} and c % 2 == 0',
)


def _build_and_exercise() -> None:
    parser = _lark()
    for expr in _WARM_UP_EXPRS:
        parser.parse(expr)


def warm_up(then: Callable[[], None] | None = None) -> None:
    """Build the parser on a background thread, so the first filter does not wait for it; then run `then`."""
    global _warming
    if _lark_parser is None and not _warming:
        _warming = True

        def run() -> None:
            _build_and_exercise()
            if then is not None:
                then()

        # Not a daemon: the interpreter's exit waits for it (well under a second). A daemon thread still in
        # pyarrow's compiled code when the interpreter finalizes is stopped inside it, and the process aborts
        # ("terminate called without an active exception"): a short ``heron inspect`` could end that way.
        threading.Thread(target=run, name="heron-filter-parser", daemon=False).start()


def _describe(err: UnexpectedInput, expr: str) -> tuple[str, int]:
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            return "syntax error: the expression ends too early", len(expr)
        pos = tok.start_pos if tok.start_pos is not None else len(expr)
        return f"syntax error: unexpected {str(tok)!r}", pos
    if isinstance(err, UnexpectedCharacters):
        at = err.pos_in_stream or 0
        return f"syntax error: unexpected character {expr[at]!r}", at
    if isinstance(err, UnexpectedEOF):
        return "syntax error: the expression ends too early", len(expr)
    pos = getattr(err, "pos_in_stream", None)
    return "syntax error", pos if isinstance(pos, int) else 0


def parse(expr: str) -> A.Node:
    """Parse ``expr`` into a syntax tree (cached); `FilterError` with a caret on bad syntax or past a limit.

    The limits of `_limits` (length, nesting depth, number of terms) are
    checked before the parser builds anything deep or large.
    """
    hit = _CACHE.get(expr)
    if hit is not None:
        return hit
    limits = current_limits()
    check_length(expr, limits)
    text, lifted, lifted_terms = lift(expr)
    check_text_depth(text, limits)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        msg, pos = _describe(err, expr)
        raise filter_error(f"cannot parse filter: {msg}", expr, pos) from None
    try:
        node: A.Node = _ToAst(lifted).transform(tree)
    except VisitError as err:  # an integer literal too long for int() and the like
        raise filter_error(f"cannot parse filter: {err.orig_exc}", expr, 0) from None
    check_tree(node, expr, limits, lifted_terms)
    _CACHE.put(expr, node, cost=len(expr) * 4 + 64 * lifted_terms + 1024)
    return node


#: Syntax trees by expression, bounded in bytes (``HERON_FILTER_CACHE_BYTES``, default 64 MiB in all
#: for the syntax trees and as much again for the compiled plans).
_CACHE = ByteBoundedCache(cache_bytes())
