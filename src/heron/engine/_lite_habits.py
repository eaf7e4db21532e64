"""Requests Milvus Lite answers that the Milvus server refuses only for its own bookkeeping.

Heron answers them as Milvus Lite does: a collection is loaded from its
creation, a vector field without an index is searched exactly, a loaded
partition may be dropped, and a search that names no ``anns_field`` runs on
the first vector field. Code that relies on this breaks when it moves to a
Milvus server, so each habit is logged at WARNING once per collection (and
per habit), naming the collection and what the server would refuse.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from ._collection import Collection

log = logging.getLogger("heron.engine")

_lock = threading.Lock()
_warned: WeakKeyDictionary[Collection, set[str]] = WeakKeyDictionary()


def warn_once(coll: Collection, habit: str, message: str) -> None:
    """Log ``message`` at WARNING unless ``habit`` was logged for ``coll`` already."""
    with _lock:
        seen = _warned.setdefault(coll, set())
        if habit in seen:
            return
        seen.add(habit)
    log.warning("collection %r of database %r: %s", coll.name, coll.db, message)


def unindexed_vector_fields(coll: Collection) -> list[str]:
    """The vector fields of ``coll`` that have no index."""
    return [f.name for f in coll.schema.vector_fields if coll.index_for(f.name) is None]


def note_unindexed(coll: Collection, action: str) -> None:
    """Warn (once) when ``action`` (load, search, query) touches a collection with an unindexed vector field."""
    if "unindexed" in _warned.get(coll, ()):
        return
    missing = unindexed_vector_fields(coll)
    if missing:
        warn_once(coll, "unindexed", (
            f"{action} with no index on vector field(s) {missing}: Heron searches them exactly, as Milvus Lite "
            "does; the Milvus server refuses to load the collection (and so to search or query it) until every "
            "vector field has an index (create_index, then load_collection)"))


def note_dropped_loaded_partition(coll: Collection, partition: str) -> None:
    """Warn (once) that a loaded partition was dropped, which the Milvus server refuses."""
    warn_once(coll, "drop_loaded_partition", (
        f"dropped partition {partition!r} while it was loaded, as Milvus Lite allows; the Milvus server "
        "refuses to drop a loaded partition (release_partitions first)"))


def note_implicit_anns_field(coll: Collection, chosen: str, fields: list[str]) -> None:
    """Warn (once) that a search named no ``anns_field`` on a collection with several vector fields."""
    warn_once(coll, "implicit_anns_field", (
        f"search without anns_field ran on the first vector field {chosen!r} of {fields}, as Milvus Lite does; "
        "the Milvus server refuses it (pass anns_field=)"))
