"""Opening the URI a command names: a data directory (which must exist) or a running ``heron serve``."""

from __future__ import annotations

import errno
import os
import re
from typing import Any

from .._errors import DataDirLockedError
from ..server import _serving

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://")


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a server rather than a data directory."""
    return uri.startswith(SERVER_SCHEMES) or uri.startswith("unix:")


def data_dir(path: str) -> str:
    """``path`` made absolute; an `OSError` naming the fix unless it is an existing Heron data directory."""
    full = os.path.abspath(path)
    if not os.path.isdir(full):
        raise OSError(errno.ENOENT, f"no data directory {path!r}: give the directory `heron serve --data` or "
                      "heron.Client(uri) was given, or a server's http://host:port")
    if not os.path.exists(os.path.join(full, "catalog.db")):
        raise OSError(errno.ENOENT, f"{path!r} is not a Heron data directory (it has no catalog.db)")
    return full


def open_client(uri: str, token: str = "") -> Any:
    """A `heron.Client` on ``uri``: a server, or an existing data directory (never creating one).

    A directory that a running ``heron serve`` has open is reached through that server.
    """
    from ..client._sync_client import Client

    if _SCHEME.match(uri) and not is_server(uri):
        raise OSError(errno.EINVAL, f"unsupported URI {uri!r}: give a data directory or http(s)://host:port "
                      "of `heron serve`")
    if is_server(uri):
        return Client(uri, token=token)
    root = data_dir(uri)
    try:
        return Client(root, token=token)
    except DataDirLockedError:
        served = _serving.uri_of(root)
        if served is None:
            raise
        return Client(served, token=token)  # the server that has it open answers for it
