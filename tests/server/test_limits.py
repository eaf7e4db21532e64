"""Deadlines, TLS, concurrency, the in-flight bound and graceful shutdown of `heron serve`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import heron
from heron import DataType

DIM = 8


def _collection(client: heron.Client, name: str = "c", dim: int = DIM) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=idx)


def _rows(ids, dim: int = DIM) -> dict:
    ids = np.asarray(list(ids), dtype=np.int64)
    return {
        "id": ids,
        "v": np.random.default_rng(int(ids[0]) if len(ids) else 0).random((len(ids), dim), dtype=np.float32),
    }


def test_deadline_expires_mid_search_and_server_keeps_serving(server):
    with heron.Client(server.uri) as c:
        _collection(c, dim=128)
        for start in range(0, 40_000, 20_000):
            c.insert("c", _rows(range(start, start + 20_000), 128))
        queries = np.random.default_rng(0).random((300, 128), dtype=np.float32)
        with pytest.raises(heron.HeronError, match="timeout"):
            c.search("c", data=queries, limit=10, timeout=0.01)
        assert len(c.search("c", data=queries[:1], limit=3)[0]) == 3


def _self_signed(tmp_path) -> tuple[str, str]:
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_with_a_self_signed_certificate(start_server, tmp_path):
    cert, key = _self_signed(tmp_path)
    srv = start_server("--tls-cert", cert, "--tls-key", key)
    assert srv.uri.startswith("https://")
    with heron.Client(srv.uri, server_pem_path=cert, timeout=20) as c:
        _collection(c)
        c.insert("c", _rows(range(5)))
        assert c.query("c", ids=[0, 4], output_fields=["id"]) and c.list_collections() == ["c"]
    with heron.Client(srv.uri.replace("https", "http"), timeout=3) as plain, pytest.raises(heron.HeronError):
        plain.list_collections()


def test_64_concurrent_async_clients_lose_and_duplicate_nothing(server):
    with heron.Client(server.uri) as c:
        _collection(c)
    per_client, batch = 40, 10

    async def worker(k: int) -> list[int]:
        acked: list[int] = []
        async with heron.AsyncClient(server.uri) as ac:
            for b in range(per_client // batch):
                ids = range(k * 1000 + b * batch, k * 1000 + (b + 1) * batch)
                res = await ac.insert("c", _rows(ids))
                acked.extend(res["ids"])
                hits = await ac.search("c", data=np.ones((1, DIM), np.float32), limit=3)
                assert len(hits) == 1
        return acked

    async def run_all() -> list[list[int]]:
        return await asyncio.gather(*(worker(k) for k in range(64)))

    acked = [i for ids in asyncio.run(run_all()) for i in ids]
    assert len(acked) == len(set(acked)) == 64 * per_client
    with heron.Client(server.uri) as c:
        assert c.query("c", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == len(acked)
        stored = c.query("c", ids=acked, output_fields=["id"])
        assert sorted(r["id"] for r in stored) == sorted(acked)


def test_calls_past_max_inflight_get_server_busy(start_server):
    srv = start_server("--max-inflight", "1")
    with heron.Client(srv.uri) as c:
        _collection(c, dim=64)
        c.insert("c", _rows(range(20_000), 64))
    queries = np.random.default_rng(0).random((50, 64), dtype=np.float32)

    async def run() -> list:
        async with heron.AsyncClient(srv.uri) as ac:
            return await asyncio.gather(
                *(ac.search("c", data=queries, limit=5) for _ in range(16)), return_exceptions=True
            )

    results = asyncio.run(run())
    busy = [r for r in results if isinstance(r, heron.ServerBusyError)]
    assert busy and "server busy" in str(busy[0])
    assert all(isinstance(r, (list, heron.ServerBusyError)) for r in results), [
        repr(r)[:200] for r in results
    ]


def test_sigterm_during_inserts_keeps_every_acknowledged_write(start_server):
    srv = start_server()
    with heron.Client(srv.uri) as c:
        _collection(c)
    acked: list[int] = []
    stop = threading.Event()

    def insert_loop() -> None:
        with heron.Client(srv.uri, timeout=10) as c:
            n = 0
            while not stop.is_set():
                try:
                    res = c.insert("c", _rows(range(n, n + 50)))
                except heron.HeronError:
                    return
                acked.extend(res["ids"])
                n += 50

    threads = [threading.Thread(target=insert_loop) for _ in range(1)]
    for t in threads:
        t.start()
    # Stop while inserts keep coming: once a few are acknowledged, however long that takes here.
    deadline = time.monotonic() + 120
    while len(acked) < 150:
        assert time.monotonic() < deadline, f"only {len(acked)} rows acknowledged in 120 s"
        assert any(t.is_alive() for t in threads), "the inserting thread stopped early"
        time.sleep(0.01)
    assert srv.stop(signal.SIGTERM) == 0
    stop.set()
    for t in threads:
        t.join(30)
    assert acked
    with heron.Client(srv.data) as c:
        c.load_collection("c")
        stored = c.query("c", ids=acked, output_fields=["id"])
        assert sorted(r["id"] for r in stored) == sorted(acked)
