"""One recording (or a segment of one) with its metadata: the unit of every corpus."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MODALITIES = ("heart", "lung", "cough", "breathing", "speech", "environment")


@dataclass(frozen=True)
class Record:
    """``path`` is relative to the corpus' data root; ``start_s``/``end_s`` select a segment."""

    record_id: str
    dataset: str
    path: str
    modality: str
    group_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r} ({self.record_id})")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"segment end {self.end_s} <= start {self.start_s} in {self.record_id}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
