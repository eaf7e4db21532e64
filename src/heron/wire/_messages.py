"""MilvusService as its protobuf descriptor has it: the message classes of each RPC, and a message's database."""

from __future__ import annotations

from typing import Any

from google.protobuf import message_factory
from pymilvus.grpc_gen import milvus_pb2

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def response_class(rpc: str) -> Any:
    """The protobuf class an RPC of MilvusService answers with."""
    return message_factory.GetMessageClass(SERVICE.methods_by_name[rpc].output_type)


def request_class(rpc: str) -> Any:
    """The protobuf class of an RPC's request message."""
    return message_factory.GetMessageClass(SERVICE.methods_by_name[rpc].input_type)


def db_of(msg: Any, metadata_db: str) -> str:
    """The database a Milvus request targets: its own ``db_name`` field, else the ``dbname`` header."""
    own = getattr(msg, "db_name", "") if hasattr(msg, "db_name") else ""
    return own or metadata_db or "default"
