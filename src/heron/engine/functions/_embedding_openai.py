"""The ``openai`` embedding provider: any OpenAI-compatible ``/v1/embeddings`` endpoint.

OpenAI itself, Ollama, vLLM, Text Embeddings Inference, LiteLLM and others
answer the same request: ``POST {base}/v1/embeddings`` with
``{"model": ..., "input": [texts...]}`` (and ``"dimensions"`` when the
function's ``dim`` is given), a bearer key in ``Authorization``, and
``{"data": [{"index": i, "embedding": [...]}, ...]}`` back.

Requests are sent with the standard library (``urllib``), one per batch of
``batch_size`` texts. A 429 or a 5xx answer is retried up to ``max_retries``
times, waiting what ``Retry-After`` asks (at most `MAX_WAIT` seconds) or a
doubling backoff; any other failure (no connection, a timeout, 401, a body
that is not an embeddings answer) raises `HeronError` at once, naming the
provider, the URL and the cause, and the texts of the write embed nothing.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from ..._errors import HeronError

DEFAULT_URL = "https://api.openai.com/v1/embeddings"
DEFAULT_MODEL = "text-embedding-3-small"
MAX_WAIT = 10.0
_RETRIED = frozenset({429, 500, 502, 503, 504})


def embeddings_url(base: str) -> str:
    """The embeddings URL for a server's address ``base``: as is when it ends in ``/embeddings``, else completed."""
    base = base.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    if base.endswith("/v1"):
        return base + "/embeddings"
    return base + "/v1/embeddings"


def url_of(params: dict[str, Any]) -> str:
    """The embeddings URL the params name: ``url``/``endpoint`` as `embeddings_url` reads them, else
    ``base_url`` as the OpenAI SDK and Milvus Lite read it (``/embeddings`` appended), else OpenAI's."""
    for key in ("url", "endpoint"):
        if params.get(key):
            return embeddings_url(str(params[key]))
    if params.get("base_url"):
        base = str(params["base_url"]).rstrip("/")
        return base if base.endswith("/embeddings") else base + "/embeddings"
    return DEFAULT_URL


class OpenAIEmbeddings:
    """A client of one embeddings endpoint with one model; ``embed`` sends one request per call."""

    def __init__(self, *, url: str, model: str, api_key: str | None, dimensions: int | None,
                 user: str | None, timeout: float, max_retries: int, backoff: float = 0.5) -> None:
        self.url = url
        self.model = model
        self.api_key = api_key
        self.dimensions = dimensions
        self.user = user
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff

    def _fail(self, cause: str) -> HeronError:
        return HeronError(f"embedding provider 'openai' ({self.url}, model {self.model!r}): {cause}")

    def _request(self, texts: list[str]) -> urllib.request.Request:
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.user:
            body["user"] = self.user
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def embed(self, texts: list[str]) -> np.ndarray:
        """One float32 row per text, in order; raises `HeronError` as the module docstring says."""
        request = self._request(texts)
        for attempt in range(self.max_retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                return self._parse(payload, len(texts))
            except urllib.error.HTTPError as err:
                detail = _error_detail(err)
                if err.code not in _RETRIED or attempt == self.max_retries:
                    what = "rate limited" if err.code == 429 else "refused the request"
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise self._fail(f"{what}{tries}: HTTP {err.code} {detail}") from err
                time.sleep(self._wait(err, attempt))
            except TimeoutError as err:
                raise self._fail(f"no answer within {self.timeout:g} s (param 'timeout')") from err
            except (urllib.error.URLError, ConnectionError, OSError) as err:
                reason = getattr(err, "reason", err)
                if isinstance(reason, TimeoutError):
                    raise self._fail(f"no answer within {self.timeout:g} s (param 'timeout')") from err
                raise self._fail(f"cannot reach the endpoint: {reason}") from err
        raise self._fail("no answer")  # unreachable: the loop returns or raises

    def _wait(self, err: urllib.error.HTTPError, attempt: int) -> float:
        after = err.headers.get("Retry-After") if err.headers else None
        try:
            wait = float(after) if after is not None else self.backoff * 2 ** attempt
        except ValueError:
            wait = self.backoff * 2 ** attempt
        return max(0.0, min(wait, MAX_WAIT))

    def _parse(self, payload: bytes, count: int) -> np.ndarray:
        try:
            items = json.loads(payload)["data"]
            items = sorted(items, key=lambda item: int(item.get("index", 0)))
            rows = [item["embedding"] for item in items]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise self._fail(f"the answer is not an embeddings list ({err!r}): {payload[:200]!r}") from err
        if len(rows) != count:
            raise self._fail(f"sent {count} texts, got {len(rows)} embeddings back")
        try:
            return np.asarray(rows, dtype=np.float32).reshape(count, -1)
        except ValueError as err:
            widths = sorted({len(r) if isinstance(r, list) else -1 for r in rows})
            raise self._fail(f"the embeddings are not all numbers of one length (lengths {widths})") from err


def _error_detail(err: urllib.error.HTTPError) -> str:
    try:
        body = err.read()[:300].decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.strip()
    return f"{err.reason}: {message}" if message else str(err.reason)


def api_key(params: dict[str, Any]) -> str | None:
    """The key from ``api_key``, else the environment variable ``credential`` names, else OPENAI_API_KEY."""
    if params.get("api_key"):
        return str(params["api_key"])
    if params.get("credential"):
        name = str(params["credential"])
        if name not in os.environ:
            raise HeronError(f"embedding provider 'openai': credential {name!r} names an environment "
                             f"variable that is not set")
        return os.environ[name]
    return os.environ.get("OPENAI_API_KEY")
