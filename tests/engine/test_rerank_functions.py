"""Function rankers in search and hybrid search, against a plain-Python reference of Milvus's formulas.

Each reference takes the candidates Milvus (and Milvus Lite) rerank, the
best ``10 x (limit + offset)`` hits by vector score, from a plain search
through the same client, and applies the documented formulas row by row in
scalar Python; Heron's vectorised answer must agree in ids, order and scores.
The ranker objects are pymilvus's own (``Function``, ``FunctionScore``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import heron
from tests.conftest import require_module

pm = require_module("pymilvus")
Function, FunctionScore, FunctionType = pm.Function, pm.FunctionScore, pm.FunctionType

ROWS = 120
DIM = 6


def _collection(client: Any, metric: str = "IP", name: str = "r", nullable: bool = False) -> list[dict[str, Any]]:
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("w", heron.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("t", heron.DataType.INT64, nullable=nullable)
    s.add_field("price", heron.DataType.DOUBLE)
    s.add_field("kind", heron.DataType.VARCHAR, max_length=8)
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type=metric)
    idx.add_index("w", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=s, index_params=idx)
    rng = np.random.default_rng(7)
    rows = [{"id": i, "v": rng.standard_normal(DIM).tolist(), "w": rng.random(DIM).tolist(),
             "t": None if nullable and i % 9 == 0 else int(rng.integers(0, 1000)),
             "price": float(rng.random() * 100), "kind": "abc"[i % 3]} for i in range(ROWS)]
    client.insert(name, rows[: ROWS // 2])
    client.flush(name)  # two segments: the ranker sees hits from both
    client.insert(name, rows[ROWS // 2:])
    return rows


def _query(seed: int = 1) -> list[float]:
    return np.random.default_rng(seed).standard_normal(DIM).tolist()


def _decay_factor(curve: str, v: float | None, origin: float, scale: float, offset: float, decay: float) -> float:
    if v is None:
        d = math.inf
    else:
        d = max(0.0, abs(v - origin) - offset)
    if curve == "gauss":
        return math.exp(d * d * math.log(decay) / (scale * scale))
    if curve == "exp":
        return math.exp(math.log(decay) / scale * d)
    return max(decay, 1.0 - (1.0 - decay) / scale * d)


def _positive(score: float, metric: str) -> float:
    return score if metric in ("IP", "COSINE", "BM25") else 1.0 - 2.0 * math.atan(score) / math.pi


def _pairs(hits: Any) -> list[tuple[Any, float]]:
    return [(h["id"], h["distance"]) for h in hits]


def _assert_same(got: Any, want: list[tuple[Any, float]]) -> None:
    got_pairs = _pairs(got)
    assert [g[0] for g in got_pairs] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got_pairs], [w[1] for w in want], rtol=1e-5, atol=1e-6)


def _decay(curve: str, field: str = "t", **p: Any) -> Any:
    return Function("d", FunctionType.RERANK, input_field_names=[field], params={"reranker": "decay", "function": curve, **p})


_finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(curve=st.sampled_from(["gauss", "exp", "linear"]), origin=_finite,
       scale=st.floats(1e-3, 1e5), offset=st.floats(0, 1e4), decay=st.floats(0.01, 0.99),
       values=st.lists(_finite, min_size=1, max_size=20))
def test_decay_factors_match_the_scalar_formula(curve, origin, scale, offset, decay, values) -> None:
    from heron.engine._rerank import Decay

    got = Decay("d", "t", curve, origin, scale, offset, decay).factors(np.asarray(values))
    want = [_decay_factor(curve, v, origin, scale, offset, decay) for v in values]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    assert ((got >= 0) & (got <= 1)).all()
    if curve == "linear":
        assert (got >= decay).all()  # Milvus's linear decay never drops below ``decay``


@pytest.mark.parametrize("metric", ["IP", "L2", "COSINE"])
@pytest.mark.parametrize("curve", ["gauss", "exp", "linear"])
def test_decay_matches_milvus_formula(tmp_path, curve: str, metric: str) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        rows = _collection(c, metric)
        limit, offset = 7, 3
        params = {"origin": 500, "scale": 150, "offset": 20, "decay": 0.3}
        got = c.search("r", [_query()], anns_field="v", limit=limit, offset=offset, ranker=_decay(curve, **params),
                       output_fields=["t"])
        cand = c.search("r", [_query()], anns_field="v", limit=max(limit + offset, limit * 10))[0]
        t = {r["id"]: r["t"] for r in rows}
        scored = [(h["id"], _positive(h["distance"], metric) * _decay_factor(curve, t[h["id"]], **params))
                  for h in cand]
        scored.sort(key=lambda x: -x[1])
        _assert_same(got[0], scored[offset: offset + limit])
        assert all(h["entity"]["t"] == t[h["id"]] for h in got[0])


def test_decay_on_a_double_field_with_defaults(tmp_path) -> None:
    """``offset`` defaults to 0 and ``decay`` to 0.5; a DOUBLE field reads like an integer one."""
    with heron.Client(str(tmp_path / "db")) as c:
        rows = _collection(c)
        got = c.search("r", [_query(3)], anns_field="v", limit=5, ranker=_decay("exp", "price", origin=10, scale=25))
        cand = c.search("r", [_query(3)], anns_field="v", limit=50)[0]
        price = {r["id"]: r["price"] for r in rows}
        scored = sorted(((h["id"], h["distance"] * _decay_factor("exp", price[h["id"]], 10, 25, 0, 0.5))
                         for h in cand), key=lambda x: -x[1])
        _assert_same(got[0], scored[:5])


def test_decay_refuses_a_nullable_field(tmp_path) -> None:
    """Milvus refuses a decay over a nullable field ("Function input field cannot be nullable")."""
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c, nullable=True)
        with pytest.raises(heron.ParamError, match="cannot be nullable") as err:
            c.search("r", [_query(4)], anns_field="v", limit=10, ranker=_decay("linear", origin=0, scale=900))
        assert err.value.code == 65535


def test_decay_through_every_client(client) -> None:
    rows = _collection(client, "L2")
    ranker = _decay("gauss", origin=300, scale=100)
    got = client.search("r", [_query(2), _query(5)], anns_field="v", limit=4, ranker=ranker)
    t = {r["id"]: r["t"] for r in rows}
    for qi, q in enumerate([_query(2), _query(5)]):
        cand = client.search("r", [q], anns_field="v", limit=40)[0]
        scored = sorted(((h["id"], _positive(h["distance"], "L2") * _decay_factor("gauss", t[h["id"]], 300, 100, 0, 0.5))
                         for h in cand), key=lambda x: -x[1])
        _assert_same(got[qi], scored[:4])


# -- boost --------------------------------------------------------------------------------------------------------


def _boost(weight: float, flt: str = "", **extra: Any) -> Any:
    params: dict[str, Any] = {"reranker": "boost", "weight": weight, **extra}
    if flt:
        params["filter"] = flt
    return Function("b", FunctionType.RERANK, input_field_names=[], params=params)


def _murmur(key: int, seed: int) -> float:
    """MurmurHash3_x64_64_Special of Milvus's rescorer, in plain Python integers, mapped into [0, 1)."""
    m = (1 << 64) - 1

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (64 - r))) & m

    def fmix(k: int) -> int:
        k ^= k >> 33
        k = (k * 0xFF51AFD7ED558CCD) & m
        k ^= k >> 33
        k = (k * 0xC4CEB9FE1A85EC53) & m
        return k ^ (k >> 33)

    key &= m
    seed &= m
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1, h2 = key ^ seed, seed
    h1 ^= (rotl((key * c1) & m, 31) * c2) & m
    h1 = (rotl(h1, 27) + h2) & m
    h1 = (h1 * 5 + 0x52DCE729) & m
    h2 ^= (rotl((seed * c2) & m, 33) * c1) & m
    h2 = (rotl(h2, 31) + h1) & m
    h2 = (h2 * 5 + 0x38495AB5) & m
    h1 ^= 16
    h2 ^= 16
    h1 = (h1 + h2) & m
    h2 = (h2 + h1) & m
    h1, h2 = fmix(h1), fmix(h2)
    h1 = (h1 + h2) & m
    bits = (0x3FF << 52) | (h1 & 0xFFFFFFFFFFFFF)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0]) - 1.0


