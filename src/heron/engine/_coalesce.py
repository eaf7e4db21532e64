"""Concurrent searches that differ only in their query vectors run as one batched search.

While as many searches run as there are cores, searches that arrive queue,
grouped by what they share (collection, field, filter, limit, output fields
and parameters); when a core frees up, the group waiting longest runs as a
single call with all its query vectors. The index answers nq queries in one
call for much less than nq calls, the filter is evaluated once, and the
per-call Python work is paid once, which is what lets concurrent callers add
throughput on a machine with few cores (the same idea as Milvus's merging of
search tasks). A search waits only when the cores are busy, so a lone caller
sees no delay (nor the cost of computing a key), and it never runs against an
older snapshot than it would have seen alone: the batch starts after every
member arrived.

Results are split back per request. A batch that fails is run again request
by request, so each caller gets its own answer or its own error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from .. import _requests as rq

#: Most query vectors one batch carries (past it, the next arrivals form another).
MAX_BATCH_QUERIES = 64


class _Group:
    __slots__ = ("requests", "results", "done")

    def __init__(self) -> None:
        self.requests: list[rq.Search] = []
        self.results: list[tuple[Any, BaseException | None]] = []
        self.done = threading.Event()

    @property
    def queries(self) -> int:
        return sum(len(r.data) for r in self.requests)


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=repr)


def batch_key(r: rq.Search) -> Hashable | None:
    """What two searches must share to be answered by one call; None: never batched."""
    data = r.data
    if r.highlighter is not None or r.ids is not None or r.aggregation is not None:  # per-request work beside the queries: alone
        return None
    if type(data) is not np.ndarray or data.ndim != 2 or not r.params.keys() <= _PLAIN_PARAMS:
        return None
    if "random_sample" in r.filter.lower():  # each call draws its own sample
        return None
    return (
        r.db_name, r.collection_name, r.anns_field, r.filter, r.limit, r.offset, r.output_fields,
        r.metric_type, _json(r.params), r.partition_names, _json(r.filter_params), r.group_by_field,
        r.group_size, r.strict_group_size, r.round_decimal, r.consistency_level, data.dtype.str,
        data.shape[1], _json(r.ranker),
    )


#: Search parameters that do not change how queries relate to each other
#: (iterator and range-search state stay out of batches).
_PLAIN_PARAMS = frozenset({"ef", "nprobe", "metric_type", "params", "level", "search_list", "drop_ratio_search"})


class SearchCoalescer:
    """Runs `Search` requests through ``run``, batching concurrent ones with the same key."""

    def __init__(self, run: Callable[[rq.Search], list[Any]], parallel: int | None = None) -> None:
        self._run = run
        self._parallel = max(1, parallel or os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._running = 0
        self._pending: dict[Hashable, _Group] = {}

    @property
    def runs(self) -> Callable[[rq.Search], list[Any]]:
        """The function every search, alone or batched, goes through."""
        return self._run

    def search(self, r: rq.Search) -> list[Any]:
        if self._start_now():  # a core is free: no key, no batch, no wait
            try:
                return self._run(r)
            finally:
                self._finish()
        key = batch_key(r)
        if key is None:
            key = object()  # a group of its own, waiting its turn like the others
        with self._lock:
            if self._running < self._parallel and not self._pending:
                self._running += 1
                group = None
            else:
                found = self._pending.get(key)
                leader = found is None or found.queries + len(r.data) > MAX_BATCH_QUERIES
                if found is None or leader:  # none waits, or it is full (and keeps its leader)
                    found = self._pending[key] = _Group()
                group = found
                slot = len(group.requests)
                group.requests.append(r)
        if group is None:
            try:
                return self._run(r)
            finally:
                self._finish()
        if not leader:
            group.done.wait()
            result, error = group.results[slot]
            if error is not None:
                raise error
            return result  # type: ignore[no-any-return]
        with self._lock:
            while self._running >= self._parallel:
                self._free.wait()
            self._running += 1
            if self._pending.get(key) is group:
                del self._pending[key]  # closed: later arrivals start the next group
        try:
            self._run_group(group)
        finally:
            self._finish()
        result, error = group.results[0]
        if error is not None:
            raise error
        return result  # type: ignore[no-any-return]

    def _start_now(self) -> bool:
        with self._lock:
            if self._running < self._parallel and not self._pending:
                self._running += 1
                return True
            return False

    def _finish(self) -> None:
        with self._lock:
            self._running -= 1
            if self._pending:
                self._free.notify()

    def _run_group(self, group: _Group) -> None:
        reqs = group.requests
        try:
            if len(reqs) == 1:
                group.results = [(self._run(reqs[0]), None)]
            else:
                merged = dataclasses.replace(reqs[0], data=np.concatenate([r.data for r in reqs]))
                hits = self._run(merged)
                out: list[tuple[Any, BaseException | None]] = []
                start = 0
                for r in reqs:
                    out.append((hits[start : start + len(r.data)], None))
                    start += len(r.data)
                group.results = out
        except BaseException:
            group.results = [self._one(r) for r in reqs]
        finally:
            group.done.set()

    def _one(self, r: rq.Search) -> tuple[Any, BaseException | None]:
        try:
            return self._run(r), None
        except BaseException as exc:  # handed to the caller that sent it
            return None, exc
