"""Timing helpers: every measured loop stops at a call count or a time limit, whichever comes first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Budget:
    """At most ``count`` calls and at most ``seconds`` of wall time (checked between calls)."""

    count: int
    seconds: float


@dataclass
class Timed:
    """Results and per-call latencies of a bounded loop."""

    results: list[Any]
    latencies: list[float]
    elapsed: float

    @property
    def calls(self) -> int:
        return len(self.latencies)

    def per_second(self, units_per_call: int = 1) -> float:
        return self.calls * units_per_call / self.elapsed if self.elapsed > 0 else float("nan")

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


def timed_calls(fn: Callable[[int], Any], budget: Budget) -> Timed:
    """Call ``fn(0), fn(1), ...`` until the budget is spent; at least one call is made."""
    results: list[Any] = []
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(max(1, budget.count)):
        t0 = time.perf_counter()
        results.append(fn(i))
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        if t1 - start >= budget.seconds:
            break
    return Timed(results, latencies, time.perf_counter() - start)


@dataclass
class Throughput:
    """Calls completed by several concurrent callers sharing one budget."""

    calls: int
    elapsed: float
    latencies: list[float]
    mode: str

    def as_dict(self, callers: int) -> dict[str, Any]:
        lat = np.asarray(self.latencies) * 1000 if self.latencies else np.asarray([np.nan])
        return {
            "callers": callers,
            "mode": self.mode,
            "calls": self.calls,
            "qps": self.calls / self.elapsed if self.elapsed > 0 else float("nan"),
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
        }


class _Ticket:
    """Hands out call numbers until the count or the deadline is reached (thread-safe)."""

    def __init__(self, budget: Budget) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._count = budget.count
        self._deadline = time.perf_counter() + budget.seconds

    def take(self) -> int | None:
        with self._lock:
            if self._next >= self._count or time.perf_counter() >= self._deadline:
                return None
            self._next += 1
            return self._next - 1


def threaded_calls(fn: Callable[[int], Any], callers: int, budget: Budget) -> Throughput:
    """``callers`` threads call ``fn(i)`` for fresh ``i`` until the shared budget is spent."""
    ticket = _Ticket(budget)
    lat: list[float] = []
    errors: list[BaseException] = []

    def worker() -> None:
        while (i := ticket.take()) is not None:
            t0 = time.perf_counter()
            try:
                fn(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
                return
            lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(callers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(budget.seconds + 120)
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return Throughput(len(lat), elapsed, lat, "threads")


async def async_calls(fn: Callable[[int], Awaitable[Any]], callers: int, budget: Budget) -> Throughput:
    """``callers`` coroutines await ``fn(i)`` for fresh ``i`` until the shared budget is spent."""
    ticket = _Ticket(budget)
    lat: list[float] = []

    async def worker() -> None:
        while (i := ticket.take()) is not None:
            t0 = time.perf_counter()
            await fn(i)
            lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(callers)))
    return Throughput(len(lat), time.perf_counter() - start, lat, "asyncio")


def poll_until(check: Callable[[], bool], seconds: float, interval: float = 0.005) -> float | None:
    """Seconds until ``check()`` is true, or None if it is still false after ``seconds``."""
    start = time.perf_counter()
    while True:
        if check():
            return time.perf_counter() - start
        if time.perf_counter() - start >= seconds:
            return None
        time.sleep(interval)


def cycle(seq: Sequence[Any], i: int) -> Any:
    """``seq[i]`` wrapping around, for loops longer than the query set."""
    return seq[i % len(seq)]
