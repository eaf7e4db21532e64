"""``like`` patterns: ``%`` matches any run of characters, ``_`` exactly one.

A backslash before ``%``, ``_`` or another backslash makes it literal; any
other backslash is itself literal (so ``r"C:\\dir%"`` means the prefix
``C:\\dir``). Patterns are classified so the common shapes use the fastest
Arrow kernel: exact, prefix, suffix, infix; the rest compile to an
anchored regular expression.
"""

from __future__ import annotations

from functools import lru_cache

_REGEX_SPECIAL = set("\\.^$|?*+()[]{}")


def tokens(pattern: str) -> list[str | None]:
    """Literal characters as 1-char strings, ``None`` for ``%`` and ``""`` for ``_``."""
    out: list[str | None] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            out.append(pattern[i + 1])
            i += 2
            continue
        if c == "%":
            if not out or out[-1] is not None:
                out.append(None)
        else:
            out.append("" if c == "_" else c)
        i += 1
    return out


@lru_cache(maxsize=1024)
def plan(pattern: str) -> tuple[str, str]:
    """``(kind, arg)``: kind is ``eq``, ``prefix``, ``suffix``, ``infix`` or ``regex``."""
    toks = tokens(pattern)
    if "" in toks:
        return ("regex", regex(pattern))
    wild = [i for i, t in enumerate(toks) if t is None]
    text = "".join(t for t in toks if t)
    last = len(toks) - 1
    if not wild:
        return ("eq", text)
    if wild == [last]:
        return ("prefix", text)
    if wild == [0]:
        return ("suffix", text)
    if wild == [0, last]:
        return ("infix", text)
    return ("regex", regex(pattern))


def regex(pattern: str) -> str:
    """An RE2/Python regular expression matching exactly the strings ``pattern`` matches."""
    parts = []
    for t in tokens(pattern):
        if t is None:
            parts.append(".*")
        elif t == "":
            parts.append(".")
        else:
            parts.append("\\" + t if t in _REGEX_SPECIAL else t)
    return "(?s)^" + "".join(parts) + "$"


def matches(pattern: str, s: str) -> bool:
    """Plain matcher (no regular expressions), for the reference evaluator."""
    ends = {0}  # positions in s where the tokens read so far can end
    for t in tokens(pattern):
        if t is None:
            ends = set(range(min(ends), len(s) + 1)) if ends else set()
        else:
            ends = {p + 1 for p in ends if p < len(s) and (t == "" or s[p] == t)}
    return len(s) in ends
