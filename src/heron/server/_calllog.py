"""The server's log of calls: every call at DEBUG, failed calls at INFO, slow calls at WARNING.

Each record carries the call's fields as attributes (``method``,
``collection``, ``db``, ``duration_ms``, ``code``, ``peer``) besides its
message, so a JSON formatter (``heron serve --log-format json``) emits
them as fields for log shippers. Nothing is formatted for a call that
is logged at no enabled level.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("heron.server")

#: Calls that take at least this long are logged at WARNING (``heron serve --slow-ms``).
DEFAULT_SLOW_MS = 1000.0


class CallLog:
    """Logs each finished call at the level its outcome and duration call for."""

    def __init__(self, slow_ms: float = DEFAULT_SLOW_MS) -> None:
        self.slow_ms = slow_ms

    def record(self, rpc: str, msg: Any, context: Any, reply: Any, seconds: float) -> None:
        """Log one call; ``reply`` is None when the call ended without one (aborted or cancelled)."""
        ms = seconds * 1000.0
        if ms < self.slow_ms and not log.isEnabledFor(logging.INFO):
            return  # the common case: a quick call, at the default level (WARNING)
        code, reason = _status(reply)
        failed = reply is None or code != 0
        level = logging.WARNING if ms >= self.slow_ms else logging.INFO if failed else logging.DEBUG
        if not log.isEnabledFor(level):
            return
        collection = _field(msg, "collection_name")
        db = _field(msg, "db_name")
        peer = context.peer() if hasattr(context, "peer") else ""
        if reply is None:
            outcome = "ended without a reply (aborted: unauthenticated, deadline passed or cancelled)"
        elif failed:
            outcome = f"failed: code {code}: {reason}"
        else:
            outcome = "ok"
        slow = f" (slow: over {self.slow_ms:g} ms)" if ms >= self.slow_ms else ""
        where = f" {db + '.' if db else ''}{collection}" if collection else ""
        log.log(
            level, "%s%s from %s: %s in %.1f ms%s", rpc, where, peer, outcome, ms, slow,
            extra={"method": rpc, "collection": collection, "db": db, "duration_ms": round(ms, 3),
                   "code": code if reply is not None else None, "peer": peer},
        )


def _field(msg: Any, name: str) -> str:
    """A string field of a request message, "" where the message has none."""
    desc = getattr(msg, "DESCRIPTOR", None)
    if desc is None or name not in desc.fields_by_name:
        return ""
    return str(getattr(msg, name))


def _status(reply: Any) -> tuple[int, str]:
    """(code, reason) of a reply: its ``status`` field, or the reply itself when it is a Status."""
    if reply is None:
        return -1, ""
    desc = getattr(reply, "DESCRIPTOR", None)
    if desc is None:
        return 0, ""
    status = reply if desc.name == "Status" else getattr(reply, "status", None) if "status" in desc.fields_by_name else None
    if status is None:
        return 0, ""
    code = int(getattr(status, "code", 0) or getattr(status, "error_code", 0) or 0)
    return code, str(getattr(status, "reason", ""))
