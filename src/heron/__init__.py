"""Heron: a vector database with blocking and asyncio clients over one API."""

from __future__ import annotations

from ._errors import *  # noqa: F403
from ._schema import CollectionSchema, FieldSchema
from ._types import ConsistencyLevel, DataType, LoadState, MetricType

__version__ = "0.1.0"
