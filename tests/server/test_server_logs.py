"""``heron serve``'s call log, read from a real server's captured output."""

from __future__ import annotations

import json

import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException


def _calls(server) -> None:
    c = MilvusClient(server.uri)
    try:
        c.create_collection("books", dimension=2)
        c.insert("books", [{"id": 1, "vector": [0.1, 0.2]}])
        with pytest.raises(MilvusException):
            c.describe_collection("nope")
    finally:
        c.close()


def test_json_logs_carry_every_call_at_debug_and_failed_ones_at_info(start_server) -> None:
    server = start_server("--log-level", "debug", "--log-format", "json")
    _calls(server)
    assert server.stop() == 0
    records = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    calls = [r for r in records if "method" in r]
    created = [r for r in calls if r["method"] == "CreateCollection"]
    assert len(created) == 1, calls
    (c,) = created
    assert (c["level"], c["logger"], c["collection"], c["code"]) == ("DEBUG", "heron.server", "books", 0)
    assert "127.0.0.1" in c["peer"] and c["duration_ms"] >= 0
    assert any(r["method"] == "Insert" and r["collection"] == "books" for r in calls)
    (failed,) = [r for r in calls if r["method"] == "DescribeCollection" and r["collection"] == "nope"]
    assert failed["level"] == "INFO" and failed["code"] == 100 and "nope" in failed["message"]
    engine = [r for r in records if r["logger"] == "heron.engine" and "kind" in r]
    assert any(r["kind"] == "flush" and r["collection"] == "books" and r["done"] == r["total"] for r in engine)
    assert engine[-1]["kind"] == "close" and engine[-1]["done"] == engine[-1]["total"], engine[-3:]


def test_slow_calls_are_warnings_and_the_default_level_hides_the_rest(start_server) -> None:
    slow = start_server("--slow-ms", "0")
    quiet = start_server()
    _calls(slow)
    _calls(quiet)
    assert slow.stop() == 0 and quiet.stop() == 0
    lines = [line for line in slow.output().splitlines() if " heron.server WARNING CreateCollection " in line]
    assert len(lines) == 1 and " books from ipv" in lines[0] and "slow: over 0 ms" in lines[0], slow.output()
    assert "DescribeCollection nope" in slow.output()
    assert "heron.server" not in quiet.output()


def test_the_remote_client_logs_each_call_on_heron_client(server, caplog) -> None:
    import logging

    import heron

    caplog.set_level(logging.DEBUG, logger="heron.client")
    with heron.Client(server.uri) as c:
        c.create_collection("books", dimension=2)
        with pytest.raises(heron.CollectionNotFoundError):
            c.describe_collection("nope")
    calls = [r for r in caplog.records if r.name == "heron.client"]
    created = [r for r in calls if getattr(r, "request", "") == "CreateCollection"]
    assert len(created) == 1 and created[0].collection == "books" and created[0].duration_ms >= 0
    assert f"127.0.0.1:{server.port}" in created[0].getMessage()
    (failed,) = [r for r in calls if getattr(r, "collection", "") == "nope"]
    assert "failed: CollectionNotFoundError" in failed.getMessage()
