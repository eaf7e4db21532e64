"""A broad embedded workload of dense vectors, run in its own process by test_no_pandas.py.

Prints whether scipy.sparse was loaded, and where pandas was first imported if it was: memory
(~20 and ~50 MiB) that a dense workload never needs.
"""

from __future__ import annotations

import sys
import traceback


class _Watch:
    site: str | None = None

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" and _Watch.site is None:
            _Watch.site = "".join(traceback.format_stack(limit=14))
        return None


sys.meta_path.insert(0, _Watch())

import numpy as np  # noqa: E402

import heron  # noqa: E402
from heron import DataType  # noqa: E402


def workload(path: str) -> None:
    rng = np.random.default_rng(0)
    c = heron.Client(path)
    s = c.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("bvec", DataType.BINARY_VECTOR, dim=16)
    s.add_field("n", DataType.INT64)
    s.add_field("f", DataType.FLOAT, nullable=True)
    s.add_field("ok", DataType.BOOL)
    s.add_field("tag", DataType.VARCHAR, max_length=16, nullable=True)
    s.add_field("meta", DataType.JSON)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    ip = c.prepare_index_params()
    ip.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 8, "efConstruction": 40})
    ip.add_index(field_name="bvec", index_type="BIN_FLAT", metric_type="HAMMING")
    c.create_collection("w", schema=s, index_params=ip)
    for start in range(0, 3000, 500):
        ids = range(start, start + 500)
        c.insert("w", [
            {"id": i, "vector": rng.normal(size=8).astype(np.float32), "bvec": bytes([i % 256, 7]), "n": i % 50,
             "f": None if i % 7 == 0 else i / 3, "ok": i % 2 == 0, "tag": None if i % 11 == 0 else f"t{i % 20}",
             "meta": {"g": i % 10, "s": f"m{i % 5}"}, "arr": [i % 3, i % 5], "extra": i % 4}
            for i in ids
        ])
    cols = {"id": np.arange(3000, 3500), "vector": rng.normal(size=(500, 8)).astype(np.float32),
            "bvec": [bytes([i % 256, 1]) for i in range(500)], "n": np.arange(500) % 50,
            "f": np.arange(500, dtype=np.float32), "ok": np.arange(500) % 3 == 0,
            "tag": [f"c{i % 9}" for i in range(500)], "meta": [{"g": i % 10} for i in range(500)],
            "arr": [[i % 2] for i in range(500)], "extra": list(range(500))}
    c.insert("w", cols)
    c.upsert("w", [{"id": 5, "vector": np.ones(8, np.float32), "bvec": b"\x01\x02", "n": 1, "f": 1.0, "ok": True,
                    "tag": "t5", "meta": {"g": 1}, "arr": [1]}])
    c.flush("w")
    q = rng.normal(size=(2, 8)).astype(np.float32)
    filters = ['n < 5', 'n in [1, 2, 3]', 'tag == "t3"', 'tag in ["t1", "c2"]', 'tag like "t1%"', 'meta["g"] == 3',
               'meta["s"] in ["m1", "m2"]', 'f > 10.5', 'f is null', 'ok == true', 'array_contains(arr, 2)',
               'extra == 2', 'n > {x} and tag != "t4"', 'not (n == 3) or meta["g"] < 2']
    for flt in filters:
        for _ in range(3):
            c.search("w", data=q, anns_field="vector", limit=5, filter=flt, filter_params={"x": 10},
                     output_fields=["n", "f", "tag", "meta", "arr", "extra", "ok"])
        c.query("w", filter=flt, filter_params={"x": 10}, output_fields=["count(*)"])
        c.query("w", filter=flt, filter_params={"x": 10}, output_fields=["*"], limit=20)
    c.search("w", data=[bytes([1, 2])], anns_field="bvec", limit=3, output_fields=["tag"])
    c.search("w", data=q[:1], anns_field="vector", limit=5, group_by_field="n", output_fields=["n"])
    c.search("w", data=q[:1], anns_field="vector", limit=5, search_params={"params": {"radius": -1.0, "range_filter": 1.0}})
    c.get("w", ids=list(range(0, 3500, 7)), output_fields=["*"])
    c.delete("w", ids=[1, 2, 3])
    c.delete("w", filter='tag == "t6"')
    c.query("w", filter="id < 100", output_fields=["tag", "meta"])
    it = c.query_iterator("w", batch_size=500, filter="n < 40", output_fields=["tag"])
    while it.next():
        pass
    it.close()
    c.compact("w")
    c.close()
    c = heron.Client(path)  # reopen: the log and the segment files are read back
    c.load_collection("w")
    c.search("w", data=q, anns_field="vector", limit=5, filter='tag == "t3"', output_fields=["tag", "meta"])
    c.get("w", ids=[5, 10, 3100], output_fields=["*"])
    c.query("w", filter='meta["g"] == 3', output_fields=["count(*)"])
    c.close()


if __name__ == "__main__":
    workload(sys.argv[1])
    print("scipy.sparse loaded" if "scipy.sparse" in sys.modules else "no scipy.sparse")
    print("PANDAS SITE:\n" + _Watch.site if _Watch.site else "NO PANDAS")
