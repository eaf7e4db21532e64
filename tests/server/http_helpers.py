"""Helpers of the HTTP-port tests: the port a server printed, JSON POSTs, Prometheus scrapes."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import Server


def http_url(server: Server) -> str:
    """``http://127.0.0.1:PORT`` of the server's HTTP port (it prints it before the gRPC line)."""
    m = re.search(r"http at (http://127\.0\.0\.1:\d+)", server.output())
    assert m, f"no HTTP port in the server's output: {server.output()[-2000:]}"
    return m.group(1)


def get(url: str) -> tuple[int, str]:
    """(HTTP status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(url: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
    """The JSON answer of a POST of ``body`` (with ``Authorization: Bearer token`` when given)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out
