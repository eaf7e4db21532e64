"""The curl example of README.md ("HTTP: health, metrics and REST") runs as written and answers as shown."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

from tests.conftest import ROOT, require, require_module
from tests.server.http_helpers import http_url

require_module("starlette")
require_module("uvicorn")
require_module("prometheus_client")
require(shutil.which("curl") is not None, "curl is not installed")

MARKER = "<!-- rest-example:"


def _blocks() -> tuple[str, list[str]]:
    """(the bash block after the marker, the lines of the text block after it)."""
    text = (ROOT / "README.md").read_text()
    start = text.index(MARKER)
    script = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    answers = re.search(r"```text\n(.*?)```", text[start:], re.S)
    assert script and answers
    return script.group(1), answers.group(1).strip().splitlines()


def _json_values(out: str) -> tuple[list[object], str]:
    """The JSON values ``out`` starts with (curl prints no newline after them), and what follows."""
    dec = json.JSONDecoder()
    values, i = [], 0
    while True:
        while i < len(out) and out[i].isspace():
            i += 1
        if i >= len(out) or out[i] not in "{[":
            return values, out[i:]
        value, i = dec.raw_decode(out, i)
        values.append(value)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-5)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_readme_curl_example(start_server):
    server = start_server("--http-port", "0")
    script, expected = _blocks()
    assert 'export HERON_HTTP="http://localhost:9091"' in script
    script = script.replace("http://localhost:9091", http_url(server))  # the one change: where the server is
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    values, rest = _json_values(done.stdout)
    want = [json.loads(line) for line in expected if line.startswith("{")]
    assert len(values) == len(want)
    for got, shown in zip(values, want):
        assert _same(got, shown), (got, shown)
    assert rest.strip().splitlines() == [line for line in expected if not line.startswith("{")]
