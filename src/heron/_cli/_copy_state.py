"""The progress file of ``heron copy``: per collection, whether it was made and the last key copied per partition.

It is replaced whole (written beside, then renamed) after each page the
destination acknowledged, so a crash leaves the previous or the next
version, never a torn one.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .._errors import HeronError
from ._connect import is_server

STATE_NAME = "copy-state.json"


def default_state_path(dst: str) -> str:
    """``DST/copy-state.json`` for a directory, ``./heron-copy-HOST-PORT.json`` for a server."""
    if is_server(dst):
        return f"heron-copy-{re.sub(r'[^A-Za-z0-9.]+', '-', dst.split('://', 1)[-1]).strip('-')}.json"
    return os.path.join(dst, STATE_NAME)


class CopyState:
    """The progress of one ``SRC -> DST`` copy, saved to ``path``."""

    def __init__(self, path: str, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc

    @classmethod
    def open(cls, path: str, src: str, dst: str, db: str) -> CopyState:
        """The state at ``path`` (empty when there is none); `HeronError` if it belongs to another copy."""
        ident = {"src": src, "dst": dst, "db": db or "default"}
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return cls(path, {**ident, "collections": {}})
        except ValueError as exc:
            raise HeronError(f"copy state {path!r} is not valid JSON ({exc}): remove it to start over") from None
        for k, v in ident.items():
            if doc.get(k) != v:
                raise HeronError(f"copy state {path!r} is of a copy with {k} {doc.get(k)!r}, not {v!r}: "
                                 "give another --state, or remove it to start over")
        return cls(path, doc)

    def collection(self, name: str) -> dict[str, Any]:
        """The (mutable) progress of collection ``name``."""
        entry: dict[str, Any] = self.doc["collections"].setdefault(name, {})
        return entry

    def save(self) -> None:
        """Write the state: the new version replaces the old one whole."""
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        tmp = self.path + ".partial"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.doc, fh, indent=1)
        os.replace(tmp, self.path)