def test_murmur_random_matches_the_scalar_hash() -> None:
    from heron.engine._rerank import murmur_random

    keys = np.array([0, 1, -1, 126, 2**62 + 12345, -(2**63)], dtype=np.int64)
    for seed in (0, 126, 2**40 + 7):
        got = murmur_random(keys, seed)
        want = [_murmur(int(k), seed) for k in keys]
        np.testing.assert_array_equal(got, want)
        assert ((got >= 0) & (got < 1)).all()


def _matches(row: dict[str, Any], flt: str) -> bool:
    return {"kind == 'a'": row["kind"] == "a", "t > 500": row["t"] > 500, "": True}[flt]


@pytest.mark.parametrize("function_mode", ["Multiply", "Sum"])
@pytest.mark.parametrize("boost_mode", ["Multiply", "Sum"])
@pytest.mark.parametrize("metric", ["IP", "L2"])
def test_boost_functions_and_modes(tmp_path, metric: str, boost_mode: str, function_mode: str) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        rows = _collection(c, metric)
        by_id = {r["id"]: r for r in rows}
        funcs = [(2.5, "kind == 'a'"), (0.4, "t > 500")]
        ranker = FunctionScore([_boost(w, f) for w, f in funcs],
                               params={"boost_mode": boost_mode, "function_mode": function_mode})
        got = c.search("r", [_query(6)], anns_field="v", limit=8, ranker=ranker)
        cand = c.search("r", [_query(6)], anns_field="v", limit=80)[0]
        scored = []
        for h in cand:
            vals = [w for w, f in funcs if _matches(by_id[h["id"]], f)]
            s = h["distance"]
            if vals:
                comb = math.prod(vals) if function_mode == "Multiply" else sum(vals)
                s = s * comb if boost_mode == "Multiply" else s + comb
            scored.append((h["id"], s))
        scored.sort(key=lambda x: -x[1] if metric == "IP" else x[1])
        _assert_same(got[0], scored[:8])


