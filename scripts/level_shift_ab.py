"""Where a level bundle's windows are shifted, paired in one process: the pool's CPU per audio second with the parent
commit's path (each window shifted into a new array, then copied into the batch: ``old``), with the floor applied in
a second pass over the batch (``A``), and with the shipped ``LevelShift.shift_batch`` (each window floored right
after its shift: ``B``), five interleaved rounds at 64 and 512 streams on the packaged default.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python scripts/level_shift_ab.py

An experiment (it patches ``sdk.stream.Stream._pending`` and ``sdk.level.LevelShift.shift_batch`` in this process),
not a benchmark: the three give the same model inputs bit for bit (tests/test_level.py, tests/test_pool.py).
"""

from __future__ import annotations

import numpy as np
from acula.benchmarks.stream_pool import serve
from acula.sdk import level as lv
from acula.sdk import stream as st
from acula.sdk.pool import StreamPool
from acula.sdk.synth import synth_recording

from acula import sdk

SHIPPED = lv.LevelShift.shift_batch
BASE_PENDING = st.Stream._pending


def batch_pass(self: lv.LevelShift, windows: list[np.ndarray], levels: list[float], out: np.ndarray) -> np.ndarray:
    """``A``: every window shifted, then the floor in one pass over the batch."""
    for j in range(len(windows)):
        np.subtract(windows[j], np.float32(levels[j] - self.ref), out=out[j])
    if self.range_db is not None:
        return self._floored(out, out)
    for j, w in enumerate(windows):
        self._floored(out[j], w)
    return out


def old_pending(self: st.Stream) -> st.Pending:
    """``old``: shifted windows as new arrays, which the pool then copies into its batch."""
    p = BASE_PENDING(self)
    if p.level is None or not p.windows:
        return p
    shifted = [p.level._floored(w - np.float32(level - p.level.ref), w)
               for w, level in zip(p.windows, p.levels, strict=True)]
    return st.Pending(shifted, p.spans, p.padded, [], None)


def main() -> None:
    model = sdk.load("default", "onnxruntime", "fp32")
    hop = model.hop_frames * model.frontend.config.hop_length
    warm = -(-model.window_frames // model.hop_frames)
    audio, _ = synth_recording(60.0 + (warm + 40) * hop / 16000 + 1.0, seed=4)
    res: dict[str, dict[int, list[float]]] = {k: {64: [], 512: []} for k in ("old", "A", "B")}
    for _ in range(5):  # interleaved, so a slow spell of the machine touches each alike
        for name in res:
            lv.LevelShift.shift_batch = batch_pass if name == "A" else SHIPPED  # type: ignore[method-assign]
            st.Stream._pending = old_pending if name == "old" else BASE_PENDING  # type: ignore[method-assign]
            pool = StreamPool(model)
            for n in (64, 512):
                r = serve(model, pool, n, audio, hop, warm, max(24, -(-512 // n)), True)
                res[name][n].append(r["cpu_ms_per_audio_s"])
    print("CPU ms per audio s, median [rounds], by streams")
    for name, d in res.items():
        print(name, {n: (round(float(np.median(v)), 4), [round(x, 3) for x in v]) for n, v in d.items()})


if __name__ == "__main__":
    main()
