"""Export and bulk import speed per file format, against pyarrow's own Parquet write/read and Heron's insert.

Run: ``python -m bench.bulk_bench [--rows N] [--dim D] [--quick]``

One collection (INT64 ``id``, FLOAT_VECTOR ``vector``, VARCHAR ``tag``,
INT64 ``bucket``, DOUBLE ``score``) is filled from numpy columns in calls of
10,000 rows (timed: Heron's numpy-columns insert rate). It is then exported
in each format (`heron._cli._export.export`, rows/s) and each export is
imported into a fresh collection by the import job ``heron import`` runs
(`heron.engine._import`, resumable: committed and recorded chunk by chunk;
rows/s from submitting the job to its completion, flush included); the
Parquet export also by the all-or-nothing job of ``do_bulk_insert``. For
scale, pyarrow's own ``write_table`` / ``read_table`` of the same rows as one
Parquet file are timed too. Every import is checked to hold every row.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import heron
from heron import _requests as rq
from heron._cli._export import export

FORMATS = ("parquet", "json", "numpy", "csv")


def schema(dim: int) -> Any:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("tag", heron.DataType.VARCHAR, max_length=16)
    s.add_field("bucket", heron.DataType.INT64)
    s.add_field("score", heron.DataType.DOUBLE)
    return s


def columns(n: int, dim: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {"id": np.arange(n, dtype=np.int64), "vector": rng.standard_normal((n, dim), dtype=np.float32),
            "tag": np.array([f"t{i % 100:03d}" for i in range(n)], dtype=object),
            "bucket": rng.integers(0, 100, n, dtype=np.int64), "score": rng.random(n)}


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _import(client: Any, files: list[str], resumable: bool = True) -> None:
    options = {"resume": "1"} if resumable else {}
    job = client._call(rq.ImportFiles("default", "c", tuple(files), "", options), None)
    while True:
        state = client._call(rq.GetImportProgress(job), None)
        if state["state_name"] == "Completed":
            return
        if state["state_name"] == "Failed":
            raise RuntimeError(state["reason"])
        time.sleep(0.01)


def run(n: int, dim: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Rows/s of each step; a dict of figures (see the module docstring)."""
    root = tempfile.mkdtemp(prefix="heron-bulk-bench-")
    try:
        cols = columns(n, dim)
        out: dict[str, Any] = {"rows": n, "dim": dim, "export": {}, "import": {}}
        with heron.Client(os.path.join(root, "src")) as c:
            c.create_collection("c", schema=schema(dim))

            def insert() -> None:
                for lo in range(0, n, 10_000):
                    c.insert("c", {k: v[lo:lo + 10_000] for k, v in cols.items()})
                c.flush("c")

            out["insert"] = n / _timed(insert)
            log(f"numpy-columns insert: {out['insert']:,.0f} rows/s")
            for fmt in FORMATS:
                d = os.path.join(root, fmt)
                out["export"][fmt] = n / _timed(lambda d=d, fmt=fmt: export(c, "c", d, fmt, quiet=True))
                log(f"export {fmt}: {out['export'][fmt]:,.0f} rows/s")
        table = pa.table({**{k: v for k, v in cols.items() if k != "vector"},
                          "vector": pa.FixedSizeListArray.from_arrays(pa.array(cols["vector"].reshape(-1)), dim)})
        path = os.path.join(root, "plain.parquet")
        out["pyarrow_write"] = n / _timed(lambda: pq.write_table(table, path))
        out["pyarrow_read"] = n / _timed(lambda: pq.read_table(path))
        log(f"pyarrow write_table: {out['pyarrow_write']:,.0f} rows/s, read_table: {out['pyarrow_read']:,.0f} rows/s")
        for fmt in FORMATS:
            name = {"numpy": "_default"}.get(fmt, f"_default.{fmt}")
            with heron.Client(os.path.join(root, f"dst-{fmt}")) as c:
                c.create_collection("c", schema=schema(dim))
                out["import"][fmt] = n / _timed(lambda c=c, fmt=fmt, name=name: _import(c, [os.path.join(root, fmt, name)]))
                got = c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]
                assert got == n, (fmt, got)
            log(f"import {fmt}: {out['import'][fmt]:,.0f} rows/s ({out['import'][fmt] / out['insert']:.2f}x insert)")
        with heron.Client(os.path.join(root, "dst-bulk-insert")) as c:
            c.create_collection("c", schema=schema(dim))
            parquet = os.path.join(root, "parquet", "_default.parquet")
            out["bulk_insert_parquet"] = n / _timed(lambda: _import(c, [parquet], resumable=False))
            assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == n
        log(f"do_bulk_insert job (all or nothing) of the Parquet file: {out['bulk_insert_parquet']:,.0f} rows/s")
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def table(res: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    lines = [f"Rows: {res['rows']:,} x {res['dim']} dims; machine: {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, pyarrow {pa.__version__}.", "",
             "| format | export (rows/s) | import (rows/s) | import vs numpy-columns insert |", "|---|---:|---:|---:|"]
    for fmt in FORMATS:
        lines.append(f"| {fmt} | {res['export'][fmt]:,.0f} | {res['import'][fmt]:,.0f} | "
                     f"{res['import'][fmt] / res['insert']:.2f}x |")
    lines += ["", f"Heron numpy-columns insert: {res['insert']:,.0f} rows/s; pyarrow write_table "
              f"{res['pyarrow_write']:,.0f} rows/s, read_table {res['pyarrow_read']:,.0f} rows/s; the all-or-nothing "
              f"job of do_bulk_insert, Parquet: {res['bulk_insert_parquet']:,.0f} rows/s "
              f"({res['bulk_insert_parquet'] / res['insert']:.2f}x)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="20,000 rows")
    args = ap.parse_args(argv)
    print(table(run(20_000 if args.quick else args.rows, args.dim)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
