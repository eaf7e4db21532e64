"""Consistency levels as the clients take them: a name, a number or pymilvus's ``ConsistencyLevel``.

Heron reads its own writes whatever the level; a Milvus server honours it
(its default, Bounded, may leave out writes of the last few seconds). The
remote transport turns the level into the ``guarantee_timestamp`` pymilvus
sends (see `heron.wire.guarantee_timestamp`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import ParamError

#: The levels by their Milvus numbers.
LEVELS = ("Strong", "Session", "Bounded", "Eventually", "Customized")
_BY_NAME = {name.lower(): name for name in LEVELS}


def consistency_level(value: Any, default: str = "") -> str:
    """The level's name (``"Strong"``, ...), ``default`` for None or ``""``; `ParamError` for anything else."""
    if value is None or (isinstance(value, str) and not value):
        return default
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(LEVELS):
        return LEVELS[int(value)]
    if isinstance(value, str):
        name = _BY_NAME.get(value.strip().lower())
        if name is None and value.strip().isdigit() and int(value) < len(LEVELS):
            name = LEVELS[int(value)]
        if name is not None:
            return name
    raise ParamError(f"consistency_level: got {value!r}, expected one of {', '.join(LEVELS)} (or 0..4)")


def guarantee_timestamp(kwargs: dict[str, Any]) -> int:
    """The ``guarantee_timestamp`` keyword (0 when absent): a Milvus hybrid timestamp, an integer >= 0."""
    value = kwargs.get("guarantee_timestamp", 0) or 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParamError(f"guarantee_timestamp: got {value!r}, expected an integer >= 0 (a Milvus timestamp)")
    return int(value)
