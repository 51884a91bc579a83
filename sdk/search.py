"""Similar-case search: a faiss index over reference embeddings with their labels and reports.

Flat inner product (exact) for small sets, HNSW for large ones; embeddings are
L2-normalised so inner product is cosine similarity.  An index directory holds
``index.faiss``, ``items.jsonl`` (one reference a line) and ``index.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HNSW_MIN_ITEMS = 10_000


@dataclass(frozen=True)
class Match:
    score: float
    item: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, **self.item}


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("similar-case search needs: pip install faiss-cpu") from exc
    return faiss


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (n, dim), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinity")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class CaseIndex:
    def __init__(self, dim: int, kind: str = "auto", n_expected: int = 0) -> None:
        faiss = _faiss()
        if kind == "auto":
            kind = "hnsw" if n_expected >= HNSW_MIN_ITEMS else "flat"
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"kind must be 'flat', 'hnsw' or 'auto', got {kind!r}")
        self.kind, self.dim = kind, dim
        self.index = faiss.IndexFlatIP(dim) if kind == "flat" else faiss.IndexHNSWFlat(dim, 32,
                                                                                       faiss.METRIC_INNER_PRODUCT)
        self.items: list[dict[str, Any]] = []

    def add(self, embeddings: np.ndarray, items: list[dict[str, Any]]) -> None:
        x = _normalise(embeddings)
        if x.shape[0] != len(items) or x.shape[1] != self.dim:
            raise ValueError(f"need {x.shape[0]} items of dimension {self.dim}; got {len(items)} items, "
                             f"dimension {x.shape[1]}")
        self.index.add(x)
        self.items.extend(items)

    def search(self, query: np.ndarray, k: int = 5) -> list[Match]:
        """query: (dim,) -> the k most similar references, best first."""
        if not self.items:
            return []
        scores, ids = self.index.search(_normalise(np.asarray(query).reshape(1, -1)), min(k, len(self.items)))
        return [Match(float(s), self.items[i]) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _faiss().write_index(self.index, str(folder / "index.faiss"))
        with open(folder / "items.jsonl", "w") as f:
            for item in self.items:
                f.write(json.dumps(item, sort_keys=True) + "\n")
        (folder / "index.json").write_text(json.dumps({"kind": self.kind, "dim": self.dim, "n": len(self.items)}))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CaseIndex:
        folder = Path(folder)
        if not (folder / "index.json").is_file():
            raise FileNotFoundError(f"{folder} is not a case index (no index.json); build one with "
                                    "'acula index build'")
        meta = json.loads((folder / "index.json").read_text())
        out = cls.__new__(cls)
        out.kind, out.dim = meta["kind"], meta["dim"]
        out.index = _faiss().read_index(str(folder / "index.faiss"))
        out.items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines() if line]
        if len(out.items) != out.index.ntotal or len(out.items) != meta["n"]:
            raise ValueError(f"{folder}: index holds {out.index.ntotal} vectors but {len(out.items)} items")
        return out
