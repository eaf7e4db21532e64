"""``heron verify`` for snapshots: each ``snapshots/c<id>/<name>/`` against its ``manifest.json``.

Every row file is checked against the checksum and row count its manifest
records, and every keep-mask (``.keep.npy``) is read and checked against the
rows of its file. A manifest that cannot be read, or that names another
collection or snapshot than its directory, is damage too: the snapshot
cannot be restored. Directories a crash left half-built (``.tmp``) are
notes, not damage: the next open removes them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .._errors import CorruptionError
from .storage._files import FileChecksum, check_segment_file


def check_snapshots(root: str, report: Any, problem: Any) -> None:
    """Add to ``report`` (a `heron.engine._verify.Report`) what is wrong with the snapshots under ``root``.

    ``problem(file, offset, what, damage=True)`` builds one finding.
    """
    base = os.path.join(root, "snapshots")
    if not os.path.isdir(base):
        return
    report.checked.setdefault("snapshot_files", 0)
    for cdir in sorted(os.listdir(base)):
        for name in sorted(os.listdir(os.path.join(base, cdir))) if os.path.isdir(os.path.join(base, cdir)) else []:
            rel = os.path.join("snapshots", cdir, name)
            if name.endswith(".tmp"):
                report.problems.append(problem(rel, None, "a snapshot left half-built by a crash: the next open "
                                                          "removes it", damage=False))
                continue
            _check_one(root, rel, cdir, name, report, problem)


def _check_one(root: str, rel: str, cdir: str, name: str, report: Any, problem: Any) -> None:
    lost = f"snapshot {name!r} cannot be restored"
    mrel = os.path.join(rel, "manifest.json")
    try:
        with open(os.path.join(root, mrel), "rb") as fh:
            m = json.loads(fh.read())
        files = list(m["files"])
        ok = f"c{int(m['collection_id'])}" == cdir and m["name"] == name
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.problems.append(problem(mrel, None, f"unreadable ({type(exc).__name__}: {exc}); {lost}"))
        return
    if not ok:
        report.problems.append(problem(mrel, None, f"names collection {m.get('collection_id')!r} and snapshot "
                                                   f"{m.get('name')!r}, not its directory's; {lost}"))
    report.checked["bytes"] += os.path.getsize(os.path.join(root, mrel))
    for entry in files:
        _check_file(root, rel, entry, lost, report, problem)


def _check_file(root: str, rel: str, entry: dict[str, Any], lost: str, report: Any, problem: Any) -> None:
    frel = os.path.join(rel, str(entry.get("file")))
    full = os.path.join(root, frel)
    try:
        checksum = FileChecksum.from_bytes(bytes.fromhex(entry["checksum"]))
        check_segment_file(full, checksum, int(entry["rows"]))
    except CorruptionError as exc:
        what = exc.message.split(f"{full!r} ", 1)[-1]
        report.problems.append(problem(frel, exc.offset, f"{what}; {lost}"))
    except (KeyError, ValueError, TypeError) as exc:
        report.problems.append(problem(frel, None, f"its manifest entry is unusable ({exc}); {lost}"))
    report.checked["snapshot_files"] += 1
    if os.path.exists(full):
        report.checked["bytes"] += os.path.getsize(full)
    keep = entry.get("keep")
    if keep:
        krel = os.path.join(rel, str(keep))
        try:
            mask = np.load(os.path.join(root, krel), allow_pickle=False)
            if mask.dtype != np.bool_ or mask.shape != (int(entry["rows"]),):
                raise ValueError(f"a {mask.dtype} array of shape {mask.shape}, expected {entry['rows']} booleans")
        except (OSError, ValueError) as exc:
            report.problems.append(problem(krel, None, f"unreadable keep-mask ({exc}); {lost}"))
