"""Idle sealing: growing rows that no write has touched for a while are sealed and indexed without a flush.

A growing segment is searched by an exact scan, which costs more than its
index would once it holds a few thousand rows. Milvus seals a segment that
has been idle and indexes it; so does Heron: a partition's growing segment
that holds at least ``HERON_SEAL_IDLE_ROWS`` rows (default
`IDLE_SEAL_ROWS`) and took no row for ``HERON_SEAL_IDLE_SECONDS`` seconds
(default `IDLE_SEAL_SECONDS`; 0 turns idle sealing off) is sealed exactly as
a flush or a full segment seals it (`Maintenance.seal`): persisted on the
background thread, merged into its predecessor, indexed. Until the new
segment is durable its rows stay in the insert log, and searches keep
answering from the segment itself (exactly, then through its index once the
build swaps it in), so a crash at any step loses nothing acknowledged.
Smaller growing segments stay as they are: a scan of them is as cheap as an
index, and sealing every trickle of rows would rewrite the merged segment's
file again and again.

The sealer is one daemon thread per engine that looks at every growing
segment a few times per idle period (and has `_interim` index the fresh
rows meanwhile); it takes a collection's write lock only to seal, so writes
and searches never wait for it otherwise.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from ._segment import Segment

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("heron.engine")

#: Seconds without a new row after which a growing segment is sealed (``HERON_SEAL_IDLE_SECONDS``).
IDLE_SEAL_SECONDS = 1.0
#: The fewest rows a growing segment must hold to be sealed when idle (``HERON_SEAL_IDLE_ROWS``).
IDLE_SEAL_ROWS = 4096
#: The sealer looks at the growing segments this many times per idle period (at least every 0.25 s).
_LOOKS_PER_PERIOD = 4


def _env_number(name: str, default: float, *, integer: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a {'whole' if integer else ''} number >= 0") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r}: expected a number >= 0")
    return value


def idle_seal_settings() -> tuple[float, int]:
    """``(seconds, rows)`` from ``HERON_SEAL_IDLE_SECONDS`` and ``HERON_SEAL_IDLE_ROWS``; ValueError if malformed."""
    seconds = _env_number("HERON_SEAL_IDLE_SECONDS", IDLE_SEAL_SECONDS)
    rows = int(_env_number("HERON_SEAL_IDLE_ROWS", IDLE_SEAL_ROWS, integer=True))
    return seconds, max(1, rows)


class IdleSealer:
    """Seals idle growing segments of one engine's collections; see the module docstring."""

    def __init__(self, engine: Engine, seconds: float, rows: int) -> None:
        self.engine = engine
        #: Seconds of no new rows before a growing segment is sealed; 0: never sealed for being idle.
        self.seconds = seconds
        #: The fewest rows a growing segment needs to be sealed for being idle.
        self.rows = rows
        self._stop = threading.Event()
        #: Per growing segment (by id): the row count last seen and since when it has not changed.
        self._seen: dict[int, tuple[int, float]] = {}
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def start(self) -> None:
        """Start the sealer's thread (nothing, if idle sealing and interim indexes are both off)."""
        if not (self.enabled or self.engine.interim.enabled) or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="heron-idle-seal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (a seal it started is finished by the background thread)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()

    def will_seal(self, seg: Segment) -> bool:
        """Whether growing `seg` is large enough to be sealed once idle (its rows are then not yet indexed)."""
        return self.enabled and not seg.sealed and seg.n >= self.rows

    def _run(self) -> None:
        period = min(0.25, max(0.01, self.seconds / _LOOKS_PER_PERIOD)) if self.enabled else 0.25
        while not self._stop.wait(period):
            try:
                self.look()
            except Exception:  # the next look tries again; sealing is also done by flush and by size
                log.exception("sealing idle segments failed")

    def look(self, now: float | None = None) -> int:
        """Seal every growing segment idle for `seconds` with at least `rows` rows; return how many."""
        e = self.engine
        if e.closing:
            return 0
        now = time.monotonic() if now is None else now
        e.inserts.release_idle()  # a load that stopped keeps no record buffer
        seen: dict[int, tuple[int, float]] = {}
        due = []
        for coll in list(e.collections.values()):
            if coll.dropped:
                continue
            e.interim.look(coll)
            e.interim.copy_ahead(coll)
            if not self.enabled:
                continue
            for p in list(coll.partitions.values()):
                seg = p.growing
                if seg is None or seg.n == 0:
                    continue
                n, since = self._seen.get(seg.id, (-1, now))
                if n != seg.n:
                    n, since = seg.n, now
                seen[seg.id] = (n, since)
                if n >= self.rows and now - since >= self.seconds:
                    due.append((coll, p, seg, n))
        self._seen = seen
        sealed = 0
        for coll, p, seg, n in due:
            with coll.write_lock:
                # A write since the look makes the segment busy again; a flush may have sealed it.
                if e.closing or coll.dropped or p.growing is not seg or seg.n != n:
                    continue
                e.maintenance.seal(coll, p)
            self._seen.pop(seg.id, None)
            sealed += 1
            log.debug("sealed idle segment %s of %r (%d rows)", seg.id, coll.name, n)
        return sealed
