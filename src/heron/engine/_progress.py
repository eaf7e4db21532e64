"""Progress of the engine's long work: index builds, merges, flushes and closing.

Each step is logged on ``heron.engine`` (a build's slices at DEBUG, each
finished piece of work at INFO) and handed, as a `Progress`, to the
engine's ``progress`` callback when one is set. A callback that raises is
logged and otherwise ignored: progress never stops the work it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("heron.engine")

#: What a step belongs to.
KINDS = ("index", "merge", "flush", "close")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (rows, partitions, tasks) of one piece of work of ``kind`` on ``collection``.

    ``done == total`` marks the end of that piece of work; ``detail`` names it
    (``segment 7 field vector``).
    """

    kind: str
    collection: str
    done: int
    total: int
    detail: str = ""

    @property
    def finished(self) -> bool:
        """Whether this is the piece of work's last step."""
        return self.done >= self.total


ProgressCallback = Callable[[Progress], None]


class ProgressReporter:
    """Logs steps and hands them to ``callback`` (settable at any time; None: only logged)."""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self.callback = callback

    def report(self, kind: str, collection: str, done: int, total: int, detail: str = "") -> None:
        """Report one step (see the module docstring)."""
        step = Progress(kind, collection, int(done), int(total), detail)
        level = logging.INFO if step.finished else logging.DEBUG
        if log.isEnabledFor(level):
            where = f" {collection}" if collection else ""
            what = f" {detail}" if detail else ""
            log.log(level, "%s%s%s: %d/%d", kind, where, what, step.done, step.total,
                    extra={"kind": kind, "collection": collection, "done": step.done, "total": step.total})
        callback = self.callback
        if callback is not None:
            try:
                callback(step)
            except Exception:
                log.exception("the progress callback failed on %s", step)
