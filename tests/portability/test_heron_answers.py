"""The same calls on embedded Heron and ``heron serve`` (sync and async): what the Milvus fixes left them."""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus.client.types import ConsistencyLevel

import heron
from heron._errors import FilterError, ParamError


def test_server_version_is_the_same_everywhere(client: Any) -> None:
    assert client.get_server_version() == f"v{heron.__version__}"
    assert client.get_server_version(detail=True)["version"] == f"heron-{heron.__version__}"


@pytest.mark.parametrize("level", ["Strong", "Session", "Bounded", "Eventually", 0, 3, ConsistencyLevel.Strong, None])
def test_reads_see_their_own_writes_at_every_level(client: Any, level: Any) -> None:
    client.create_collection("c", dimension=2, consistency_level="Bounded")
    client.load_collection("c", timeout=60)
    assert client.get_load_state("c")["state"] == heron.LoadState.Loaded
    client.insert("c", [{"id": 7, "vector": [0.5, 0.5]}])
    kwargs = {} if level is None else {"consistency_level": level}
    assert [r["id"] for r in client.query("c", filter="id >= 0", **kwargs)] == [7]
    assert [h["id"] for h in client.search("c", [[0.5, 0.5]], limit=1, **kwargs)[0]] == [7]
    assert [r["id"] for r in client.get("c", ids=[7], **kwargs)] == [7]


def test_collection_level_is_kept(client: Any) -> None:
    client.create_collection("strong", dimension=2, consistency_level=ConsistencyLevel.Strong)
    client.create_collection("plain", dimension=2)
    assert client.describe_collection("strong")["consistency_level"] == 0
    assert client.describe_collection("plain")["consistency_level"] == 2


def test_bad_level_and_bad_filter(client: Any) -> None:
    client.create_collection("c", dimension=2)
    with pytest.raises(ParamError, match=r"consistency_level: got 'strongest'"):
        client.query("c", filter="id >= 0", consistency_level="strongest")
    with pytest.raises(ParamError, match="consistency_level: got 9"):
        client.create_collection("d", dimension=2, consistency_level=9)
    assert not client.has_collection("d")
    with pytest.raises(FilterError):
        client.query("c", filter="id >>> 3")
