"""Heron in one page: create a collection, insert, search, filter, query.

    python examples/quickstart.py [DATA_DIR]

Runs embedded: the data lives in DATA_DIR (default ./quickstart.db) and
survives restarts. Point ``uri`` at ``http://host:port`` to use a server.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np

import heron


def main(path: str = "./quickstart.db") -> None:
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(0)
    colors = ["red", "green", "blue"]
    with heron.Client(path) as client:
        schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=8)
        schema.add_field("color", heron.DataType.VARCHAR, max_length=16)
        schema.add_field("price", heron.DataType.DOUBLE)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
        client.create_collection("products", schema=schema, index_params=index)

        rows = [
            {
                "id": i,
                "vector": rng.random(8).tolist(),
                "color": colors[i % 3],
                "price": round(float(rng.uniform(1, 100)), 2),
                "tags": ["sale"] if i % 5 == 0 else [],
            }
            for i in range(1000)
        ]
        print("insert:", client.insert("products", rows)["insert_count"], "rows")

        query = rng.random(8).tolist()
        hits = client.search("products", data=[query], limit=3, output_fields=["color", "price"])
        print("nearest 3:")
        for hit in hits[0]:
            print(f"  id={hit['id']:<4} distance={hit['distance']:.4f} {hit['entity']}")

        hits = client.search(
            "products", data=[query], limit=3, filter='color == "red" and price < 50', output_fields=["color", "price"]
        )
        print("nearest 3 red under 50:", [(h["id"], h["entity"]["price"]) for h in hits[0]])

        n = client.query("products", filter='color in ["red", "blue"]', output_fields=["count(*)"])
        print("red or blue:", n[0]["count(*)"])
        rows = client.query("products", filter='json_contains(tags, "sale") and price > 90', output_fields=["price"])
        print("on sale above 90:", rows)
        print("get id 7:", client.get("products", ids=[7], output_fields=["color", "price"]))


if __name__ == "__main__":
    main(*sys.argv[1:2])
