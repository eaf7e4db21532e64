"""Progress bars for long commands: tqdm on stderr when it is a terminal, nothing otherwise.

tqdm is optional (``pip install heron[cli]``); without it, or when stderr is
not a terminal (a pipe, a log file, a test), the bar does nothing.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any


class _Quiet:
    """A bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units (ignored)."""

    def close(self) -> None:
        """End the bar (nothing to do)."""


def bar(total: int, desc: str, unit: str = "rows") -> Any:
    """A bar counting to ``total`` ``unit``: tqdm's on a terminal, else one that shows nothing."""
    if not sys.stderr.isatty():
        return _Quiet()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Quiet()
    size = shutil.get_terminal_size()  # a terminal that reports no size (0x0) gets the usual 80x24
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, file=sys.stderr,
                ncols=size.columns, nrows=size.lines)
