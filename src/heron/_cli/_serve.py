"""``heron serve --data DIR [--port 19530] ...``: serve a data directory over the Milvus gRPC protocol."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from . import _logs

#: The HTTP port of the console when none is named (Milvus's HTTP port).
CONSOLE_PORT = 9091


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``serve`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser("serve", help="serve a data directory over the Milvus gRPC protocol")
    s.add_argument("--data", required=True, help="data directory (created if missing)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=_port, default=19530, help="port (default 19530; 0 picks a free one)")
    s.add_argument("--auth", action="store_true", help="require user:password tokens")
    s.add_argument(
        "--root-password",
        default=None,
        help="initial password of user 'root' (default: env HERON_ROOT_PASSWORD)",
    )
    s.add_argument("--tls-cert", default="", help="PEM certificate: serve TLS (https:// URIs)")
    s.add_argument("--tls-key", default="", help="PEM private key of --tls-cert")
    s.add_argument("--max-inflight", type=int, default=256, help="calls in flight before 'server busy'")
    s.add_argument("--workers", type=int, default=0, help="engine worker threads (default: by CPU count)")
    s.add_argument(
        "--http-port", type=int, default=None,
        help="serve /healthz, /readyz, /metrics and the Milvus RESTful API v2 on this port (Milvus uses 9091; "
        "0 picks a free one; default: no HTTP port)",
    )
    s.add_argument("--console", action="store_true",
                   help="serve the web console at / of the HTTP port (--http-port; default 9091)")
    s.add_argument("--log-level", default="WARNING", type=str.upper, choices=_logs.LEVELS,
                   help="DEBUG logs every call; INFO failed ones too; WARNING (default) slow ones")
    s.add_argument("--log-format", default="text", choices=_logs.FORMATS,
                   help="text, or json: one object a line with the call's fields, for log shippers")
    s.add_argument("--slow-ms", type=float, default=1000.0,
                   help="calls taking this long or longer are logged at WARNING (default 1000)")
    return s


def _port(text: str) -> int:
    """A TCP port number (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a port number from 0 to 65535 (0 picks a free one)")
    return port


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 2 for contradictory options."""
    from ..server import ServerConfig, serve

    _logs.setup(args.log_level, args.log_format)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("heron: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    password = (
        args.root_password if args.root_password is not None else os.environ.get("HERON_ROOT_PASSWORD", "")
    )
    if args.auth and not password:
        print(
            "heron: --auth needs a root password: --root-password or env HERON_ROOT_PASSWORD", file=sys.stderr
        )
        return 2
    cfg = ServerConfig(
        args.data,
        args.host,
        args.port,
        args.auth,
        password,
        args.tls_cert,
        args.tls_key,
        args.max_inflight,
        args.workers,
        slow_ms=args.slow_ms,
        http_port=args.http_port if args.http_port is not None or not args.console else CONSOLE_PORT,
        console=args.console,
    )
    asyncio.run(serve(cfg))
    return 0
