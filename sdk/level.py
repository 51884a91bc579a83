"""Level-blind windows: each analysis window moved so the loudest frame of the last few seconds sits at a fixed level.

A bundle whose manifest carries a ``level`` block (``acula export --level-shift``) is scored on shifted windows:

    window' = window - (L - ref),  L = the loudest cell (normalised log-mel) of the ``history_frames`` frames up to
                                       the window's end

Causal, so a stream and a whole clip agree bit for bit; homogeneous, so a gain change moves L exactly as much as it
moves every cell the front end's absolute floor (``FrontendConfig.amin_power``) does not clip, and the model sees the
same window.  With a front end floored low enough (-160 dB, ``amin_power`` 1e-16) a gain change down to -40 dB clips
almost nothing, and the model's outputs stop depending on the recording level
(``benchmarks/results/level_floor_val_floor160*_R0.md``).  ``gate`` "relative" makes the quality gate level-blind
too: a window is gated as low level when its RMS lies ``INACTIVE_BELOW_LOUDEST_DB`` under the loudest window so far,
whatever its absolute level (:class:`sdk.quality.WindowGate`); silence and clipping stay absolute.

``range_db`` (``acula export --level-range-db``) adds a relative floor: shifted cells are raised to ``range_db`` under
``ref``, so cells far under the running level (near-silence, which the absolute floor clips at one gain and not at
another) read the same at every gain that keeps the running level ``range_db`` above the absolute floor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from acula.sdk.frontend_config import FrontendConfig

__all__ = ["DEFAULT_HISTORY_FRAMES", "DEFAULT_REF", "LevelShift", "bundle_level", "floor_cell", "shift_crops",
           "shift_cut_windows"]

#: the running level's reference (normalised log-mel; about -30 dB): the median over the data sets of each one's
#: median running level at window ends, 400 training recordings drawn with seed 0
#: (``python scripts/level_floor_experiment.py --measure-ref runs/corpus``)
DEFAULT_REF = 1.87
#: 10 s of 32 ms frames
DEFAULT_HISTORY_FRAMES = 312

_MAX = np.maximum.reduce


@dataclass(frozen=True)
class LevelShift:
    """The manifest's ``level`` block: the reference level, the running level's history, the gate's kind."""

    ref: float = DEFAULT_REF
    history_frames: int = DEFAULT_HISTORY_FRAMES
    gate: str = "relative"
    #: the front end's floor cell (normalised log-mel; :func:`floor_cell`) when the manifest asks ``keep_floor``:
    #: cells at the floor (digital silence, which no gain moves) stay there instead of moving with the running
    #: level, as the training's gain augmentation leaves them.  None: every cell moves.
    floor: float | None = None
    #: ``range_db``: the relative floor, in dB under ``ref``; cells of a shifted window are raised to
    #: ``low = ref - range_db / norm_std_db`` (:meth:`for_front`), so whatever lies more than ``range_db`` under the
    #: running level reads the same at any gain that keeps the running level ``range_db`` above the front end's
    #: absolute floor.  Digital silence lands there too, so it excludes ``floor``.  None: no relative floor.
    range_db: float | None = None
    low: float | None = None

    GATES = ("relative", "absolute")
    #: a cell within this of the floor is a floor cell (the engines round the floor's log differently, by ~1e-7)
    FLOOR_TOLERANCE = 1e-5

    def __post_init__(self) -> None:
        if self.history_frames < 1 or self.gate not in self.GATES:
            raise ValueError(f"history_frames must be >= 1 and gate one of {self.GATES}, got {self.history_frames}, "
                             f"{self.gate!r}")
        if self.range_db is not None and (self.floor is not None or not self.range_db > 0):
            raise ValueError(f"range_db must be > 0 and excludes keep_floor (digital silence lands on the relative "
                             f"floor), got {self.range_db} with floor {self.floor}")

    def for_front(self, front: FrontendConfig) -> LevelShift:
        """This shift with the cells that depend on front end ``front`` in its units: the floor cell ``keep_floor``
        names (``floor`` set, to any placeholder, asks for it) and the relative floor's cell ``low``."""
        floor = None if self.floor is None else floor_cell(front)
        low = None if self.range_db is None else self.ref - self.range_db / front.norm_std_db
        return dataclasses.replace(self, floor=floor, low=low)

    @classmethod
    def from_manifest(cls, block: dict[str, Any], front: FrontendConfig | None = None) -> LevelShift:
        """The manifest's block; ``front``: the bundle's front end, whose floor cell ``keep_floor`` names."""
        range_db = float(block["range_db"]) if "range_db" in block else None
        return cls(float(block["ref"]), int(block["history_frames"]), str(block.get("gate", "relative")),
                   0.0 if block.get("keep_floor") else None, range_db).for_front(front or FrontendConfig())

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "history_frames": self.history_frames, "gate": self.gate}
        if self.range_db is not None:
            out["range_db"] = self.range_db
        return out if self.floor is None else {**out, "keep_floor": True}

    def _floored(self, out: np.ndarray, before: np.ndarray) -> np.ndarray:
        """``out`` (the shifted ``before``) with the relative floor or ``keep_floor`` applied, in place."""
        if self.range_db is not None:
            if self.low is None:
                raise ValueError("a LevelShift with range_db needs its front end: call for_front(front) first")
            np.maximum(out, np.float32(self.low), out=out)
        elif self.floor is not None:
            np.copyto(out, np.float32(self.floor), where=before <= self.floor + self.FLOOR_TOLERANCE)
        return out

    def shift(self, window: np.ndarray, peaks: np.ndarray) -> np.ndarray:
        """``window`` (frames, n_mels) moved by its running level, ``peaks`` the per-frame loudest cells of the
        ``history_frames`` frames up to its end (fewer at the start of a recording); a new array."""
        return self.shift_batch([window], [float(_MAX(peaks))], np.empty((1, *window.shape), np.float32))[0]

    def shift_batch(self, windows: Sequence[np.ndarray], levels: Sequence[float], out: np.ndarray) -> np.ndarray:
        """Each of ``windows`` (frames, n_mels) moved so that its running level (``levels``, one per window: the
        loudest cell of its history) sits at ``ref``, written into ``out`` (n, frames, n_mels) float32, which is
        returned: a stream's or a pool's model input, filled with no allocation.  Element for element the same
        values as :meth:`shift`."""
        n, ref = len(windows), self.ref
        if len(levels) != n or out.shape[0] != n:
            raise ValueError(f"{n} windows need {n} levels and {n} output rows, got {len(levels)}, {out.shape[0]}")
        for j in range(n):
            np.subtract(windows[j], np.float32(levels[j] - ref), out=out[j])
        if self.range_db is not None and self.low is not None:
            # the relative floor over the whole batch in one call: the same values as window by window, without a
            # call per window (a pool's 32-window batch, 516 KB, stays in this CPU's 1 MB L2 between the passes)
            np.maximum(out, np.float32(self.low), out=out)
            return out
        for j in range(n):
            self._floored(out[j], windows[j])
        return out


