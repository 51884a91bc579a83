"""Similar-case search: a faiss index over reference embeddings with their labels and reports.

Flat inner product (exact) for small sets, HNSW for large ones; embeddings are
L2-normalised so inner product is cosine similarity.  An index directory holds
``index.faiss``, ``items.jsonl`` (one reference a line) and ``index.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HNSW_MIN_ITEMS = 10_000
# HNSW defaults, from ``python -m acula.benchmarks.search`` (benchmarks/results/search.md: 512-d clustered vectors,
# 500 held-out queries).  recall@5 at efSearch 16 / 32 / 64 / 128 / 256 with M = 32: 0.954 / 0.974 / 0.990 /
# 0.994 / 0.996 at 100k references and 0.928 / 0.937 / 0.941 / 0.952 / 0.962 at 1M; faiss's default of 16
# misses the 0.95 target at 1M and 128 meets it only within the 500 queries' sampling error, so 256, at
# 0.62 ms a query on one core at 1M (0.49 ms at 100k).  M = 48 gains 0.002 at 100k for 5 % more memory;
# M = 32 keeps the layout of indexes built before.  efConstruction stays at faiss's 40 (a 1M build took 9 min
# on 2 cores); a larger one is the next lever if recall at 1M must rise further.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 256


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


def _whole(value: Any) -> bool:
    """A whole number (an int or numpy integer, not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (n, dim), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinity")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class CaseIndex:
    """Reference embeddings (any scale; stored L2-normalised) with one item dict each.

    ``kind``: "flat" (exact), "hnsw" (graph of ``m`` links a node, built with ``ef_construction`` candidates) or
    "auto" (flat below :data:`HNSW_MIN_ITEMS` expected items).  ``ef_search`` is how many candidates an HNSW
    search visits by default (more: higher recall, slower); a search may override it.
    """

    def __init__(self, dim: int, kind: str = "auto", n_expected: int = 0, m: int = HNSW_M,
                 ef_construction: int = HNSW_EF_CONSTRUCTION, ef_search: int = HNSW_EF_SEARCH,
                 model: str | None = None) -> None:
        """``model``: the manifest digest of the bundle whose embeddings go in (``acula index build`` records it,
        and ``acula search`` refuses another bundle's queries: their spaces do not match)."""
        faiss = _faiss()
        if kind == "auto":
            kind = "hnsw" if n_expected >= HNSW_MIN_ITEMS else "flat"
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"kind must be 'flat', 'hnsw' or 'auto', got {kind!r}")
        if min(m, ef_construction, ef_search) < 1:
            raise ValueError(f"m, ef_construction and ef_search must be >= 1, got {m}, {ef_construction}, "
                             f"{ef_search}")
        self.kind, self.dim, self.ef_search, self.model = kind, dim, ef_search, model
        if kind == "flat":
            self.index = faiss.IndexFlatIP(dim)
        else:
            self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = ef_construction
            self.index.hnsw.efSearch = ef_search
        self.items: list[dict[str, Any]] = []

    def add(self, embeddings: np.ndarray, items: list[dict[str, Any]]) -> None:
        x = _normalise(embeddings)
        if x.shape[0] != len(items) or x.shape[1] != self.dim:
            raise ValueError(f"need {x.shape[0]} items of dimension {self.dim}; got {len(items)} items, "
                             f"dimension {x.shape[1]}")
        for i, item in enumerate(items):  # refused here, not half-way through a later save
            try:
                json.dumps(item, sort_keys=True, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"item {i} cannot be saved as JSON ({exc}): give plain str, int, float, bool, "
                                 "list and dict values") from None
        self.index.add(x)
        self.items.extend(items)

    def search_ids(self, queries: np.ndarray, k: int = 5, ef_search: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """queries: (n, dim) -> (cosine similarities, item positions), each shape (n, k), best first; position -1
        (similarity -inf) where fewer than k were found.  ``ef_search`` overrides the index's for this call."""
        if ef_search is not None and (not _whole(ef_search) or ef_search < 1):
            raise ValueError(f"ef_search must be a whole number >= 1, got {ef_search!r}")
        if not _whole(k) or k < 1:
            raise ValueError(f"k, the number of matches, must be a whole number >= 1, got {k!r}")
        q = _normalise(queries)
        if q.shape[1] != self.dim:
            raise ValueError(f"queries of dimension {q.shape[1]} for an index of dimension {self.dim} (built by "
                             "another model?)")
        k = min(k, len(self.items))
        if self.kind == "hnsw":
            # more candidates than items visits every item: the same result, and faiss takes a C int
            ef = min(self.ef_search if ef_search is None else ef_search, max(len(self.items), k))
            # faiss never visits fewer than k candidates, so ef below k would silently mean k
            params = _faiss().SearchParametersHNSW(efSearch=max(ef, k))
            scores, ids = self.index.search(q, k, params=params)
        else:
            scores, ids = self.index.search(q, k)
        return scores, ids

    def search(self, query: np.ndarray, k: int = 5, ef_search: int | None = None) -> list[Match]:
        """query: (dim,) -> the k most similar references, best first.  ``ef_search``: see :meth:`search_ids`."""
        if not self.items:
            return []
        scores, ids = self.search_ids(np.asarray(query).reshape(1, -1), k, ef_search)
        return [Match(float(s), self.items[i]) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def save(self, folder: str | Path) -> Path:
        """Write the index (index.faiss, items.jsonl, index.json) into ``folder``: each file is written under a
        temporary name first and renamed over the old one only when all three are written, index.json last, so a
        failed save leaves the previous index readable."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.kind, "dim": self.dim, "n": len(self.items), "ef_search": self.ef_search}
        if self.model is not None:
            meta["model"] = self.model
        items = "".join(json.dumps(item, sort_keys=True) + "\n" for item in self.items)
        written = []
        try:
            _faiss().write_index(self.index, str(folder / "index.faiss.tmp"))
            written.append("index.faiss")
            (folder / "items.jsonl.tmp").write_text(items)
            written.append("items.jsonl")
            (folder / "index.json.tmp").write_text(json.dumps(meta))
            written.append("index.json")
        except BaseException:
            for name in ("index.faiss", "items.jsonl", "index.json"):
                (folder / f"{name}.tmp").unlink(missing_ok=True)
            raise
        for name in written:
            os.replace(folder / f"{name}.tmp", folder / name)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CaseIndex:
        folder = Path(folder)
        if not (folder / "index.json").is_file():
            raise FileNotFoundError(f"{folder} is not a case index (no index.json); build one with "
                                    "'acula index build'")
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            if not (isinstance(meta, dict) and meta.get("kind") in ("flat", "hnsw") and _whole(meta.get("dim"))
                    and _whole(meta.get("n")) and _whole(meta.get("ef_search", 1))
                    and isinstance(meta.get("model", ""), str)):
                raise ValueError("it needs kind 'flat' or 'hnsw', whole numbers dim, n and ef_search, a model digest")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{folder / 'index.json'} is not a case index's description ({exc})") from None
        out = cls.__new__(cls)
        # an index written before ef_search was stored (faiss searched it with 16) gets today's default; one written
        # before the model was recorded has none
        out.kind, out.dim, out.ef_search = meta["kind"], meta["dim"], int(meta.get("ef_search", HNSW_EF_SEARCH))
        out.model = meta.get("model")
        try:
            out.index = _faiss().read_index(str(folder / "index.faiss"))
        except RuntimeError:  # faiss's own message quotes its C++ source
            raise ValueError(f"{folder / 'index.faiss'} cannot be read: missing, truncated or corrupt (build the "
                             "index again)") from None
        try:
            out.items = [json.loads(line) for line in (folder / "items.jsonl").read_text(encoding="utf-8").splitlines()
                         if line]
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{folder / 'items.jsonl'} cannot be read ({exc})") from None
        if out.index.d != out.dim:
            raise ValueError(f"{folder}: index.faiss holds vectors of dimension {out.index.d}, index.json says "
                             f"{out.dim}")
        if len(out.items) != out.index.ntotal or len(out.items) != meta["n"]:
            raise ValueError(f"{folder}: index holds {out.index.ntotal} vectors but {len(out.items)} items")
        return out
