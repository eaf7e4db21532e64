"""The version of Heron, in a module of its own so that any layer can read it without importing the clients."""

from __future__ import annotations

__version__ = "0.1.0"


def server_version(detail: bool = False) -> str | dict[str, str]:
    """What a Heron server answers for its version: ``GetVersion``'s string, or ``Connect``'s server info.

    Embedded Heron answers the same, so that code asking for the version sees one answer for both.
    """
    if not detail:
        return f"v{__version__}"
    return {"version": f"heron-{__version__}", "build_time": "", "git_commit": "", "go_version": "",
            "deploy_mode": "STANDALONE"}
