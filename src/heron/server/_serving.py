"""``DIR/SERVING``: the address of the ``heron serve`` that has a data directory open.

Written once the server listens, removed when it stops. A command given a
directory that another process has locked (``heron inspect DIR``, ``heron
backup DIR ...``) reads it to go through that server instead. A file left
by a server that was killed names a process that is gone, and is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os

NAME = "SERVING"


def write(root: str, host: str, port: int, tls: bool) -> None:
    """Record that this process serves ``root`` on ``host:port`` (a wildcard host is reached on loopback)."""
    reach = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in reach and not reach.startswith("["):
        reach = f"[{reach}]"
    uri = f"{'https' if tls else 'http'}://{reach}:{port}"
    tmp = os.path.join(root, NAME + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"uri": uri, "pid": os.getpid()}, fh)
    os.replace(tmp, os.path.join(root, NAME))


def remove(root: str) -> None:
    """Remove the record (nothing if there is none)."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(root, NAME))


def uri_of(root: str) -> str | None:
    """The URI of the live server that serves ``root``, or None (no record, or its process is gone)."""
    try:
        with open(os.path.join(root, NAME)) as fh:
            rec = json.load(fh)
        pid, uri = int(rec["pid"]), str(rec["uri"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return uri
