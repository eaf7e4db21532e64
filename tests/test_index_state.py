"""describe_index reports an index build honestly: InProgress, with the rows still to index, until it is done."""

from __future__ import annotations

import threading
import time

import numpy as np

import heron
from heron.engine import _maintenance


def _describe_until(client: heron.Client, pred, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        d = client.describe_index("c", "vec")
        if pred(d) or time.monotonic() > end:
            return d
        time.sleep(0.01)


def test_describe_index_is_in_progress_until_sealed_rows_are_indexed(tmp_path, monkeypatch):
    release = threading.Event()
    real_build = _maintenance.build_index

    def held_build(*args, **kwargs):
        release.wait(60)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(_maintenance, "build_index", held_build)
    rng = np.random.default_rng(3)
    with heron.Client(str(tmp_path / "db")) as client:
        schema = client.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=8)
        idx = client.prepare_index_params()
        idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
        client.create_collection("c", schema=schema, index_params=idx)
        client.insert("c", [{"id": i, "vec": rng.random(8).tolist()} for i in range(500)])
        growing = client.describe_index("c", "vec")
        # Growing rows are searched exactly from the moment they are written: indexed, as Milvus Lite counts them.
        assert (growing["total_rows"], growing["indexed_rows"], growing["state"]) == (500, 500, "Finished")

        flusher = threading.Thread(target=client.flush, args=("c",))
        flusher.start()
        try:
            building = _describe_until(client, lambda d: d["state"] != "Finished")
            assert building["state"] == "InProgress"
            assert (building["indexed_rows"], building["pending_index_rows"]) == (0, 500)
            hits = client.search("c", data=[rng.random(8).tolist()], limit=3)[0]
            assert len(hits) == 3  # searchable, exactly, while the build runs
        finally:
            release.set()
            flusher.join(60)
        done = _describe_until(client, lambda d: d["state"] == "Finished")
        assert (done["total_rows"], done["indexed_rows"], done["pending_index_rows"]) == (500, 500, 0)
        assert done["state"] == "Finished"
