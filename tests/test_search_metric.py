"""The metric a search iterator continues by: the search's own, else its field's index's, else its field type's."""

from __future__ import annotations

import numpy as np
import pytest

from heron import CollectionSchema, DataType
from heron import _requests as rq
from heron._types import larger_is_better
from heron.client._base import search_field, search_metric


def _schema() -> CollectionSchema:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("bits", DataType.BINARY_VECTOR, dim=8)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    return s


def _search(anns_field: str = "", metric: str = "") -> rq.Search:
    return rq.Search("default", "c", np.zeros((1, 2), np.float32), anns_field, "", 10, 0, None, metric)


def test_search_field_is_the_anns_field_else_the_first_vector_field():
    assert search_field(_search("sparse"), _schema()) == "sparse"
    assert search_field(_search(), _schema()) == "dense"


def test_the_search_metric_wins_then_the_index_then_the_field_type():
    schema = _schema()
    assert search_metric(_search("dense", "IP"), schema, {"metric_type": "L2"}) == "IP"
    assert search_metric(_search("dense"), schema, {"metric_type": "L2"}) == "L2"
    assert search_metric(_search("dense"), schema, None) == "COSINE"
    assert search_metric(_search("bits"), schema, None) == "HAMMING"
    assert search_metric(_search("sparse"), schema, None) == "IP"


@pytest.mark.parametrize(("metric", "larger"), [("IP", True), ("COSINE", True), ("BM25", True), ("cosine", True),
                                                ("L2", False), ("HAMMING", False), ("JACCARD", False), ("", False)])
def test_similarities_grow_and_distances_shrink(metric, larger):
    assert larger_is_better(metric) is larger
