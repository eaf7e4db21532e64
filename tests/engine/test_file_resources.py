"""File resources: copies of files kept in the data directory for analyzers, through both clients and transports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import heron
from heron import wire
from heron.engine._engine import Engine


def test_file_resources_are_copied_listed_and_removed(client: Any, tmp_path: Path) -> None:
    src = tmp_path / "stop.txt"
    src.write_text("the\na\nan\n")
    if str(client._uri).startswith("http") and not wire.has_rpc("AddFileResource"):
        with pytest.raises(heron.ParamError, match="AddFileResource"):
            client.add_file_resource("stop", str(src))
        return
    client.add_file_resource("stop_words", str(src))
    client.add_file_resource("stop_words", str(src))  # the same again: nothing changes
    src.write_text("changed later")  # the resource is a copy, taken when it was added
    got = client.list_file_resources()
    assert [(r.name, r.path) for r in got] == [("stop_words", str(src))]
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(heron.AlreadyExistsError):
        client.add_file_resource("stop_words", str(tmp_path / "other.txt"))
    with pytest.raises(heron.ParamError, match="not a readable file"):
        client.add_file_resource("missing", str(tmp_path / "nope.txt"))
    with pytest.raises(heron.ParamError, match="invalid"):
        client.add_file_resource("../x", str(src))
    client.remove_file_resource("stop_words")
    client.remove_file_resource("stop_words")
    assert client.list_file_resources() == []


def test_engine_file_resources_path_finds_the_copy_after_reopen(tmp_path: Path) -> None:
    src = tmp_path / "dict.txt"
    src.write_text("word 1\n")
    with heron.Client(str(tmp_path / "db")) as c:
        c.add_file_resource("dict", str(src))
    src.unlink()
    engine = Engine(str(tmp_path / "db"))
    try:
        assert Path(engine.file_resources.path("dict")).read_text() == "word 1\n"
        with pytest.raises(heron.NotFoundError):
            engine.file_resources.path("nothing")
    finally:
        engine.close()
