"""Fault points: named steps of the engine at which a test can kill the process.

``HERON_FAULT=NAME`` (or ``NAME@N``, the N-th time the step is reached)
makes `fault_point` send SIGKILL to its own process at that step, so a crash
test can stop the engine between two particular writes instead of at a
random moment. The variable is read once, at import; a process that imports
Heron before it knows the fault (a process forked to run one crash round)
calls `arm` instead. Unarmed, a fault point costs one global lookup.

`POINTS` lists every name placed in the engine; a test checks that each is.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

POINTS = (
    "segment.before_rename",  # a segment file is written and synced under its temporary name
    "segment.after_rename",  # ... renamed into place, the directory not yet synced
    "persist.before_commit",  # a sealed segment's file is in place, the catalog does not record it yet
    "persist.after_commit",  # the catalog records it; the insert log does not know yet
    "merge.before_install",  # a merged segment's file is written; the two it replaces are still current
    "merge.after_install",  # the catalog records the merged segment; the old files are still there
    "compact.before_commit",  # a compacted segment's file is written; the old one is still current
    "compact.after_commit",  # the catalog records the compacted segment; the old file is still there
    "index.before_save",  # a vector index is built and about to be written
    "index.after_save",  # ... written
    "recovery.after_map",  # opening: a collection's sealed segments are mapped, its logs not yet replayed
    "recovery.after_replay",  # opening: a collection's logs are replayed
)

_target: str | None = None
_hits_left = 0
_on_fire: Callable[[str], None] | None = None
_lock = threading.Lock()


def arm(spec: str, on_fire: Callable[[str], None] | None = None) -> None:
    """Kill this process at the step ``spec`` names (``NAME`` or ``NAME@N``); an empty spec disarms.

    ``on_fire(name)`` runs just before the kill (a test notes which step it was).
    A name not in `POINTS` raises ValueError.
    """
    global _target, _hits_left, _on_fire
    name, _, count = spec.strip().partition("@")
    if name and name not in POINTS:
        raise ValueError(f"HERON_FAULT: unknown fault point {name!r}; expected one of {', '.join(POINTS)}")
    with _lock:
        _target = name or None
        _hits_left = int(count) if count else 1
        _on_fire = on_fire


def fault_point(name: str) -> None:
    """Reaching step ``name``: kill the process here if the armed fault says so; otherwise nothing."""
    if _target is None or name != _target:
        return
    global _hits_left
    with _lock:
        _hits_left -= 1
        fire = _hits_left == 0
    if fire:
        if _on_fire is not None:
            _on_fire(name)
        os.kill(os.getpid(), signal.SIGKILL)


arm(os.environ.get("HERON_FAULT", ""))
