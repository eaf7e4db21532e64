"""The ``heron`` command line: one module per subcommand, listed in `COMMANDS`.

Each command module has ``add_parser(subparsers)`` and ``run(args) -> int``
(the exit status). A `HeronError` or `OSError` (a missing directory, a busy
port, a refused connection) ends the command with one line on stderr naming
the cause and what to do, and exit status 1 (``--debug`` shows the traceback
instead).
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from .._errors import HeronError
from .._version import __version__
from . import (
    _backup,
    _compact,
    _console,
    _copy,
    _export,
    _import,
    _inspect,
    _repair,
    _restore,
    _serve,
    _verify,
)

#: The subcommands, in the order ``heron --help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (
    _serve, _console, _inspect, _verify, _repair, _compact, _backup, _restore, _export, _import, _copy,
)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``heron`` with every subcommand of `COMMANDS`."""
    ap = argparse.ArgumentParser(prog="heron", description="Heron vector database")
    ap.add_argument("--version", action="version", version=f"heron {__version__}")
    ap.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = ap.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(run=command.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run ``heron`` with ``argv`` (default: the process's arguments); return the exit status."""
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (HeronError, OSError) as exc:
        if args.debug:
            raise
        print(f"heron {args.command}: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"heron {args.command}: interrupted", file=sys.stderr)
        return 130


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: an `OSError`'s reason and file without its errno, other errors' text."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename!r}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
