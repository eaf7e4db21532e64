"""Waiting for a load to finish, as pymilvus's ``load_collection`` and ``load_partitions`` do.

A Milvus server answers ``LoadCollection`` once the load has started and
reports ``Loading`` until every segment is in memory; searches meanwhile
fail. Heron loads before it answers, so there the first look finds
``Loaded``. `scripts/unasync.py` generates the blocking version.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .. import _requests as rq
from .._errors import CollectionNotFoundError, HeronError
from .._types import LoadState

if TYPE_CHECKING:
    from ._async_client import AsyncClient

#: The first and the longest pause between two looks at the load state, in seconds.
FIRST_PAUSE = 0.02
LONGEST_PAUSE = 0.5


async def wait_loaded(client: AsyncClient, db: str, collection: str, partitions: tuple[str, ...],
                      timeout: float | None) -> None:
    """Return once the collection (or its ``partitions``) is ``Loaded``, or not loading at all.

    Raises `HeronError` when ``timeout`` seconds pass first (None waits as long as it takes),
    and `CollectionNotFoundError` when the collection is dropped meanwhile.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        left = None if deadline is None else max(0.001, deadline - time.monotonic())
        state = (await client._call(rq.GetLoadState(db, collection, partitions), left))["state"]
        if state in (LoadState.Loaded, LoadState.NotLoad):
            return  # NotLoad: nothing is loading (a create that found the collection as it was, released)
        if state == LoadState.NotExist:
            raise CollectionNotFoundError(f"collection {collection!r} was dropped while it was loading")
        if deadline is not None and time.monotonic() + pause > deadline:
            what = f"partitions {list(partitions)} of {collection!r}" if partitions else repr(collection)
            raise HeronError(f"loading {what} did not finish within timeout={timeout}s (state: {state.name})")
        await asyncio.sleep(pause)
        pause = min(2 * pause, LONGEST_PAUSE)
