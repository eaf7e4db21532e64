"""A writer for the crash tests (``test_durability.py``, ``test_kill_rounds.py``); killed with SIGKILL.

    python tests/_crash_child.py DATA_DIR --start-id N --seed S --op-base B [--max-ops K] [--insert-only]
        [--collections C] [--batch R] [--delete-window W] [--ledger FILE] [--fault NAME[@N]]

It opens DATA_DIR, prints ``ready``, then runs operations on the collection
``crash`` (or on ``crash``, ``crash2``, ... with ``--collections``) forever (or
``--max-ops`` of them, then prints ``idle`` and waits to be killed). Before
each operation it prints ``B <json>`` describing it (kind, collection, ids,
version) and after the call returns ``A <op>``: the parent treats an
operation with an ``A`` line as acknowledged, one with only a ``B`` line as in
flight (all or nothing), and one without a line as never started. Every line
is flushed at once so a kill loses nothing that was printed; with
``--ledger`` the lines go to that file instead, synced after each ``A``.
``--fault`` arms a fault point (`heron.engine._faults`): the process kills
itself there, after writing ``F <name>``.

Rows are ``{"id", "ver", "vec"}``; ``ver`` is the operation number that last
wrote the row and ``vec`` is derived from ``(id, ver)`` (see `vector_of`).
The file name starts with ``_`` so pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import heron

COLLECTION = "crash"
BATCH = 200


def vector_of(i: int, ver: int) -> list[float]:
    """The vector of row ``i`` as written by operation ``ver`` (float32-exact)."""
    return [float(i), float(ver), float(i % 13), 1.0]


def make_schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("ver", heron.DataType.INT64)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=4)
    return s


def collection_names(count: int) -> list[str]:
    return [COLLECTION] + [f"{COLLECTION}{i}" for i in range(2, count + 1)]


def create_collection(client: heron.Client, name: str = COLLECTION, index_type: str = "FLAT") -> None:
    idx = client.prepare_index_params()
    params = {"M": 8, "efConstruction": 32} if index_type == "HNSW" else {}
    idx.add_index("vec", index_type=index_type, metric_type="L2", params=params)
    client.create_collection(name, schema=make_schema(), index_params=idx)


def columns(ids: list[int], ver: int) -> dict[str, np.ndarray]:
    arr = np.asarray(ids, dtype=np.int64)
    return {
        "id": arr,
        "ver": np.full(len(ids), ver, dtype=np.int64),
        "vec": np.asarray([vector_of(i, ver) for i in ids], dtype=np.float32).reshape(len(ids), 4),
    }


def operations(lines: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str]:
    """The acknowledged operations of a run's lines, the one in flight (if any), and the fault that fired."""
    begun: list[dict[str, Any]] = []
    acked: set[int] = set()
    fired = ""
    for line in lines:
        if line.startswith("B "):
            begun.append(json.loads(line[2:]))
        elif line.startswith("A "):
            acked.add(int(line[2:]))
        elif line.startswith("F "):
            fired = line[2:]
    done = [op for op in begun if op["op"] in acked]
    pending = [op for op in begun if op["op"] not in acked]
    assert len(pending) <= 1 and (not pending or pending[0] is begun[-1]), "the writer runs one call at a time"
    return done, (pending[0] if pending else None), fired


def apply_op(state: dict[int, int], op: dict[str, Any]) -> dict[int, int]:
    """``{id: ver}`` after ``op`` (of the same collection)."""
    out = dict(state)
    for i in op["ids"]:
        if op["kind"] == "delete":
            out.pop(i, None)
        else:
            out[i] = op["op"]
    return out


def diff(got: dict[int, int], want: dict[int, int]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(i for i in set(got) & set(want) if got[i] != want[i])
    return f"missing={missing[:10]} ({len(missing)}), extra={extra[:10]} ({len(extra)}), changed={changed[:10]}"


def stdout_say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def ledger(path: str) -> Callable[[str], None]:
    """A `say` that appends to ``path``, syncing after each acknowledgement."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(line: str) -> None:
        os.write(fd, (line + "\n").encode())
        if line.startswith("A "):
            os.fsync(fd)

    return say


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--start-id", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--op-base", type=int, required=True)
    ap.add_argument("--max-ops", type=int, default=0)
    ap.add_argument("--insert-only", action="store_true")
    ap.add_argument("--collections", type=int, default=1)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--delete-window", type=int, default=0, help="delete keys from one window this wide")
    ap.add_argument("--ledger", default="")
    ap.add_argument("--fault", default="")
    args = ap.parse_args(argv)

    say = ledger(args.ledger) if args.ledger else stdout_say
    if args.fault:
        from heron.engine import _faults

        _faults.arm(args.fault, on_fire=lambda name: say(f"F {name}"))
    rng = random.Random(args.seed)
    names = collection_names(args.collections)
    batch = args.batch
    next_id = args.start_id
    client = heron.Client(args.path)
    say("ready")
    op = args.op_base
    done = 0
    while not args.max_ops or done < args.max_ops:
        roll = 0.0 if args.insert_only or next_id < 2 * batch else rng.random()
        coll = rng.choice(names)
        if roll < 0.7:
            kind, ids = "insert", list(range(next_id, next_id + batch))
            next_id += batch
        elif roll < 0.85:
            # Rewrite existing (or deleted) keys, plus a few new ones.
            kind, ids = "upsert", rng.sample(range(next_id), batch // 2) + list(range(next_id, next_id + batch // 10))
            next_id += batch // 10
        elif args.delete_window:
            lo = rng.randrange(max(1, next_id - args.delete_window))
            kind, ids = "delete", rng.sample(range(lo, min(next_id, lo + args.delete_window)), batch // 4)
        else:
            kind, ids = "delete", rng.sample(range(next_id), batch // 4)
        say("B " + json.dumps({"op": op, "kind": kind, "coll": coll, "ids": ids}))
        if kind == "insert":
            client.insert(coll, columns(ids, op))
        elif kind == "upsert":
            client.upsert(coll, columns(ids, op))
        else:
            client.delete(coll, ids=ids)
        say(f"A {op}")
        op += 1
        done += 1
    say("idle")
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
