"""One decorator that turns every failure of an RPC into the answer Milvus clients expect.

Heron errors become a Milvus ``Status`` inside the RPC's normal reply (the
table is `heron.wire.status_of`), so pymilvus raises `MilvusException`
with the same code and message. Failures of the call itself — a bad login,
a passed deadline, a cancelled call — end the RPC with a gRPC status code.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from .. import wire
from .._errors import AuthenticationError, HeronError

log = logging.getLogger("heron.server")


class DeadlineExceeded(Exception):
    """The caller's deadline passed (or the call was cancelled) before the work started."""


#: Exceptions answered with a gRPC status instead of a Milvus Status.
GRPC_CODES: dict[type, grpc.StatusCode] = {
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}

Handler = Callable[..., Awaitable[Any]]


def rpc_errors(fn: Handler) -> Handler:
    """Wrap ``fn([self,] rpc, message, context)`` so that it always answers: a reply, an error Status, or an abort."""

    @functools.wraps(fn)
    async def wrapper(*args: Any) -> Any:
        rpc, context = args[-3], args[-1]
        try:
            return await fn(*args)
        except Exception as exc:
            code = next((c for t, c in GRPC_CODES.items() if isinstance(exc, t)), None)
            if code is not None:
                await context.abort(code, str(exc))
            if not isinstance(exc, HeronError):
                log.exception("%s failed", rpc)
            return wire.error_reply(rpc, exc)

    return wrapper
