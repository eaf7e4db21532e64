"""``heron console DIR [--port 9091]``: open a data directory and serve the web console on it.

The directory is opened by this process, as ``heron serve --http-port PORT
--console`` opens it (a gRPC port on a free port too, so clients can write
while you watch); stop it with Ctrl-C. A directory that a running ``heron
serve`` has open is that server's: start it with ``--console`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from .._errors import HeronError
from ..server import _serving
from . import _logs
from ._serve import CONSOLE_PORT, _port


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``console`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "console", help="open a data directory and serve the web console on it",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    s.add_argument("data", help="data directory (created if missing)")
    s.add_argument("--port", type=_port, default=CONSOLE_PORT,
                   help=f"HTTP port of the console (default {CONSOLE_PORT}; 0 picks a free one)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--log-level", default="WARNING", type=str.upper, choices=_logs.LEVELS,
                   help="DEBUG logs every call; INFO failed ones too; WARNING (default) slow ones")
    return s


def run(args: argparse.Namespace) -> int:
    """Serve the console until SIGTERM or SIGINT."""
    from ..server import ServerConfig, serve

    uri = _serving.uri_of(args.data)
    if uri is not None:
        raise HeronError(f"{args.data} is open in the heron serve at {uri}: restart that server with "
                         "--http-port PORT --console to see it in the console")
    _logs.setup(args.log_level, "text")
    asyncio.run(serve(ServerConfig(args.data, args.host, 0, http_port=args.port, console=True)))
    return 0