def test_boost_random_score_uses_the_field_and_seed(tmp_path) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        ranker = _boost(0.7, random_score={"seed": 126, "field": "id"})
        got = c.search("r", [_query(8)], anns_field="v", limit=6, ranker=ranker)
        cand = c.search("r", [_query(8)], anns_field="v", limit=60)[0]
        scored = sorted(((h["id"], h["distance"] * 0.7 * _murmur(h["id"], 126)) for h in cand), key=lambda x: -x[1])
        _assert_same(got[0], scored[:6])
        again = c.search("r", [_query(8)], anns_field="v", limit=6, ranker=ranker)
        assert _pairs(again[0]) == _pairs(got[0])


def test_boost_and_decay_in_one_function_score(tmp_path) -> None:
    """Boosts change the raw scores of 10 x 50 candidates first; the decay then ranks the best 50 of those."""
    with heron.Client(str(tmp_path / "db")) as c:
        rows = _collection(c)
        by_id = {r["id"]: r for r in rows}
        ranker = FunctionScore([_boost(3.0, "kind == 'a'"), _decay("gauss", origin=500, scale=200)])
        got = c.search("r", [_query(9)], anns_field="v", limit=5, ranker=ranker)
        cand = c.search("r", [_query(9)], anns_field="v", limit=500)[0]
        boosted = sorted(((h["id"], h["distance"] * (3.0 if by_id[h["id"]]["kind"] == "a" else 1.0)) for h in cand),
                         key=lambda x: -x[1])[:50]
        scored = sorted(((pk, s * _decay_factor("gauss", by_id[pk]["t"], 500, 200, 0, 0.5)) for pk, s in boosted),
                        key=lambda x: -x[1])
        _assert_same(got[0], scored[:5])


def test_group_by_is_kept_through_the_ranker(client) -> None:
    rows = _collection(client)
    by_id = {r["id"]: r for r in rows}
    ranker = _decay("exp", origin=0, scale=300)
    got = client.search("r", [_query(10)], anns_field="v", limit=2, group_by_field="kind", group_size=3,
                        ranker=ranker, output_fields=["kind"])[0]
    cand = client.search("r", [_query(10)], anns_field="v", limit=20)[0]  # max(2 x 3 x 3, 2 x 10) candidates
    scored = sorted(((h["id"], h["distance"] * _decay_factor("exp", by_id[h["id"]]["t"], 0, 300, 0, 0.5))
                     for h in cand), key=lambda x: -x[1])
    groups: dict[str, list[tuple[Any, float]]] = {}
    for pk, s in scored:
        g = groups.setdefault(by_id[pk]["kind"], [])
        if len(g) < 3:
            g.append((pk, s))
    want = [h for k in list(groups)[:2] for h in groups[k]]
    _assert_same(got, want)
    assert all(h["entity"]["kind"] == by_id[h["id"]]["kind"] for h in got)


