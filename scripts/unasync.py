#!/usr/bin/env python3
"""Generate the blocking client from the asyncio one.

    python scripts/unasync.py          # write src/heron/client/_sync_client.py
    python scripts/unasync.py --check  # exit 1 if the file is out of date

The rewrite is line-based so comments and docstrings survive.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src/heron/client/_async_client.py"
TARGET = ROOT / "src/heron/client/_sync_client.py"

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
    (r"\bAsync(\w*Iterator)\b", r"\1"),
    (r"\basyncio\.to_thread\((\w+), ", r"\1("),
    (r"^import asyncio\n", ""),
    (r"``async with Client\(\.\.\.\) as client:``", "``with Client(...) as client:``"),
    (r"``await client\.close\(\)``", "``client.close()``"),
]

HEADER = '"""`Client`: the blocking client, generated from `_async_client.py` by scripts/unasync.py. Do not edit."""\n'


def generate() -> str:
    text = SOURCE.read_text()
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
    return HEADER + "\n" + text.lstrip("\n")


def main() -> int:
    new = generate()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != new:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python scripts/unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
