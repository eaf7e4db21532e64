"""An OpenAI-compatible ``/v1/embeddings`` endpoint for tests, run as its own process.

``python tests/engine/_openai_stub.py`` listens on a free loopback port and
prints it. Each text embeds to a deterministic unit vector (`vector`) of
``dimensions`` numbers (default 8). The model name picks a behaviour:

- ``good``: answers every request (the data items in reverse order, each with its index);
- ``fail-second``: the second request for this model gets a 500, every other one an answer;
- ``wrong-dim``: vectors one number longer than asked;
- ``short``: one embedding fewer than texts;
- ``limited-once``: the first request for this model gets 429 (``Retry-After: 0``), then answers;
- ``limited``: always 429 (``Retry-After: 0``);
- ``slow``: answers after 3 seconds.

A request whose ``Authorization`` is not ``Bearer sk-good`` gets a 401.
``GET /stats`` returns what was asked so far: the number of texts of each
request, the ``dimensions`` and ``user`` each one sent.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

KEY = "sk-good"
STATS: dict[str, list] = {"batches": [], "dimensions": [], "users": []}
REQUESTS: dict[str, int] = {}


def vector(text: str, dim: int) -> list[float]:
    """The stub's embedding of ``text``: a unit vector seeded by the text's CRC32."""
    v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(dim)
    return (v / np.linalg.norm(v)).tolist()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, STATS) if self.path == "/stats" else self._send(404, {"error": {"message": "no"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._send(401, {"error": {"message": "Incorrect API key provided"}})
        texts, model = body["input"], body["model"]
        STATS["batches"].append(len(texts))
        STATS["dimensions"].append(body.get("dimensions"))
        STATS["users"].append(body.get("user"))
        count = REQUESTS[model] = REQUESTS.get(model, 0) + 1
        if model == "limited" or (model == "limited-once" and count == 1):
            return self._send(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"})
        if model == "slow":
            time.sleep(3)
        if model == "fail-second" and count == 2:
            return self._send(500, {"error": {"message": "the model crashed"}})
        dim = int(body.get("dimensions") or 8) + (model == "wrong-dim")
        data = [{"object": "embedding", "index": i, "embedding": vector(t, dim)} for i, t in enumerate(texts)]
        if model == "short":
            data = data[:-1]
        self._send(200, {"object": "list", "model": model, "data": data[::-1]})


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
