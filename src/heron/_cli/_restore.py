"""``heron restore BACKUP DIR``: see `heron._cli._backup`."""

from __future__ import annotations

from ._backup import add_restore_parser as add_parser
from ._backup import run_restore as run

__all__ = ["add_parser", "run"]
