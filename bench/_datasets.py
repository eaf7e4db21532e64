"""Workloads: seeded clustered synthetic vectors and the MiniLM real-embedding set.

A dataset is prepared once in the parent process into a cache directory
(vectors, queries, scalar columns, exact ground truth with and without each
filter) and every system's subprocess loads it from there, so all systems see
the same bytes and ground truth is computed once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bench._exact import exact_topk

Metric = Literal["COSINE", "L2"]
FieldKind = Literal["int", "varchar", "json"]

GT_K = 100
MINILM_DIR = Path("/work/shared/data/minilm-dev-10k")
_FORMAT = 2


@dataclass(frozen=True)
class ScalarField:
    """A scalar field of every row; `json` fields hold ``{key: int}`` objects."""

    name: str
    kind: FieldKind
    key: str = ""


@dataclass(frozen=True)
class FilterSpec:
    """One filter, described structurally so each adapter can translate it.

    ``op`` is ``==``, ``<`` or ``in``; for a JSON field ``key`` names the
    member compared. ``selectivity`` is the measured fraction of rows kept.
    """

    name: str
    field: str
    kind: FieldKind
    op: Literal["==", "<", "in"]
    value: Any
    key: str = ""
    selectivity: float = 0.0

    def milvus_expr(self) -> str:
        """The filter in the Milvus expression language (Heron, Milvus Lite)."""
        lhs = f'{self.field}["{self.key}"]' if self.kind == "json" else self.field
        if self.op == "in":
            return f"{lhs} in {json.dumps(list(self.value))}"
        return f"{lhs} {self.op} {json.dumps(self.value)}"

    def mask(self, column: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows kept, given this field's (or JSON key's) column."""
        if self.op == "==":
            return column == self.value
        if self.op == "<":
            return column < self.value
        return np.isin(column, np.asarray(list(self.value), dtype=column.dtype))


