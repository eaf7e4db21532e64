"""The blocking twin of `AsyncClient`'s part, generated from `_async_loading.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import _requests as rq
from .._errors import CollectionNotFoundError, HeronError
from .._types import LoadState

if TYPE_CHECKING:
    from ._sync_client import Client

#: The first and the longest pause between two looks at the load state, in seconds.
FIRST_PAUSE = 0.02
LONGEST_PAUSE = 0.5


def wait_loaded(client: Client, db: str, collection: str, partitions: tuple[str, ...],
                      timeout: float | None) -> None:
    """Return once the collection (or its ``partitions``) is ``Loaded``, or not loading at all.

    Raises `HeronError` when ``timeout`` seconds pass first (None waits as long as it takes),
    and `CollectionNotFoundError` when the collection is dropped meanwhile.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        left = None if deadline is None else max(0.001, deadline - time.monotonic())
        state = (client._call(rq.GetLoadState(db, collection, partitions), left))["state"]
        if state in (LoadState.Loaded, LoadState.NotLoad):
            return  # NotLoad: nothing is loading (a create that found the collection as it was, released)
        if state == LoadState.NotExist:
            raise CollectionNotFoundError(f"collection {collection!r} was dropped while it was loading")
        if deadline is not None and time.monotonic() + pause > deadline:
            what = f"partitions {list(partitions)} of {collection!r}" if partitions else repr(collection)
            raise HeronError(f"loading {what} did not finish within timeout={timeout}s (state: {state.name})")
        time.sleep(pause)
        pause = min(2 * pause, LONGEST_PAUSE)
