"""``scipy.sparse``, imported on first use: dense-only work never pays for it (~20 MiB resident).

Modules import this as ``sp`` and use it as they would ``scipy.sparse``.
`issparse` answers without importing scipy: while ``scipy.sparse`` is not
loaded, no sparse matrix can exist in the process.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def issparse(x: Any) -> bool:
    mod = sys.modules.get("scipy.sparse")
    return mod is not None and bool(mod.issparse(x))


def __getattr__(name: str) -> Any:
    value = getattr(importlib.import_module("scipy.sparse"), name)
    globals()[name] = value  # later lookups find it without coming here
    return value
