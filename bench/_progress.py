"""Progress display: a tqdm bar when tqdm is installed, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Counts finished steps over all systems; ``update`` names the one now running."""

    def __init__(self, total: int) -> None:
        self._bar: Any = None
        self._done = 0
        self.total = total
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)

    def update(self, system: str, step: str, advance: int = 1) -> None:
        self._done += advance
        if self._bar is not None:
            self._bar.set_description(f"{system}: {step}")
            self._bar.update(advance)
        else:
            print(f"[{self._done}/{self.total}] {system}: {step}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
