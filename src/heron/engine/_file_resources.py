"""File resources: files kept in the data directory for analyzers (stop-word lists, dictionaries).

`add_file_resource(name, path)` copies the file at ``path`` (a path on the
machine that runs the engine: the server's, for a remote client) into
``file_resources/`` of the data directory, written to a temporary name,
synced and renamed, so a resource is there whole or not at all, and kept
across restarts; ``file_resources/index.json`` records each name with its id
and the path it came from. Analyzers find a resource's copy with
`FileResources.path` (``engine.file_resources.path(name)``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import AlreadyExistsError, NotFoundError, ParamError

if TYPE_CHECKING:
    from ._engine import Engine

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
#: The largest file accepted as a resource.
MAX_BYTES = 256 << 20


class FileResources:
    """The file resources of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.dir = os.path.join(engine.dir.path, "file_resources")
        self._index_path = os.path.join(self.dir, "index.json")
        self._lock = threading.Lock()

    def _index(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self._index_path, encoding="utf-8") as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def _save(self, index: dict[str, dict[str, Any]]) -> None:
        tmp = self._index_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(index, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._index_path)

    def path(self, name: str) -> str:
        """The path of resource ``name``'s copy in the data directory; `NotFoundError` if there is none."""
        with self._lock:
            if name not in self._index():
                raise NotFoundError(f"file resource {name!r} does not exist; add it with add_file_resource")
        return os.path.join(self.dir, name)

    def op_add_file_resource(self, r: rq.AddFileResource) -> None:
        if not isinstance(r.name, str) or not _NAME.match(r.name) or r.name == "index.json" or \
                r.name.endswith(".tmp"):
            raise ParamError(f"file resource name {r.name!r} is invalid: expected letters, digits, '_', '.' or '-' "
                             "(not 'index.json', not ending in '.tmp')")
        if not os.path.isfile(r.path):
            raise ParamError(f"file resource {r.name!r}: path {r.path!r} is not a readable file on the machine "
                             "that runs the database")
        size = os.path.getsize(r.path)
        if size > MAX_BYTES:
            raise ParamError(f"file resource {r.name!r}: {size} bytes; expected at most {MAX_BYTES}")
        with self._lock:
            index = self._index()
            if r.name in index:
                if index[r.name]["path"] == r.path:
                    return  # the same resource again: nothing to do
                raise AlreadyExistsError(f"file resource {r.name!r} already exists (from {index[r.name]['path']!r})")
            os.makedirs(self.dir, exist_ok=True)
            final = os.path.join(self.dir, r.name)
            tmp = final + ".tmp"
            try:
                shutil.copyfile(r.path, tmp)
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            except OSError as exc:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise ParamError(f"file resource {r.name!r}: copying {r.path!r} failed: {exc}") from exc
            index[r.name] = {"id": 1 + max((v["id"] for v in index.values()), default=0), "path": r.path}
            self._save(index)

    def op_remove_file_resource(self, r: rq.RemoveFileResource) -> None:
        with self._lock:
            index = self._index()
            if index.pop(r.name, None) is None:
                return
            self._save(index)
            os.unlink(os.path.join(self.dir, r.name))

    def op_list_file_resources(self, r: rq.ListFileResources) -> list[dict[str, Any]]:
        with self._lock:
            index = self._index()
        return [{"id": v["id"], "name": k, "path": v["path"]} for k, v in sorted(index.items())]
