"""pymilvus's rankers against ``heron serve``, side by side with Milvus Lite.

The same pymilvus program (``Function`` and ``FunctionScore`` rankers in
``search`` and ``hybrid_search``) runs against a ``milvus-lite server`` and
against ``heron serve`` on the same rows; ids, order and scores must agree.
Where they differ on purpose the case says why:

- boost on L2 and COSINE: Milvus multiplies (or adds to) the metric's own
  score, as its rescorer does (``distances_ *= boost``); Milvus Lite applies
  the weight to its internal distance (twice for L2, inverted for COSINE).
  Heron follows Milvus; `tests/engine/test_rerank_functions.py` checks those
  against the formulas.
- linear decay beyond ``offset + scale``: Milvus's factor never falls below
  ``decay`` (``max(decay, 1 - slope x d)``, its decay_function.go); Milvus
  Lite's falls to 0. The linear case here stays within reach of the floor.
- error codes: Milvus Lite answers bad rankers with code 1 or 6; Heron gives
  65535 and Milvus's message, as the Milvus server does (its proxy passes the
  rerank function's error through; Milvus's own client tests expect 65535).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import launch_server, require_module
from tests.server.test_milvus_lite_interop import start_milvus_lite

pm = require_module("pymilvus")
require_module("milvus_lite")
DataType, Function, FunctionScore, FunctionType = pm.DataType, pm.Function, pm.FunctionScore, pm.FunctionType

DIM = 6


def _rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [{"id": i, "v": rng.standard_normal(DIM).tolist(), "w": rng.random(DIM).tolist(),
             "t": int(rng.integers(0, 100)), "price": float(rng.random() * 50), "kind": "abc"[i % 3]}
            for i in range(150)]


def _prepare(c: Any) -> None:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("w", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("t", DataType.INT64)
    s.add_field("price", DataType.DOUBLE)
    s.add_field("kind", DataType.VARCHAR, max_length=8)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="IP")
    ip.add_index("w", index_type="FLAT", metric_type="L2")
    c.create_collection("r", schema=s, index_params=ip)
    c.insert("r", _rows())


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Any, Any]]:
    """(pymilvus on heron serve, pymilvus on milvus-lite server), each with collection ``r``."""
    dirs = [tempfile.mkdtemp(), tempfile.mkdtemp()]
    heron_srv = launch_server(dirs[0])
    lite_srv = start_milvus_lite(dirs[1])
    try:
        clients = (pm.MilvusClient(heron_srv.uri), pm.MilvusClient(lite_srv.uri))
        for c in clients:
            _prepare(c)
        yield clients
        for c in clients:
            c.close()
    finally:
        heron_srv.stop()
        lite_srv.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _q(seed: int) -> list[float]:
    return np.random.default_rng(seed).standard_normal(DIM).tolist()


def _decay(curve: str, field: str = "t", **p: Any) -> Any:
    return Function("d", FunctionType.RERANK, input_field_names=[field],
                    params={"reranker": "decay", "function": curve, **p})


def _boost(weight: float, flt: str = "") -> Any:
    params: dict[str, Any] = {"reranker": "boost", "weight": weight}
    if flt:
        params["filter"] = flt
    return Function("b", FunctionType.RERANK, input_field_names=[], params=params)


SEARCHES = {
    "gauss on IP": dict(anns_field="v", limit=6, ranker=_decay("gauss", origin=50, scale=20, offset=3, decay=0.4)),
    "exp on L2 with offset": dict(anns_field="w", limit=5, offset=4, ranker=_decay("exp", origin=30, scale=15)),
    "linear within scale": dict(anns_field="v", limit=5, ranker=_decay("linear", "price", origin=25, scale=40)),
    "gauss, two queries": dict(anns_field="v", limit=4, ranker=_decay("gauss", origin=10, scale=30), nq=2),
    "boost with a filter on IP": dict(anns_field="v", limit=6, ranker=_boost(3.0, "kind == 'b'")),
    "boosts summed": dict(anns_field="v", limit=6, ranker=FunctionScore(
        [_boost(2.0, "kind == 'a'"), _boost(0.5, "t > 60")], params={"boost_mode": "Sum", "function_mode": "Sum"})),
    "boosts multiplied": dict(anns_field="v", limit=6, ranker=FunctionScore(
        [_boost(2.0, "kind == 'a'"), _boost(0.5, "t > 60")], params={"boost_mode": "Multiply"})),
    "a boost, then a decay": dict(anns_field="v", limit=5, ranker=FunctionScore(
        [_boost(3.0, "kind == 'c'"), _decay("gauss", origin=50, scale=30)])),
    "decay with group_by": dict(anns_field="v", limit=2, ranker=_decay("exp", origin=0, scale=50),
                                group_by_field="kind", group_size=2, output_fields=["kind", "t"]),
    "decay with output fields": dict(anns_field="v", limit=5, ranker=_decay("gauss", origin=80, scale=10),
                                     output_fields=["t", "kind"]),
}


def _shape(res: Any, fields: list[str] | None = None) -> list[list[tuple[Any, float, dict[str, Any]]]]:
    """Ids, scores and the requested fields (Milvus Lite's boost path also returns fields nobody asked for)."""
    return [[(h["id"], round(float(h["distance"]), 4), {k: (h.get("entity") or {})[k] for k in fields or []})
             for h in hits] for hits in res]


@pytest.mark.parametrize("case", sorted(SEARCHES))
def test_search_rankers_answer_as_milvus_lite(pair, case: str) -> None:
    kw = dict(SEARCHES[case])
    nq = kw.pop("nq", 1)
    data = [_q(i) for i in range(nq)] if kw["anns_field"] == "v" else [np.abs(_q(i)).tolist() for i in range(nq)]
    got, lite = (_shape(c.search("r", data, **kw), kw.get("output_fields")) for c in pair)
    assert got == lite
    assert all(len(h) for h in got)


@pytest.mark.parametrize("curve", ["gauss", "exp"])
def test_hybrid_decay_answers_as_milvus_lite(pair, curve: str) -> None:
    reqs = [pm.AnnSearchRequest([_q(5)], "v", {}, 12), pm.AnnSearchRequest([np.abs(_q(6)).tolist()], "w", {}, 12)]
    ranker = _decay(curve, origin=40, scale=25, offset=2)
    got, lite = (_shape(c.hybrid_search("r", reqs, ranker=ranker, limit=5, output_fields=["t"]), ["t"]) for c in pair)
    assert got == lite


@pytest.mark.parametrize("ranker", ["decay", "rrf", "weighted"])
def test_hybrid_group_by_answers_as_milvus_lite(pair, ranker: str) -> None:
    reqs = [pm.AnnSearchRequest([_q(9)], "v", {}, 10), pm.AnnSearchRequest([np.abs(_q(10)).tolist()], "w", {}, 10)]
    rk = {"decay": _decay("exp", origin=20, scale=40), "rrf": pm.RRFRanker(30),
          "weighted": pm.WeightedRanker(0.6, 0.4, norm_score=True)}[ranker]
    got, lite = (_shape(c.hybrid_search("r", reqs, ranker=rk, limit=2, group_by_field="kind", group_size=3,
                                        output_fields=["kind"]), ["kind"]) for c in pair)
    assert got == lite
    assert len(got[0]) == 6 and len({h[2]["kind"] for h in got[0]}) == 2


FUSIONS = {
    "rrf function": lambda: Function("f", FunctionType.RERANK, input_field_names=[], params={"reranker": "rrf", "k": 20}),
    "weighted function, raw scores": lambda: Function("f", FunctionType.RERANK, input_field_names=[],
                                                      params={"reranker": "weighted", "weights": [0.2, 0.8]}),
    "weighted function, normalised": lambda: Function(
        "f", FunctionType.RERANK, input_field_names=[],
        params={"reranker": "weighted", "weights": [0.2, 0.8], "norm_score": True}),
    "RRFRanker": lambda: pm.RRFRanker(20),
    "WeightedRanker without norm_score": lambda: pm.WeightedRanker(0.2, 0.8, norm_score=False),
}


@pytest.mark.parametrize("case", sorted(FUSIONS))
def test_hybrid_fusion_answers_as_milvus_lite(pair, case: str) -> None:
    """IP and L2 mixed: raw weighted scores take distances as ``1 - 2·atan(d)/π``; equal scores order by key."""
    reqs = [pm.AnnSearchRequest([_q(7)], "v", {}, 10), pm.AnnSearchRequest([np.abs(_q(8)).tolist()], "w", {}, 10)]
    got, lite = (_shape(c.hybrid_search("r", reqs, ranker=FUSIONS[case](), limit=6)) for c in pair)
    assert got == lite


@pytest.mark.parametrize("params", [{"reranker": "rrf", "k": 20}, {"reranker": "weighted", "weights": [0.2, 0.8]}])
def test_hybrid_fusion_functions_answer_as_the_classic_rankers(pair, params: dict[str, Any]) -> None:
    heron_client = pair[0]
    reqs = [pm.AnnSearchRequest([_q(7)], "v", {}, 10), pm.AnnSearchRequest([np.abs(_q(8)).tolist()], "w", {}, 10)]
    fn = Function("f", FunctionType.RERANK, input_field_names=[], params=params)
    classic = pm.RRFRanker(20) if params["reranker"] == "rrf" else pm.WeightedRanker(0.2, 0.8, norm_score=False)
    assert _shape(heron_client.hybrid_search("r", reqs, ranker=fn, limit=6)) == \
        _shape(heron_client.hybrid_search("r", reqs, ranker=classic, limit=6))


BAD = {
    "decay without scale": _decay("gauss", origin=1),
    "decay with an unknown curve": _decay("cubic", origin=1, scale=2),
    "decay with scale 0": _decay("exp", origin=1, scale=0),
    "decay on a string field": _decay("exp", "kind", origin=1, scale=2),
    "an unknown reranker": Function("x", FunctionType.RERANK, input_field_names=[], params={"reranker": "magic"}),
    "an unknown mode": FunctionScore([_boost(2.0)], params={"boost_mode": "Max"}),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rankers_are_refused_by_both(pair, case: str) -> None:
    codes = []
    for c in pair:
        with pytest.raises(pm.MilvusException) as err:
            c.search("r", [_q(1)], anns_field="v", limit=3, ranker=BAD[case])
        codes.append(err.value.code)
    assert codes[0] == 65535
    assert codes[1] != 0



# -- the wire, without a server -------------------------------------------------------------------------------------


def test_function_score_round_trips_as_pymilvus_writes_it() -> None:
    from pymilvus.client.prepare import Prepare

    from heron.wire._rerank import function_score_from_pb, function_score_to_pb

    score = FunctionScore([_boost(2.5, "kind == 'a'"), _decay("gauss", origin=1.5, scale=3, decay=0.25),
                           Function("r", FunctionType.RERANK, input_field_names=[],
                                    params={"reranker": "boost", "weight": 1, "random_score": {"seed": 7}})],
                          params={"boost_mode": "Sum", "function_mode": "Multiply"})
    sent = Prepare.function_score_schema(score)
    holder = pm.grpc_gen.milvus_pb2.SearchRequest(function_score=sent)
    ours = function_score_from_pb(holder)
    assert ours is not None
    assert ours["params"] == {"boost_mode": "Sum", "function_mode": "Multiply"}
    assert ours["functions"][1]["params"] == {"reranker": "decay", "function": "gauss", "origin": 1.5, "scale": 3,
                                              "decay": 0.25}
    assert ours["functions"][2]["params"]["random_score"] == {"seed": 7}
    assert function_score_to_pb(ours) == sent
    assert function_score_from_pb(pm.grpc_gen.milvus_pb2.SearchRequest()) is None


def test_hybrid_request_round_trips_ranker_and_grouping() -> None:
    import heron
    from heron import _requests as rq
    from heron.wire._query import hybrid_from_pb, hybrid_to_pb

    sub = rq.Search("db", "r", np.ones((1, DIM), dtype=np.float32), "v", limit=4)
    ranker = {"functions": [{"name": "d", "type": 3, "input_field_names": ["t"], "output_field_names": [],
                             "params": {"reranker": "decay", "function": "exp", "origin": 2, "scale": 5}}],
              "params": {}}
    r = rq.HybridSearch("db", "r", (sub,), ranker, limit=3, offset=1, group_by_field="kind", group_size=2,
                        strict_group_size=True)
    back = hybrid_from_pb(hybrid_to_pb(r), "db")
    assert (back.ranker, back.limit, back.offset) == (ranker, 3, 1)
    assert (back.group_by_field, back.group_size, back.strict_group_size) == ("kind", 2, True)
    classic = hybrid_from_pb(hybrid_to_pb(rq.HybridSearch("db", "r", (sub,), heron.RRFRanker(9).dict())), "db")
    assert classic.ranker == {"strategy": "rrf", "params": {"k": 9}}


def test_a_hybrid_request_with_two_rankers_is_refused() -> None:
    import heron
    from heron import _requests as rq
    from heron.wire._query import hybrid_from_pb, hybrid_to_pb
    from heron.wire._rerank import function_score_to_pb

    sub = rq.Search("db", "r", np.ones((1, DIM), dtype=np.float32), "v", limit=4)
    msg = hybrid_to_pb(rq.HybridSearch("db", "r", (sub,), heron.RRFRanker(9).dict()))
    msg.function_score.CopyFrom(function_score_to_pb({"functions": [
        {"name": "d", "input_field_names": ["t"], "params": {"reranker": "decay", "function": "exp", "origin": 1,
                                                             "scale": 2}}]}))
    with pytest.raises(heron.ParamError, match="both rank_params strategy 'rrf' and a function_score") as err:
        hybrid_from_pb(msg, "db")
    assert err.value.code == 65535


def test_function_chains_are_refused_over_the_wire(pair) -> None:
    from pymilvus.function_chain import FunctionChain, FunctionChainStage

    chain = FunctionChain(FunctionChainStage.L2_RERANK).limit(3)
    with pytest.raises(pm.MilvusException, match="function_chains: not supported"):
        pair[0].search("r", [_q(1)], anns_field="v", limit=3, function_chains=chain)
