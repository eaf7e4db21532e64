"""A writer for the crash tests in ``test_durability.py``; run as a script, killed with SIGKILL.

    python tests/_crash_child.py DATA_DIR --start-id N --seed S --op-base B [--max-ops K] [--insert-only]

It opens DATA_DIR, prints ``ready``, then runs operations on the collection
``crash`` forever (or ``--max-ops`` of them, then prints ``idle`` and waits to
be killed). Before each operation it prints ``B <json>`` describing it (kind,
ids, version) and after the call returns ``A <op>``: the parent treats an
operation with an ``A`` line as acknowledged, one with only a ``B`` line as in
flight (all or nothing), and one without a line as never started. Every line
is flushed at once so a kill loses nothing that was printed.

Rows are ``{"id", "ver", "vec"}``; ``ver`` is the operation number that last
wrote the row and ``vec`` is derived from ``(id, ver)`` (see `vector_of`).
The file name starts with ``_`` so pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

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


def create_collection(client: heron.Client) -> None:
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(COLLECTION, schema=make_schema(), index_params=idx)


def columns(ids: list[int], ver: int) -> dict[str, np.ndarray]:
    arr = np.asarray(ids, dtype=np.int64)
    return {
        "id": arr,
        "ver": np.full(len(ids), ver, dtype=np.int64),
        "vec": np.asarray([vector_of(i, ver) for i in ids], dtype=np.float32).reshape(len(ids), 4),
    }


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--start-id", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--op-base", type=int, required=True)
    ap.add_argument("--max-ops", type=int, default=0)
    ap.add_argument("--insert-only", action="store_true")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    next_id = args.start_id
    client = heron.Client(args.path)
    say("ready")
    op = args.op_base
    done = 0
    while not args.max_ops or done < args.max_ops:
        roll = 0.0 if args.insert_only or next_id < 400 else rng.random()
        if roll < 0.7:
            kind, ids = "insert", list(range(next_id, next_id + BATCH))
            next_id += BATCH
        elif roll < 0.85:
            # Rewrite existing (or deleted) keys, plus a few new ones.
            kind, ids = "upsert", rng.sample(range(next_id), 100) + list(range(next_id, next_id + 20))
            next_id += 20
        else:
            kind, ids = "delete", rng.sample(range(next_id), 50)
        say("B " + json.dumps({"op": op, "kind": kind, "ids": ids}))
        if kind == "insert":
            client.insert(COLLECTION, columns(ids, op))
        elif kind == "upsert":
            client.upsert(COLLECTION, columns(ids, op))
        else:
            client.delete(COLLECTION, ids=ids)
        say(f"A {op}")
        op += 1
        done += 1
    say("idle")
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
