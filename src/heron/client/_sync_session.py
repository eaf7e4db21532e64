"""The blocking twin of `AsyncClient`'s part, generated from `_async_session.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ClientClosedError, ParamError

if TYPE_CHECKING:
    from ._sync_client import Client


class AsyncClientSession:
    """The read methods of an `Client` (search, hybrid_search, query, get and the iterators), until closed."""

    def __init__(self, client: Client, cluster_id: str) -> None:
        if not isinstance(cluster_id, str):
            raise ParamError(f"cluster_id: got {type(cluster_id).__name__}, expected a string")
        self._client = client
        #: The cluster the session was opened for (Heron's one cluster answers for any).
        self.cluster_id = cluster_id
        self._closed = False

    def _open(self) -> Client:
        if self._closed:
            raise ClientClosedError("the session is closed; open another with client.session(cluster_id)")
        return self._client

    def close(self) -> None:
        """Close the session (not its client): later calls raise `ClientClosedError`."""
        self._closed = True

    def search(self, *args: Any, **kwargs: Any) -> Any:
        """`Client.search`."""
        return self._open().search(*args, **kwargs)

    def hybrid_search(self, *args: Any, **kwargs: Any) -> Any:
        """`Client.hybrid_search`."""
        return self._open().hybrid_search(*args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        """`Client.query`."""
        return self._open().query(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """`Client.get`."""
        return self._open().get(*args, **kwargs)

    def query_iterator(self, *args: Any, **kwargs: Any) -> Any:
        """`Client.query_iterator`."""
        return self._open().query_iterator(*args, **kwargs)

    def search_iterator(self, *args: Any, **kwargs: Any) -> Any:
        """`Client.search_iterator`."""
        return self._open().search_iterator(*args, **kwargs)
