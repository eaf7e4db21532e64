"""`AsyncClient.session`: reads pinned to a cluster, as pymilvus 3's ``MilvusClientSession``.

In a replicated Milvus deployment a session sends its reads to the cluster it
names. Heron is one cluster, so a session reads from the client's own database
whatever cluster id it was given; it exists so that code written against
sessions runs unchanged. `scripts/unasync.py` generates the blocking version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ClientClosedError, ParamError

if TYPE_CHECKING:
    from ._async_client import AsyncClient


class AsyncClientSession:
    """The read methods of an `AsyncClient` (search, hybrid_search, query, get and the iterators), until closed."""

    def __init__(self, client: AsyncClient, cluster_id: str) -> None:
        if not isinstance(cluster_id, str):
            raise ParamError(f"cluster_id: got {type(cluster_id).__name__}, expected a string")
        self._client = client
        #: The cluster the session was opened for (Heron's one cluster answers for any).
        self.cluster_id = cluster_id
        self._closed = False

    def _open(self) -> AsyncClient:
        if self._closed:
            raise ClientClosedError("the session is closed; open another with client.session(cluster_id)")
        return self._client

    def close(self) -> None:
        """Close the session (not its client): later calls raise `ClientClosedError`."""
        self._closed = True

    async def search(self, *args: Any, **kwargs: Any) -> Any:
        """`AsyncClient.search`."""
        return await self._open().search(*args, **kwargs)

    async def hybrid_search(self, *args: Any, **kwargs: Any) -> Any:
        """`AsyncClient.hybrid_search`."""
        return await self._open().hybrid_search(*args, **kwargs)

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        """`AsyncClient.query`."""
        return await self._open().query(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        """`AsyncClient.get`."""
        return await self._open().get(*args, **kwargs)

    def query_iterator(self, *args: Any, **kwargs: Any) -> Any:
        """`AsyncClient.query_iterator`."""
        return self._open().query_iterator(*args, **kwargs)

    def search_iterator(self, *args: Any, **kwargs: Any) -> Any:
        """`AsyncClient.search_iterator`."""
        return self._open().search_iterator(*args, **kwargs)
