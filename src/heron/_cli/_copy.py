"""``heron copy SRC DST``: collections with their schema, partitions, indexes, aliases and rows, URI to URI.

``SRC`` and ``DST`` are each a data directory (``DST`` is created if
missing) or ``http://host:port`` of ``heron serve`` or of a Milvus server.
Per collection (every one of ``SRC``'s database, or each ``--collection``):

1. on ``DST``, the collection as ``SRC`` describes it (fields, functions,
   consistency level, properties), its partitions, its indexes with the same
   parameters and its aliases; a type or feature ``DST`` cannot hold (Milvus
   2.3 has no sparse or float16 vectors, no nullable fields, one vector field
   per collection) is refused before anything is written, naming the field;
2. the rows, a page (``--batch``) at a time in primary-key order, partition by
   partition (function outputs are left out: ``DST`` computes them again);
3. ``DST`` loads it and it is verified: the row count of every partition,
   and ``--sample`` rows picked at random compared field by field.

Resumable: after each page ``DST`` acknowledged, the last primary key copied
per partition goes to a JSON state file (``--state``; by default
``DST/copy-state.json`` for a directory, ``./heron-copy-HOST-PORT.json`` for
a server). Run the same command again after a crash or an interrupt and it
goes on after that key; the first page after it is upserted, so no row is
lost or doubled. An auto_id key gets new values on ``DST``: such a
collection is verified by its counts only (a copy of it stopped between a
page and its record fails that check rather than keep a page twice).
Every collection is checked against ``DST`` before the first is written;
``--db`` is created on ``DST`` when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._errors import HeronError
from .._schema import CollectionSchema
from .._types import DataType
from ._bars import _Quiet, bar
from ._connect import is_server, open_client
from ._copy_checks import check_target, target_version
from ._copy_state import CopyState, default_state_path
from ._import import _INDEX_KEYS

PAGE = 1000
SAMPLE = 100
_FLOATS = (DataType.FLOAT, DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``copy`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "copy", help="copy collections (schema, partitions, indexes, aliases, rows) from one URI to another",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("src", help="a data directory, or http://host:port of `heron serve` or Milvus")
    s.add_argument("dst", help="a data directory (created if missing), or http://host:port")
    s.add_argument("--collection", action="append", default=[], metavar="NAME",
                   help="copy this collection (repeatable; default: every collection of the database)")
    s.add_argument("--batch", type=int, default=PAGE, help=f"rows per page (default: {PAGE})")
    s.add_argument("--sample", type=int, default=SAMPLE, help=f"rows compared at the end (default: {SAMPLE})")
    s.add_argument("--state", default="", metavar="FILE", help="the progress file (default: see above)")
    s.add_argument("--db", default="", help="the database on both sides (default: default)")
    s.add_argument("--src-token", default="", help="user:password for SRC")
    s.add_argument("--dst-token", default="", help="user:password for DST")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return s


def run(args: argparse.Namespace) -> int:
    """Copy; 0 once every collection is copied and verified, a `HeronError` naming the first difference."""
    if not 0 < args.batch <= 16384:
        raise HeronError(f"--batch: got {args.batch}, expected 1..16384")
    if args.sample < 0:
        raise HeronError(f"--sample: got {args.sample}, expected 0 or more")
    kw = {"db_name": args.db} if args.db else {}
    state_path = args.state or default_state_path(args.dst)
    src_uri, dst_uri = (u if is_server(u) else os.path.abspath(u) for u in (args.src, args.dst))
    with open_client(args.src, args.src_token) as src, open_target(args.dst, args.dst_token) as dst:
        names = args.collection or sorted(src.list_collections(**kw))
        for name in names:
            if not src.has_collection(name, **kw):
                raise HeronError(f"collection {name!r} does not exist on {args.src}")
        state = CopyState.open(state_path, src_uri, dst_uri, args.db)
        preflight(src, dst, names, state, args.db)
        for name in names:
            started = time.monotonic()
            rows = copy_collection(src, dst, name, state, kw, batch=args.batch, quiet=args.quiet)
            secs = max(time.monotonic() - started, 1e-9)
            checked = verify(src, dst, name, kw, args.sample)
            print(f"heron copy: {name}: {rows['total']:,} rows ({rows['copied']:,} copied now in {secs:,.1f} s, "
                  f"{rows['copied'] / secs:,.0f} rows/s), {checked}")
    return 0


def open_target(uri: str, token: str = "") -> Any:
    """A client on ``uri``: a server, an existing data directory, or a new one made there."""
    from ..client._sync_client import Client

    if is_server(uri) or os.path.exists(os.path.join(uri, "catalog.db")):
        return open_client(uri, token)
    if os.path.exists(uri) and (not os.path.isdir(uri) or set(os.listdir(uri)) - {"copy-state.json"}):
        raise HeronError(f"destination {uri!r} exists and is not a Heron data directory")
    return Client(os.path.abspath(uri), token=token)


def preflight(src: Any, dst: Any, names: list[str], state: CopyState, db: str) -> None:
    """Refuse, before anything is written, a collection ``dst`` cannot hold or already has (not from this copy)."""
    kw = {"db_name": db} if db else {}
    version = target_version(dst)
    if db and db not in dst.list_databases():
        dst.create_database(db)
    for name in names:
        entry = state.collection(name)
        if entry.get("created"):
            continue
        schema = CollectionSchema.from_dict(src.describe_collection(name, **kw))
        indexes = [dict(src.describe_index(name, i, **kw) or {}) for i in src.list_indexes(name, **kw)]
        check_target(schema, indexes, version, name)
        if dst.has_collection(name, **kw) and not entry.get("creating"):
            raise HeronError(f"collection {name!r} already exists on the destination: drop it there, or give "
                             "--state of the copy that made it to go on with that copy")


def copy_collection(src: Any, dst: Any, name: str, state: CopyState, kw: dict[str, Any], *,
                    batch: int = PAGE, quiet: bool = False) -> dict[str, int]:
    """Create ``name`` on ``dst`` (unless the state says it is made) and copy the rows not copied yet."""
    d = src.describe_collection(name, **kw)
    schema = CollectionSchema.from_dict(d)
    indexes = [dict(src.describe_index(name, i, **kw) or {}) for i in src.list_indexes(name, **kw)]
    keyed = any(f.is_partition_key for f in schema.fields)
    partitions = [""] if keyed else list(src.list_partitions(name, **kw))
    entry = state.collection(name)
    earlier = bool(entry.get("created"))  # made by an earlier run: its last page may be in but unrecorded
    if not earlier:
        check_target(schema, indexes, target_version(dst), name)
        if dst.has_collection(name, **kw):
            if not entry.get("creating"):
                raise HeronError(f"collection {name!r} already exists on the destination: drop it there, or give "
                                 "--state of the copy that made it to go on with that copy")
            dst.drop_collection(name, **kw)  # an earlier run stopped while making it: made again whole
        entry["creating"] = True
        state.save()
        _create(dst, name, d, schema, partitions, indexes, kw)
        entry["created"] = True
        state.save()
    _aliases(dst, name, d.get("aliases") or [], kw)
    total = int(src.query(name, filter="", output_fields=["count(*)"], **kw)[0]["count(*)"])
    copied = _rows(src, dst, name, schema, partitions, entry, state, kw, batch, quiet, total, earlier)
    return {"total": total, "copied": copied}


def _create(dst: Any, name: str, d: dict[str, Any], schema: CollectionSchema, partitions: list[str],
            indexes: list[dict[str, Any]], kw: dict[str, Any]) -> None:
    extra: dict[str, Any] = {}
    if d.get("properties"):
        extra["properties"] = dict(d["properties"])
    if d.get("consistency_level") is not None:
        extra["consistency_level"] = d["consistency_level"]
    if partitions == [""] and d.get("num_partitions"):
        extra["num_partitions"] = int(d["num_partitions"])
    dst.create_collection(name, schema=schema, **extra, **kw)
    for p in partitions:
        if p and not dst.has_partition(name, p, **kw):
            dst.create_partition(name, p, **kw)
    if indexes:
        for index in dst.list_indexes(name, **kw):
            dst.drop_index(name, index, **kw)
        params = dst.prepare_index_params()
        for i in indexes:
            rest = {k: v for k, v in i.items() if k not in _INDEX_KEYS}
            params.add_index(i["field_name"], i.get("index_type", ""), i.get("index_name", ""),
                             i.get("metric_type", ""), params=rest)
        dst.create_index(name, params, **kw)


def _aliases(dst: Any, name: str, aliases: list[str], kw: dict[str, Any]) -> None:
    have = set(dst.list_aliases(name, **kw).get("aliases") or [])
    for a in aliases:
        if a not in have:
            dst.create_alias(name, a, **kw)


def _rows(src: Any, dst: Any, name: str, schema: CollectionSchema, partitions: list[str], entry: dict[str, Any],
          state: CopyState, kw: dict[str, Any], batch: int, quiet: bool, total: int, earlier: bool) -> int:
    pk = schema.primary_field
    if pk is None:
        raise HeronError(f"collection {name!r} has no primary key")
    drop = {f.name for f in schema.fields if f.is_function_output}
    if pk.auto_id:
        drop.add(pk.name)
    done = entry.setdefault("partitions", {})
    progress = _Quiet() if quiet else bar(total, name)
    progress.update(sum(int(p.get("rows", 0)) for p in done.values()))
    copied = 0
    try:
        for p in partitions:
            mark = done.setdefault(p, {"rows": 0})
            resumed = earlier
            for page in _pages(src, name, p, pk.name, pk.dtype, mark.get("last"), batch, kw):
                last = page[-1][pk.name]
                rows = [{k: v for k, v in r.items() if k not in drop} for r in page] if drop else page
                target = {"partition_name": p} if p else {}
                if resumed and not pk.auto_id:  # the page after the last recorded may be in already
                    dst.upsert(name, rows, **target, **kw)
                else:
                    dst.insert(name, rows, **target, **kw)
                resumed = False
                mark["last"] = last.item() if isinstance(last, np.generic) else last
                mark["rows"] = int(mark["rows"]) + len(page)
                state.save()
                copied += len(page)
                progress.update(len(page))
    finally:
        progress.close()
    entry["rows_done"] = True
    state.save()
    return copied


def _pages(src: Any, name: str, partition: str, pk: str, dtype: DataType, after: Any, batch: int,
           kw: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    expr = "" if after is None else f"{pk} > {_literal(after, dtype)}"
    it = src.query_iterator(name, batch_size=batch, filter=expr, output_fields=["*"],
                            partition_names=[partition] if partition else None, **kw)
    try:
        for page in it:
            if page:
                yield [dict(r) for r in page]
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _literal(value: Any, dtype: DataType) -> str:
    if dtype is DataType.VARCHAR:
        return json.dumps(str(value), ensure_ascii=False)
    return str(int(value))


# -- verification -----------------------------------------------------------------------------------------


def verify(src: Any, dst: Any, name: str, kw: dict[str, Any], sample: int, dst_name: str = "") -> str:
    """Load ``name`` (``dst_name`` there) on ``dst`` and compare it with ``src``'s ``name``; what was
    checked, or `HeronError` at the first difference."""
    theirs = dst_name or name
    dst.load_collection(theirs, **kw)
    schema = CollectionSchema.from_dict(src.describe_collection(name, **kw))
    keyed = any(f.is_partition_key for f in schema.fields)
    partitions = [""] if keyed else list(src.list_partitions(name, **kw))
    for p in partitions:
        a, b = _count(src, name, p, kw), _count(dst, theirs, p, kw)
        if a != b:
            where = f"partition {p!r}" if p else "the collection"
            raise HeronError(f"collection {name!r}: {where} has {a} rows on the source but {b} on the destination")
    pk = schema.primary_field
    assert pk is not None
    if pk.auto_id or sample == 0:
        return f"{len(partitions)} partition count(s) equal" + (" (auto_id keys differ: no rows compared)"
                                                                 if pk.auto_id else "")
    ids = _sample_ids(src, name, pk.name, sample, kw)
    skip = {f.name for f in schema.fields if f.is_function_output}
    want = {r[pk.name]: r for r in src.get(name, ids=ids, output_fields=["*"], **kw)} if ids else {}
    got = {r[pk.name]: r for r in dst.get(theirs, ids=ids, output_fields=["*"], **kw)} if ids else {}
    types = {f.name: f.dtype for f in schema.fields}
    for key, row in want.items():
        other = got.get(key)
        if other is None:
            raise HeronError(f"collection {name!r}: row {key!r} is missing on the destination")
        for field in set(row) | set(other):
            if field in skip:
                continue
            if _canon(row.get(field), types.get(field)) != _canon(other.get(field), types.get(field)):
                raise HeronError(f"collection {name!r}: row {key!r}, field {field!r}: {row.get(field)!r} on the "
                                 f"source, {other.get(field)!r} on the destination")
    return f"{len(partitions)} partition count(s) equal, {len(want)} sampled rows equal"


def _count(client: Any, name: str, partition: str, kw: dict[str, Any]) -> int:
    parts = {"partition_names": [partition]} if partition else {}
    res = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong", **parts, **kw)
    return int(res[0]["count(*)"])


def _sample_ids(src: Any, name: str, pk: str, k: int, kw: dict[str, Any]) -> list[Any]:
    """Up to ``k`` primary keys picked at random among all (read page by page: only keys are held)."""
    keys: list[Any] = []
    it = src.query_iterator(name, batch_size=16384, filter="", output_fields=[pk], **kw)
    for page in it:
        keys.extend(r[pk] for r in page)
    if hasattr(it, "close"):
        it.close()
    return random.sample(keys, min(k, len(keys)))


def _canon(v: Any, dtype: DataType | None) -> Any:
    """``v`` in one form whichever side answered: float32 values, plain lists and dicts, bytes."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if dtype in _FLOATS:
        return np.asarray(v, dtype=np.float32).tolist()
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return {int(i): float(np.float32(x)) for i, x in dict(v).items()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [_canon(x, None) for x in v]
    if isinstance(v, dict):
        return {k: _canon(x, None) for k, x in v.items()}
    return v