@dataclass
class Dataset:
    """A prepared workload, as loaded by a worker."""

    name: str
    metric: Metric
    vectors: np.ndarray
    queries: np.ndarray
    fields: list[ScalarField]
    columns: dict[str, np.ndarray]
    filters: list[FilterSpec]
    gt: np.ndarray
    gt_filtered: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def filter_column(self, spec: FilterSpec) -> np.ndarray:
        """The column a filter reads: the field itself, or a JSON field's key."""
        return self.columns[f"{spec.field}.{spec.key}" if spec.kind == "json" else spec.field]

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Row dicts for ids ``start..stop-1``, the shape users pass to ``insert``."""
        out: list[dict[str, Any]] = []
        cols = {f.name: _as_list(self._values(f, start, stop)) for f in self.fields}
        for j, i in enumerate(range(start, stop)):
            row: dict[str, Any] = {"id": i, "vector": self.vectors[i]}
            for name, vals in cols.items():
                row[name] = vals[j]
            out.append(row)
        return out

    def columns_slice(self, start: int, stop: int) -> dict[str, Any]:
        """Columns for ids ``start..stop-1``: numpy arrays, and lists for strings and JSON."""
        cols: dict[str, Any] = {
            "id": np.arange(start, stop, dtype=np.int64),
            "vector": self.vectors[start:stop],
        }
        for f in self.fields:
            vals = self._values(f, start, stop)
            cols[f.name] = vals if f.kind == "int" else list(vals)
        return cols

    def _values(self, f: ScalarField, start: int, stop: int) -> Any:
        if f.kind == "json":
            col = self.columns[f"{f.name}.{f.key}"][start:stop]
            return [{f.key: int(v)} for v in col]
        col = self.columns[f.name][start:stop]
        return col.tolist() if f.kind == "varchar" else col


@dataclass(frozen=True)
class DatasetSpec:
    """What to prepare; its hash names the cache directory."""

    kind: Literal["synthetic", "minilm"]
    n: int
    dim: int
    nq: int
    metric: Metric
    seed: int = 1

    def key(self) -> str:
        raw = json.dumps({**asdict(self), "format": _FORMAT}, sort_keys=True)
        return f"{self.kind}-{self.n}x{self.dim}-" + hashlib.sha1(raw.encode()).hexdigest()[:10]


def _synthetic_vectors(spec: DatasetSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters: base rows and queries drawn from the same mixture."""
    n_clusters = max(8, min(1024, spec.n // 500))
    centers = rng.normal(0.0, 1.0, (n_clusters, spec.dim)).astype(np.float32)
    weights = rng.dirichlet(np.full(n_clusters, 2.0))

    def draw(count: int) -> np.ndarray:
        labels = rng.choice(n_clusters, size=count, p=weights)
        noise = rng.normal(0.0, 0.35, (count, spec.dim)).astype(np.float32)
        return centers[labels] + noise

    return draw(spec.n), draw(spec.nq)


def _synthetic_scalars(n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[ScalarField]]:
    """Three independent uniform fields (0..99) as int, varchar and JSON."""
    tags = np.array([f"t{i:03d}" for i in range(100)], dtype=str)
    columns = {
        "bucket": rng.integers(0, 100, n).astype(np.int64),
        "tag": tags[rng.integers(0, 100, n)],
        "meta.group": rng.integers(0, 100, n).astype(np.int64),
    }
    fields = [
        ScalarField("bucket", "int"),
        ScalarField("tag", "varchar"),
        ScalarField("meta", "json", "group"),
    ]
    return columns, fields


def _synthetic_filters() -> list[FilterSpec]:
    ten_tags = [f"t{i:03d}" for i in range(0, 100, 10)]
    return [
        FilterSpec("int_10pct", "bucket", "int", "<", 10),
        FilterSpec("int_1pct", "bucket", "int", "==", 42),
        FilterSpec("varchar_10pct", "tag", "varchar", "in", ten_tags),
        FilterSpec("varchar_1pct", "tag", "varchar", "==", "t042"),
        FilterSpec("json_10pct", "meta", "json", "<", 10, key="group"),
        FilterSpec("json_1pct", "meta", "json", "==", 42, key="group"),
    ]


def _minilm_scalars(path: Path) -> tuple[dict[str, np.ndarray], list[ScalarField]]:
    with gzip.open(path / "base.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    columns = {
        "category": np.array([r["category"] for r in rows], dtype=np.int64),
        "lemma": np.array([r["lemma"][:64] for r in rows], dtype=str),
    }
    return columns, [ScalarField("category", "int"), ScalarField("lemma", "varchar")]


def _minilm_filters() -> list[FilterSpec]:
    return [
        FilterSpec("int_10pct", "category", "int", "==", 6),
        FilterSpec("int_1pct", "category", "int", "==", 41),
    ]


def _with_selectivity(specs: list[FilterSpec], columns: dict[str, np.ndarray]) -> list[FilterSpec]:
    out = []
    for s in specs:
        col = columns[f"{s.field}.{s.key}" if s.kind == "json" else s.field]
        out.append(FilterSpec(**{**asdict(s), "selectivity": float(s.mask(col).mean())}))
    return out


def _ground_truth(
    base: np.ndarray,
    queries: np.ndarray,
    metric: Metric,
    filters: list[FilterSpec],
    columns: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Exact top-``GT_K`` ids, unfiltered (``all``) and per filter name."""
    gt = {"all": exact_topk(base, queries, GT_K, metric)}
    for s in filters:
        col = columns[f"{s.field}.{s.key}" if s.kind == "json" else s.field]
        kept = np.flatnonzero(s.mask(col))
        local = exact_topk(base[kept], queries, min(GT_K, len(kept)), metric)
        gt[s.name] = np.where(local >= 0, kept[np.maximum(local, 0)], -1)
    return gt


def prepare(spec: DatasetSpec, cache_root: Path) -> Path:
    """Build (or reuse) the cache directory for ``spec`` and return its path."""
    out = cache_root / spec.key()
    if (out / "dataset.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    if spec.kind == "minilm":
        meta = _prepare_minilm(out)
    else:
        meta = _prepare_synthetic(spec, out)
    meta["spec"] = asdict(spec)
    tmp = out / "dataset.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(out / "dataset.json")
    return out


def _prepare_synthetic(spec: DatasetSpec, out: Path) -> dict[str, Any]:
    rng = np.random.default_rng(spec.seed)
    base, queries = _synthetic_vectors(spec, rng)
    columns, fields = _synthetic_scalars(spec.n, rng)
    filters = _with_selectivity(_synthetic_filters(), columns)
    np.save(out / "vectors.npy", base)
    np.save(out / "queries.npy", queries)
    np.savez(out / "columns.npz", **columns)
    np.savez(out / "gt.npz", **_ground_truth(base, queries, spec.metric, filters, columns))
    return _meta(f"synthetic-{spec.n}x{spec.dim}", spec.metric, "vectors.npy", fields, filters)


def _prepare_minilm(out: Path) -> dict[str, Any]:
    """Reads the shared MiniLM set in place; its shipped exact ground truth is used as is."""
    columns, fields = _minilm_scalars(MINILM_DIR)
    filters = _with_selectivity(_minilm_filters(), columns)
    np.savez(out / "columns.npz", **columns)
    gt = {
        "all": np.load(MINILM_DIR / "gt_top100.npy").astype(np.int64),
        "int_10pct": np.load(MINILM_DIR / "gt_filtered_10pct.npy").astype(np.int64),
        "int_1pct": np.load(MINILM_DIR / "gt_filtered_1pct.npy").astype(np.int64),
    }
    np.savez(out / "gt.npz", **gt)
    meta = _meta("minilm-dev-10k", "COSINE", str(MINILM_DIR / "base_f16.npy"), fields, filters)
    meta["queries"] = str(MINILM_DIR / "queries.npy")
    return meta


def _meta(
    name: str, metric: Metric, vectors: str, fields: list[ScalarField], filters: list[FilterSpec]
) -> dict[str, Any]:
    return {
        "name": name,
        "metric": metric,
        "vectors": vectors,
        "queries": "queries.npy",
        "fields": [asdict(f) for f in fields],
        "filters": [asdict(f) for f in filters],
    }


def load(path: Path) -> Dataset:
    """Load a prepared dataset directory (vectors as float32, C-contiguous)."""
    meta = json.loads((path / "dataset.json").read_text())
    vectors = np.ascontiguousarray(np.load(path / meta["vectors"]), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(path / meta["queries"]), dtype=np.float32)
    with np.load(path / "columns.npz", allow_pickle=False) as z:
        columns = {k: z[k] for k in z.files}
    with np.load(path / "gt.npz") as z:
        gts = {k: z[k] for k in z.files}
    filters = [FilterSpec(**{**f, "value": _tuple(f["value"])}) for f in meta["filters"]]
    return Dataset(
        name=meta["name"],
        metric=meta["metric"],
        vectors=vectors,
        queries=queries,
        fields=[ScalarField(**f) for f in meta["fields"]],
        columns=columns,
        filters=filters,
        gt=gts.pop("all"),
        gt_filtered=gts,
    )


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def describe(path: Path) -> dict[str, Any]:
    """The dataset facts recorded in a run's JSON."""
    meta = json.loads((path / "dataset.json").read_text())
    spec = meta["spec"]
    ds = load(path)
    return {
        "name": meta["name"],
        "kind": spec["kind"],
        "n": ds.n,
        "dim": ds.dim,
        "queries": int(ds.queries.shape[0]),
        "metric": meta["metric"],
        "seed": spec["seed"],
        "filters": {
            f.name: {"expr": f.milvus_expr(), "selectivity": round(f.selectivity, 4)} for f in ds.filters
        },
    }
