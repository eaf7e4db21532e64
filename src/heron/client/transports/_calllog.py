"""The client's log of calls to a server, on ``heron.client``: each call at DEBUG, with its duration."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("heron.client")


@contextlib.contextmanager
def logged(request: Any, target: str) -> Iterator[None]:
    """Log the call of ``request`` to ``target`` when it ends: its kind, collection, outcome and duration."""
    if not log.isEnabledFor(logging.DEBUG):
        yield
        return
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        name = getattr(request, "collection_name", "") or ""
        ms = (time.perf_counter() - started) * 1000
        log.debug("%s%s to %s: %s in %.1f ms", type(request).__name__, f" {name}" if name else "", target, outcome,
                  ms, extra={"request": type(request).__name__, "collection": name, "duration_ms": round(ms, 3)})