# -- hybrid search ------------------------------------------------------------------------------------------------


def test_hybrid_decay_takes_each_keys_best_score(client) -> None:
    rows = _collection(client)
    by_id = {r["id"]: r for r in rows}
    q = _query(11)
    reqs = [heron.AnnSearchRequest([q], "v", {}, 15), heron.AnnSearchRequest([np.abs(q).tolist()], "w", {}, 15)]
    got = client.hybrid_search("r", reqs, ranker=_decay("gauss", origin=400, scale=250, offset=10), limit=6)[0]
    best: dict[Any, float] = {}
    for field, metric, data in (("v", "IP", q), ("w", "L2", np.abs(q).tolist())):
        for h in client.search("r", [data], anns_field=field, limit=15)[0]:
            best[h["id"]] = max(best.get(h["id"], -math.inf), _positive(h["distance"], metric))
    scored = sorted(((pk, s * _decay_factor("gauss", by_id[pk]["t"], 400, 250, 10, 0.5)) for pk, s in best.items()),
                    key=lambda x: -x[1])
    _assert_same(got, scored[:6])


@pytest.mark.parametrize("kind", ["rrf", "weighted"])
def test_hybrid_rrf_and_weighted_functions_equal_the_rankers(tmp_path, kind: str) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        q = _query(12)
        reqs = [heron.AnnSearchRequest([q], "v", {}, 10), heron.AnnSearchRequest([np.abs(q).tolist()], "w", {}, 10)]
        if kind == "rrf":
            fn_params: dict[str, Any] = {"reranker": "rrf", "k": 30}
            classic: Any = heron.RRFRanker(30)
        else:
            fn_params = {"reranker": "weighted", "weights": [0.3, 0.7], "norm_score": True}
            classic = heron.WeightedRanker(0.3, 0.7, norm_score=True)
        fn = Function("f", FunctionType.RERANK, input_field_names=[], params=fn_params)
        _assert_same(c.hybrid_search("r", reqs, ranker=fn, limit=5)[0],
                     _pairs(c.hybrid_search("r", reqs, ranker=classic, limit=5)[0]))


# -- bad rankers --------------------------------------------------------------------------------------------------


def _fn(inputs: list[str], outputs: list[str] | None = None, **params: Any) -> Any:
    f = Function("bad", FunctionType.RERANK, input_field_names=inputs, params=params)
    if outputs:
        f._output_field_names = outputs
    return f


BAD_SEARCH = {
    "decay without scale": (_fn(["t"], reranker="decay", function="gauss", origin=1), "lost param: scale"),
    "decay unknown curve": (_fn(["t"], reranker="decay", function="cubic", origin=1, scale=2), "cubic"),
    "decay scale <= 0": (_fn(["t"], reranker="decay", function="exp", origin=1, scale=0), "scale must > 0"),
    "decay negative offset": (_fn(["t"], reranker="decay", function="exp", origin=1, scale=2, offset=-1), "offset must >= 0"),
    "decay out of (0, 1)": (_fn(["t"], reranker="decay", function="exp", origin=1, scale=2, decay=1), "decay must 0 < decay < 1"),
    "decay origin not a number": (_fn(["t"], reranker="decay", function="exp", origin="soon", scale=2), "Param origin:soon is not a number"),
    "decay on a string field": (_fn(["kind"], reranker="decay", function="exp", origin=1, scale=2), "only support numberic field"),
    "decay on a vector field": (_fn(["v"], reranker="decay", function="exp", origin=1, scale=2), "FLOAT_VECTOR"),
    "decay on a missing field": (_fn(["nope"], reranker="decay", function="exp", origin=1, scale=2), "nope"),
    "decay on two fields": (_fn(["t", "price"], reranker="decay", function="exp", origin=1, scale=2), "single input"),
    "unknown decay param": (_fn(["t"], reranker="decay", function="exp", origin=1, scale=2, sigma=3), "sigma"),
    "boost without weight": (_fn([], reranker="boost", filter="t > 1"), "weight"),
    "boost with input fields": (_fn(["t"], reranker="boost", weight=2), "input"),
    "boost random on a string field": (_fn([], reranker="boost", weight=2, random_score={"seed": 1, "field": "kind"}),
                                       "kind"),
    "unknown boost param": (_fn([], reranker="boost", weight=2, factor=3), "factor"),
    "unknown reranker": (_fn([], reranker="magic"), "Unsupported rerank function: [magic]"),
    "rrf in a single search": (_fn([], reranker="rrf", k=60), "rrf"),
    "no reranker": (_fn([], weight=2), "reranker"),
    "a function writing a column": (_fn([], ["t"], reranker="boost", weight=2), "should not have output field"),
    "two decays": (FunctionScore([_fn(["t"], reranker="decay", function="exp", origin=1, scale=2),
                                  _fn(["price"], reranker="decay", function="exp", origin=1, scale=2)]),
                   "Currently only supports one rerank"),
    "a mode Milvus lacks": (FunctionScore([_fn([], reranker="boost", weight=2)], params={"boost_mode": "max"}),
                            "boost_mode"),
    "an unknown function score param": (FunctionScore([_fn([], reranker="boost", weight=2)], params={"mode": "sum"}),
                                        "mode"),
}


