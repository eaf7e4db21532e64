"""Property: ``heron export`` then ``heron import --create-from`` keeps partitions, indexes and every row in place."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

import heron
from heron._cli import main
from tests.test_cli_copy import described, layouts, make_source, rows_by_partition


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(layouts(), st.sampled_from(["parquet", "json"]))
def test_export_then_import_keeps_partitions_indexes_and_rows_over_random_schemas(case: Any, fmt: str) -> None:
    schema, rows, partitions, where, indexes = case
    with tempfile.TemporaryDirectory() as root:
        src, dst, out = (os.path.join(root, x) for x in ("src", "dst", "out"))
        make_source(src, schema, rows, partitions, where, indexes)
        assert main(["export", src, "c", out, "--format", fmt, "--quiet"]) == 0
        heron.Client(dst).close()
        assert main(["import", dst, "c", out, "--create-from", os.path.join(out, "schema.json"), "--quiet"]) == 0
        want, got = described(src, "c"), described(dst, "c")
        for d in (want, got):  # aliases are names of the database, not of the files: import makes none
            d.pop("aliases")
            d["collection"].pop("aliases")
        assert got == want
        assert rows_by_partition(dst, "c") == rows_by_partition(src, "c")