def bundle_level(bundle: Any) -> LevelShift | None:
    """A bundle's (``sdk.bundle.Bundle``) level shift, from its manifest's ``level`` block and its front end; None
    when it has none."""
    block = bundle.manifest.get("level")
    return None if block is None else LevelShift.from_manifest(block, bundle.frontend)


def floor_cell(cfg: FrontendConfig) -> float:
    """The normalised log-mel value of digital silence on front end ``cfg``, as the SDK computes it."""
    from acula.sdk.frontend import LogMelFrontend

    return float(LogMelFrontend(cfg)(np.zeros(cfg.n_fft, np.float32)).min())


def shift_cut_windows(level: LevelShift, feats: np.ndarray, windows: np.ndarray, hop_frames: int) -> np.ndarray:
    """``windows`` (n, window_frames, n_mels) cut from a recording's log-mel ``feats`` (n_frames, n_mels) as a stream
    cuts them (window k ends at frame k * hop_frames + window_frames; a recording shorter than one window gives one
    window, its frames tiled, ending at its last frame), each shifted by its running level as the stream shifts it:
    the export's validation windows; a new float32 array."""
    feats = np.asarray(feats, dtype=np.float32)
    peaks = feats.max(axis=1)
    out = np.empty(windows.shape, np.float32)
    for k in range(windows.shape[0]):
        end = min(k * hop_frames + windows.shape[1], feats.shape[0])
        out[k] = level.shift(np.asarray(windows[k], np.float32), peaks[max(0, end - level.history_frames) : end])
    return out


def shift_crops(level: LevelShift, crops: np.ndarray) -> np.ndarray:
    """Crops (n, window_frames, n_mels) with no recording around them, each shifted by its own loudest cell (a
    window's running level is at least that): the int8 calibration crops of a level bundle, whose input range
    they set; a new float32 array."""
    crops = np.asarray(crops, dtype=np.float32)
    return level._floored(crops - (crops.max(axis=(1, 2)) - np.float32(level.ref))[:, None, None], crops)