@pytest.mark.parametrize("case", sorted(BAD_SEARCH))
def test_bad_search_rankers_are_refused(client, case: str) -> None:
    _collection(client)
    ranker, word = BAD_SEARCH[case]
    with pytest.raises(heron.HeronError) as err:
        client.search("r", [_query()], anns_field="v", limit=3, ranker=ranker)
    assert err.value.code == 65535  # Milvus's code for a rejected rerank function
    assert word in str(err.value)


def test_a_boost_filter_that_does_not_parse_is_refused_before_searching(client) -> None:
    _collection(client)
    with pytest.raises(heron.FilterError):
        client.search("r", [_query()], anns_field="v", limit=3, ranker=_fn([], reranker="boost", weight=2,
                                                                           filter="t >>> 1"))


@pytest.mark.parametrize("params", [{"reranker": "boost", "weight": 2}, {"reranker": "decay", "function": "exp"}])
def test_bad_hybrid_rankers_are_refused(tmp_path, params: dict[str, Any]) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        reqs = [heron.AnnSearchRequest([_query()], "v", {}, 5), heron.AnnSearchRequest([_query()], "w", {}, 5)]
        fn = Function("bad", FunctionType.RERANK, input_field_names=["t"] if "function" in params else [],
                      params=params)
        with pytest.raises(heron.ParamError) as err:
            c.hybrid_search("r", reqs, ranker=fn, limit=3)
        assert err.value.code == 65535


def test_hybrid_group_by_groups_the_fused_hits(client) -> None:
    """Sub-searches fetch ``3 x limit x group_size`` hits (as Milvus Lite does); the fused list is then grouped."""
    rows = _collection(client)
    kind = {r["id"]: r["kind"] for r in rows}
    q = _query(13)
    ranker = _decay("exp", origin=500, scale=300)

    def reqs(n: int) -> list[Any]:
        return [heron.AnnSearchRequest([q], "v", {}, n), heron.AnnSearchRequest([np.abs(q).tolist()], "w", {}, n)]

    got = client.hybrid_search("r", reqs(5), ranker=ranker, limit=2, group_by_field="kind", group_size=2,
                               output_fields=["kind"])[0]
    fused = client.hybrid_search("r", reqs(2 * 2 * 3), ranker=ranker, limit=100)[0]
    groups: dict[str, list[tuple[Any, float]]] = {}
    for h in fused:
        g = groups.setdefault(kind[h["id"]], [])
        if len(g) < 2:
            g.append((h["id"], h["distance"]))
    _assert_same(got, [h for k in list(groups)[:2] for h in groups[k]])
    assert all(h["entity"]["kind"] == kind[h["id"]] for h in got)


def test_function_chains_are_refused_not_ignored(client) -> None:
    _collection(client)
    chain_mod = require_module("pymilvus.function_chain")
    chain = chain_mod.FunctionChain(chain_mod.FunctionChainStage.L2_RERANK).limit(3)
    with pytest.raises(heron.ParamError, match="function_chains: not supported"):
        client.search("r", [_query()], anns_field="v", limit=3, function_chains=chain)
    with pytest.raises(heron.ParamError, match="function_chains and ranker cannot be used together"):
        client.search("r", [_query()], anns_field="v", limit=3, function_chains=chain,
                      ranker=_decay("exp", origin=1, scale=2))
