"""What a data directory holds outside its catalog, checked against the catalog when it opens.

The catalog names every collection; segment directories (``segments/c<id>``)
and insert-log records belong to one of them. Data of a collection the
catalog does not know is either what a drop left behind when a crash cut it
short (the catalog then holds the drop's retirement of the whole collection,
and the leftovers are removed) or the sign of a catalog that lost rows: then
opening refuses with `CorruptionError` rather than show the data under some
new collection that gets its id. Ids found here also keep the catalog from
handing them out again (`Catalog.raise_ids`). Once a log manifest has been
written the catalog says so, and a manifest that is gone is damage too.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter

from ..._errors import CorruptionError
from ._catalog import Catalog
from ._insert_log import InsertLog
from ._log_files import log_files

_COLLECTION_DIR = re.compile(r"c(\d+)")
_SEGMENT_FILE = re.compile(r"s(\d+)\.")


def data_left(root: str) -> list[str]:
    """What ``root`` holds besides its catalog: segment directories with files, non-empty log files."""
    out = []
    segments = os.path.join(root, "segments")
    for name in sorted(os.listdir(segments)) if os.path.isdir(segments) else []:
        full = os.path.join(segments, name)
        if _COLLECTION_DIR.fullmatch(name) and os.path.isdir(full) and os.listdir(full):
            out.append(f"segments/{name} ({len(os.listdir(full))} files)")
    logs = os.path.join(root, "log")
    for name in log_files(logs) if os.path.isdir(logs) else []:
        size = os.path.getsize(os.path.join(logs, name))
        if size:
            out.append(f"log/{name} ({size} bytes)")
    return out


def reconcile(root: str, catalog: Catalog, inserts: InsertLog) -> int:
    """Check the segment directories and log records of ``root`` against ``catalog``; returns the top segment id.

    Removes what an interrupted drop left; raises `CorruptionError` (changing
    nothing) for data of a collection the catalog neither knows nor dropped.
    """
    if not inserts.had_manifest and catalog.rows("SELECT 1 FROM meta WHERE key='insert_log_manifest'"):
        raise CorruptionError(
            f"insert log manifest {os.path.join(inserts.path, 'MANIFEST')!r} is missing: log files may have been "
            "deleted with it. Run `heron repair` to rebuild it from the files that remain, or restore the "
            "directory from a backup", path=inserts.path)
    known = set(catalog.collection_names())
    retired = catalog.rows("SELECT collection_id, partition_id, lo FROM log_retired")
    dropped = {cid for cid, pid, lo in retired if pid == 0 and lo == 0} - known
    segments = os.path.join(root, "segments")
    leftovers, top_collection, top_segment = [], 0, 0
    for name in sorted(os.listdir(segments)):
        m = _COLLECTION_DIR.fullmatch(name)
        if m is None:
            continue
        cid = int(m[1])
        top_collection = max(top_collection, cid)
        files = os.listdir(os.path.join(segments, name))
        top_segment = max([top_segment, *(int(f[1]) for f in map(_SEGMENT_FILE.match, files) if f)])
        if not files or cid in known:
            continue
        if cid not in dropped:
            raise CorruptionError(
                f"segments/{name} holds {len(files)} files of collection {cid}, which catalog.db does not know "
                "and never dropped: the catalog has lost rows. Restore catalog.db from a backup",
                path=os.path.join(segments, name))
        leftovers.append(os.path.join(segments, name))
    records = inserts.all_records()
    stray = Counter(r.collection_id for r in records
                    if r.collection_id not in known and not inserts.retired.covers(r))
    if stray:
        cid, n = min(stray.items())
        raise CorruptionError(
            f"the insert log holds {n} records of collection {cid}, which catalog.db does not know and never "
            "dropped: the catalog has lost rows. Restore catalog.db from a backup", path=inserts.path)
    if not inserts.had_manifest:  # from now on the manifest must be there (see above)
        inserts.save_manifest()
        catalog.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('insert_log_manifest', '1')")
    for path in leftovers:  # a drop cut short by a crash: its catalog rows are gone, the files go too
        shutil.rmtree(path, ignore_errors=True)
    catalog.raise_ids(
        collections=max([top_collection, *(r.collection_id for r in records), *(c for c, _, _ in retired)]),
        partitions=max([0, *(r.partition_id for r in records), *(p for _, p, _ in retired)]),
        segments=top_segment,
    )
    return top_segment
