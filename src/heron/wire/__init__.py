"""Milvus protobuf ⇄ Heron requests and results, as pure translation: no engine, no gRPC calls, no I/O.

The server decodes a Milvus message into a `heron._requests` object and
encodes the engine's answer; the remote client transport does the mirror
image. Both use the one codec table, `CODECS`, and the one status table
(`status_of` / `error_of`). The protobuf classes are pymilvus's.
"""

from __future__ import annotations

from ._access import ACCESS, AccessRpc
from ._client import READ_ONLY, client_messages, client_result, pin_read, write_timestamp
from ._codecs import CODECS, Codec, SchemaFn
from ._compat import has_rpc
from ._messages import db_of, request_class, response_class
from ._status import error_of, error_reply, reply_status, status_of

__all__ = [
    "ACCESS",
    "AccessRpc",
    "CODECS",
    "Codec",
    "READ_ONLY",
    "SchemaFn",
    "client_messages",
    "client_result",
    "db_of",
    "error_of",
    "error_reply",
    "has_rpc",
    "pin_read",
    "reply_status",
    "request_class",
    "response_class",
    "status_of",
    "write_timestamp",
]
