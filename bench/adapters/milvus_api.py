"""Systems driven through the Milvus client API: Heron (embedded or served) and Milvus Lite.

Heron's `Client`/`AsyncClient` and pymilvus's `MilvusClient`/
`AsyncMilvusClient` take the same calls, so one adapter drives them all; the
subclasses only say which client classes to use and where they connect.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench._datasets import FilterSpec
from bench._measure import poll_until
from bench.adapters._base import Adapter, AsyncSearcher, Unsupported


class MilvusAPI(Adapter):
    """An adapter over a MilvusClient-shaped client; subclasses pick the classes and the URI."""

    columnar = False

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.uri = self._uri()
        self.client = self._client_class()(uri=self.uri)

    # -- what subclasses choose ---------------------------------------------------------
    def _client_class(self) -> Any:
        raise NotImplementedError

    def _async_client_class(self) -> Any:
        raise NotImplementedError

    def _data_type(self) -> Any:
        raise NotImplementedError

    def _uri(self) -> str:
        raise NotImplementedError

    # -- the interface ------------------------------------------------------------------
    def create(self, name: str) -> None:
        dt = self._data_type()
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.INT64, is_primary=True)
        schema.add_field("vector", dt.FLOAT_VECTOR, dim=self.config.dim)
        kinds = {"int": dt.INT64, "varchar": dt.VARCHAR, "json": dt.JSON}
        for f in self.config.fields:
            extra = {"max_length": 64} if f.kind == "varchar" else {}
            schema.add_field(f.name, kinds[f.kind], **extra)
        index_params = self.client.prepare_index_params()
        index_params.add_index(
            field_name="vector",
            index_type="HNSW",
            metric_type=self.config.metric,
            params={"M": self.config.hnsw_m, "efConstruction": self.config.ef_construction},
        )
        if self.client.has_collection(name):
            self.client.drop_collection(name)
        self.client.create_collection(name, schema=schema, index_params=index_params)

    def drop(self, name: str) -> None:
        self.client.drop_collection(name)

    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        self.client.insert(name, rows)

    def insert_columns(self, name: str, columns: dict[str, Any]) -> None:
        if not self.columnar:
            raise Unsupported("insert takes row dicts only")
        self.client.insert(name, columns)

    def wait_indexed(self, name: str, seconds: float) -> bool:
        self.client.flush(name)
        index_name = self.client.list_indexes(name)[0]

        def done() -> bool:
            desc = self.client.describe_index(name, index_name)
            return int(desc.get("pending_index_rows", 0)) == 0

        return poll_until(done, seconds, interval=0.05) is not None

    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        res = self.client.search(
            name,
            data=np.atleast_2d(queries),
            limit=k,
            filter=flt.milvus_expr() if flt else "",
            search_params={"params": {"ef": max(ef, k)}},
        )
        return [[int(hit["id"]) for hit in hits] for hits in res]

    def get(self, name: str, ids: list[int]) -> int:
        return len(self.client.get(name, ids=ids, output_fields=[f.name for f in self.config.fields]))

    def count(self, name: str, flt: FilterSpec | None = None) -> int:
        res = self.client.query(name, filter=flt.milvus_expr() if flt else "", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    async def open_async(self) -> AsyncSearcher | None:
        return _MilvusAsync(self._async_client_class()(uri=self.uri))

    def close(self) -> None:
        self.client.close()


class _MilvusAsync(AsyncSearcher):
    def __init__(self, client: Any) -> None:
        self.client = client

    async def search(self, name: str, query: np.ndarray, k: int, ef: int) -> list[int]:
        res = await self.client.search(
            name, data=np.atleast_2d(query), limit=k, search_params={"params": {"ef": max(ef, k)}}
        )
        return [int(hit["id"]) for hit in res[0]]

    async def close(self) -> None:
        await self.client.close()


class HeronEmbedded(MilvusAPI):
    """Heron in the benchmark's own process: ``heron.Client(uri=<dir>)``; asyncio via ``heron.AsyncClient``."""

    name = "heron"
    columnar = True

    @staticmethod
    def version() -> str:
        import heron

        return str(getattr(heron, "__version__", "") or importlib.metadata.version("heron"))

    def _client_class(self) -> Any:
        import heron

        return heron.Client

    def _async_client_class(self) -> Any:
        import heron

        return heron.AsyncClient

    def _data_type(self) -> Any:
        import heron

        return heron.DataType

    def _uri(self) -> str:
        return str(self.config.workdir / "heron-data")


class MilvusLite(MilvusAPI):
    """Milvus Lite through pymilvus: ``MilvusClient("<dir>/milvus.db")``."""

    name = "milvus-lite"

    @staticmethod
    def version() -> str:
        return f"milvus-lite {importlib.metadata.version('milvus-lite')}, pymilvus {importlib.metadata.version('pymilvus')}"

    def _client_class(self) -> Any:
        import pymilvus

        return pymilvus.MilvusClient

    def _async_client_class(self) -> Any:
        import pymilvus

        return pymilvus.AsyncMilvusClient

    def _data_type(self) -> Any:
        import pymilvus

        return pymilvus.DataType

    def _uri(self) -> str:
        return str(self.config.workdir / "milvus.db")


class _HeronServerMixin:
    """Connects to ``--server-uri``, or starts ``heron serve`` on a free loopback port for the run."""

    config: Any
    _server: subprocess.Popen[bytes] | None = None

    def _uri(self) -> str:
        if self.config.server_uri:
            return str(self.config.server_uri)
        port = _free_port()
        data = self.config.workdir / "heron-server-data"
        log = open(self.config.workdir / "heron-server.log", "wb")  # noqa: SIM115 - lives as long as the server
        self._server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "heron",
                "serve",
                "--data",
                str(data),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if poll_until(lambda: _port_open(port) or self._server.poll() is not None, 60, 0.1) is None:
            raise RuntimeError("heron serve did not open its port within 60 s")
        if self._server.poll() is not None:
            raise RuntimeError(f"heron serve exited: {Path(log.name).read_text()[-2000:]}")
        return f"http://127.0.0.1:{port}"

    def _stop_server(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(30)
            except subprocess.TimeoutExpired:
                self._server.kill()


class HeronServer(_HeronServerMixin, HeronEmbedded):
    """Heron over the network: ``heron.Client("http://...")`` against ``heron serve``."""

    name = "heron-server"

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_server()


class HeronPymilvus(_HeronServerMixin, MilvusLite):
    """The real pymilvus client against ``heron serve``."""

    name = "heron-pymilvus"

    @staticmethod
    def version() -> str:
        return f"heron {HeronEmbedded.version()}, pymilvus {importlib.metadata.version('pymilvus')}"

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_server()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def server_rss_kb(adapter: Adapter) -> int | None:
    """Peak RSS of a server the adapter started (Linux ``/proc``), else None."""
    server = getattr(adapter, "_server", None)
    if server is None or server.poll() is not None:
        return None
    try:
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
