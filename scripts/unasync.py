#!/usr/bin/env python3
"""Generate the blocking client from the asyncio one.

    python scripts/unasync.py          # write src/heron/client/_sync_*.py
    python scripts/unasync.py --check  # exit 1 if a file is out of date

Each ``client/_async_X.py`` (the client, its mixins, its iterators) gives
``client/_sync_X.py``.

The rewrite is line-based so comments and docstrings survive.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "src/heron/client"

SUBS = [
    (r"\basync def\b", "def"),
    (r"\bawait ", ""),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"__aiter__", "__iter__"),
    (r"__anext__", "__next__"),
    (r"StopAsyncIteration", "StopIteration"),
    (r"\bAsyncLocalTransport\b", "LocalTransport"),
    (r"\bmake_async_remote_transport\b", "make_remote_transport"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsync(\w*Mixin)\b", r"\1"),
    (r"\._async_(\w+) import\b", r"._sync_\1 import"),
    (r"\bAsync(\w*Iterator)\b", r"\1"),
    (r"\basyncio\.to_thread\((\w+), ", r"\1("),
    (r"\basyncio\.sleep\(", "time.sleep("),
    (r"^import asyncio\n", ""),
    (r"``async with Client\(\.\.\.\) as client:``", "``with Client(...) as client:``"),
    (r"``await client\.close\(\)``", "``client.close()``"),
]

HEADER = '"""{what}, generated from `{source}` by scripts/unasync.py. Do not edit."""\n'


def pairs() -> list[tuple[Path, Path]]:
    return [(s, CLIENT / s.name.replace("_async_", "_sync_", 1)) for s in sorted(CLIENT.glob("_async_*.py"))]


def generate(source: Path) -> str:
    text = source.read_text()
    what = "`Client`: the blocking client" if source.name == "_async_client.py" else "The blocking twin of `AsyncClient`'s part"
    body = text.split('"""', 2)[2]
    out = []
    for line in body.splitlines(keepends=True):
        for pat, rep in SUBS:
            line = re.sub(pat, rep, line)
        out.append(line)
    text = "".join(out)
    text = text.replace(
        "A Heron client for asyncio code. Embedded for a local path; never blocks the event loop.",
        "A blocking Heron client. Embedded for a local path.",
    )
    text = text.replace(
        "    It may be created outside a running loop and used from several loops one\n"
        "    after another. Use it as",
        "    Use it as",
    )
    return HEADER.format(what=what, source=source.name) + "\n" + text.lstrip("\n")


def main() -> int:
    stale = 0
    for source, target in pairs():
        new = generate(source)
        if "--check" in sys.argv:
            if not target.exists() or target.read_text() != new:
                print(f"{target.relative_to(ROOT)} is out of date: run python scripts/unasync.py", file=sys.stderr)
                stale = 1
        else:
            target.write_text(new)
    return stale


if __name__ == "__main__":
    sys.exit(main())
