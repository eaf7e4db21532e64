"""The server's metrics: Prometheus families for ``/metrics``, and the same as JSON for ``GetMetrics``.

Calls are counted where every RPC passes (`MilvusService`): by method and
status (``success`` or ``fail``), with a latency histogram per method, the
calls in flight and those refused as busy. The state of the data is read
at scrape time from the engine: rows and segments per collection, the
index builds still to do, the bytes of the insert log, and (through
prometheus-client's process collector) the process's memory and CPU.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import wire
from .._errors import ParamError
from .._version import __version__

if TYPE_CHECKING:
    from ..engine._engine import Engine

#: Latency buckets in seconds: from a cached point lookup to a large index build.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The metric families of one server; ``engine`` is called at scrape time (None while opening)."""

    def __init__(self, engine: Callable[[], Engine | None], inflight: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter("heron_rpc_calls", "RPCs answered, by method and status", ["method", "status"], registry=r)
        self.latency = Histogram(
            "heron_rpc_latency_seconds", "Time to answer an RPC, by method", ["method"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.busy = Counter("heron_rpc_refused_busy", "RPCs refused because too many were in flight", registry=r)
        Gauge("heron_rpc_inflight", "RPCs in flight now", registry=r).set_function(inflight)
        self.http = Counter(
            "heron_http_requests", "HTTP requests answered, by path and status code", ["path", "code"], registry=r
        )
        ProcessCollector(registry=r)
        r.register(_EngineCollector(engine))
        self._children: dict[str, tuple[Any, Any, Any]] = {}

    def observe(self, method: str, ok: bool, seconds: float) -> None:
        """Count one answered call of ``method``."""
        children = self._children.get(method)
        if children is None:
            children = self._children[method] = (
                self.calls.labels(method, "success"), self.calls.labels(method, "fail"), self.latency.labels(method)
            )
        (children[0] if ok else children[1]).inc()
        children[2].observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every family."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def as_json(self) -> dict[str, Any]:
        """Every sample as ``{family: [{"labels": ..., "value": ...}]}``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for family in self.registry.collect():
            for s in family.samples:
                out.setdefault(s.name, []).append({"labels": dict(s.labels), "value": s.value})
        return out


def system_info(metrics: Metrics, data_dir: str, started: float) -> str:
    """The ``GetMetrics`` answer to ``{"metric_type": "system_info"}``: Milvus's shape, plus ``metrics``."""
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    mem = _memory()
    node = {
        "identifier": 1,
        "connected": [],
        "infos": {
            "has_error": False,
            "error_reason": "",
            "name": "heron",
            "hardware_infos": {
                "ip": "", "cpu_core_count": os.cpu_count() or 1, "cpu_core_usage": 0,
                "memory": mem[0], "memory_usage": mem[1], "disk": 0, "disk_usage": _dir_bytes(data_dir),
            },
            "system_info": {
                "system_version": __version__, "deploy_mode": "STANDALONE",
                "build_version": __version__, "build_time": "", "used_go_version": platform.python_version(),
            },
            "created_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
            "updated_time": now,
            "type": "proxy",
            "id": 1,
            "system_configurations": {},
            "quota_metrics": {},
        },
    }
    return json.dumps({"nodes_info": [node], "metrics": metrics.as_json()})


def _memory() -> tuple[int, int]:
    """(total bytes of the machine, resident bytes of this process); zeros where /proc cannot tell."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return int(total), rss
    except (OSError, ValueError):
        return 0, 0


def _dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class _EngineCollector:
    """Rows, segments, index backlog and insert-log bytes, read from the engine when scraped."""

    def __init__(self, engine: Callable[[], Engine | None]) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        rows = GaugeMetricFamily("heron_collection_rows", "Rows of a collection (deleted ones excluded)",
                                 labels=["db", "collection"])
        segments = GaugeMetricFamily("heron_collection_segments", "Segments of a collection, by state",
                                     labels=["db", "collection", "state"])
        backlog = GaugeMetricFamily("heron_index_build_backlog",
                                    "Segments with rows that an index of their collection does not cover yet",
                                    labels=["db", "collection"])
        background = GaugeMetricFamily("heron_background_tasks", "Index builds, merges and flushes queued or running")
        log_bytes = GaugeMetricFamily("heron_insert_log_bytes", "Bytes of the insert log on disk")
        engine = self.engine()
        if engine is not None:
            for (db, name), coll in sorted(engine.collections.items()):
                n, states, todo = _collection_state(coll)
                rows.add_metric([db, name], n)
                for state, count in states.items():
                    segments.add_metric([db, name, state], count)
                backlog.add_metric([db, name], todo)
            background.add_metric([], len(getattr(engine, "_pending", ())))
            log_bytes.add_metric([], _dir_bytes(engine.dir.insert_log_path) if os.path.isdir(
                engine.dir.insert_log_path) else _file_bytes(engine.dir.insert_log_path))
        yield from (rows, segments, backlog, background, log_bytes)


def _file_bytes(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _collection_state(coll: Any) -> tuple[int, dict[str, int], int]:
    """(live rows, segments by state, segments not covered by every vector index) of a collection."""
    n = 0
    states = {"Growing": 0, "Sealed": 0, "Flushed": 0}
    todo = 0
    vectors = {f.name for f in coll.schema.fields if f.dtype.is_vector}
    fields = [d.field_name for d in coll.indexes.values() if d.field_name in vectors]
    with coll.write_lock:
        for p in coll.partitions.values():
            for seg in p.segments():
                if not seg.n:
                    continue
                n += seg.n - seg.deleted
                states["Flushed" if seg.persisted else ("Sealed" if seg.sealed else "Growing")] += 1
                if seg.sealed and any(f not in seg.vindex for f in fields):
                    todo += 1
    return n, states, todo


def reply_ok(reply: Any) -> bool:
    """Whether an RPC's reply says success (its Status, or the reply itself when it is one, is code 0)."""
    fields = reply.DESCRIPTOR.fields_by_name
    if "error_code" in fields and "reason" in fields:
        return _status_ok(reply)
    return all(_status_ok(getattr(reply, f)) for f in ("status", "alter_status") if f in fields)


def _status_ok(status: Any) -> bool:
    return not status.error_code and not getattr(status, "code", 0)


def metrics_reply(service: Any, request: str) -> Any:
    """The `GetMetrics` reply to ``request`` (a JSON object naming ``metric_type``)."""
    try:
        kind = json.loads(request or "{}").get("metric_type", "")
    except (ValueError, AttributeError):
        kind = None
    if kind != "system_info":
        raise ParamError(
            f"metric_type: got {request!r}, expected a JSON object with 'metric_type': 'system_info'"
        )
    metrics = service.metrics or Metrics(lambda: service.engine, lambda: service.inflight)
    body = system_info(metrics, service.engine.dir.path, service.started)
    return wire.response_class("GetMetrics")(response=body, component_name="heron")
