"""Where the shipped student's level dependence lives: its windows shifted to a running level, at inference only.

    python scripts/level_floor_experiment.py --range-db R [--history-s 10] [--ref 1.87] [--relative-gate] \
        [--keep-floor AMIN] [--shifted NAME ...] -- PRIMARY_ARGS...
    python scripts/level_floor_experiment.py --measure-ref runs/corpus      # prints the --ref default's source

An experiment, not an SDK feature: it patches ``sdk.stream.Windower`` in this process only, then runs
``acula.aligner.primary`` with PRIMARY_ARGS (give it a ``--cache`` of its own: the patched bundle's outputs
must not land in the shared cache under the bundle's name).  Each window handed to the runtime becomes

    window - L + ref, floored at ref - R dB (R 0: no floor)

with L the loudest cell (normalised log-mel) of any frame in the ``--history-s`` seconds up to the window's end:
causal, so a stream and a whole clip agree, and homogeneous, so a gain change moves L by as much as it moves
every cell above the front end's absolute floor (``FrontendConfig.amin_power``, -100 dB).  With R 0 a gain
change then alters only the cells it pushes into that absolute floor; with R > 0 the relative floor hides those
too, exactly while the running level stays R - 100 dB above it, so the scores become gain-invariant.  ``--ref``
(1.87, about 30 dB) is the median over the data sets of each one's median L, on 400 training recordings drawn
with seed 0 (train split only; ``--measure-ref``).

``--relative-gate`` gives the streams the level-blind quality gate of ``sdk.level`` (``WindowGate(relative=True)``:
a window is gated as low level when its RMS lies ``INACTIVE_BELOW_LOUDEST_DB`` under the loudest window so far, without
the absolute ``LOW_LEVEL_RMS_DBFS`` test), so which windows are scored no longer moves with gain.  Silence (peak under
2 LSB) and clipping stay absolute.  With ``--shifted`` it applies to the named systems only, as the shift does.

``--keep-floor AMIN`` changes the SDK's own shift (``sdk.level``, bundles exported with ``--level-shift``): cells at
the floor of a front end with ``amin_power`` AMIN (digital silence, which no gain moves) stay at the floor instead of
moving with the window's running level, as the training's gain augmentation leaves them (the experiment's own shift
is that same function, so it follows too).

``--shifted`` names the ``--bundle`` systems whose windows are shifted (default: every one), so a shifted bundle
and the same bundle as shipped can be scored in one run, paired against each other.

The primary run's figures then say how much of the student's gain shift the absolute floor causes, and what
its ranking loses when the cells near that floor are hidden (``benchmarks/results/level_floor_val.md``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

#: seconds per log-mel frame, and the front end's norm_std_db (dB per normalised unit)
FRAME_S, STD_DB = 0.032, 36.8


def patch_windower(history_s: float, range_db: float, ref: float, only: Sequence[str] | None = None) -> None:
    """Make every ``sdk.stream.Windower`` in this process hand out level-shifted windows (see the module doc);
    ``only``: just those of the streams of the primary run's bundle systems of these names."""
    from acula.sdk import stream as st

    if only is not None:
        from acula.aligner.systems import BundleSystem

        base_init, base_stream_init = BundleSystem.__init__, st.Stream.__init__

        def init(self: BundleSystem, name: str, *args: Any, **kwargs: Any) -> None:
            base_init(self, name, *args, **kwargs)
            self.model.level_shifted = name in only  # type: ignore[attr-defined]

        def stream_init(self: st.Stream, model: Any) -> None:
            base_stream_init(self, model)
            self.windower.level_shifted = getattr(model, "level_shifted", False)  # type: ignore[attr-defined]

        BundleSystem.__init__, st.Stream.__init__ = init, stream_init  # type: ignore[method-assign]

    from acula.sdk.level import LevelShift

    history = max(1, int(round(history_s / FRAME_S)))
    level_shift = LevelShift(ref, history)  # the SDK's own shift (sdk.level), on top of whatever the bundle does
    floor = np.float32(ref - range_db / STD_DB)
    base_reset, base_append = st.Windower.reset, st.Windower.append
    base_ready, base_tiled = st.Windower.ready_raw, st.Windower.tiled_raw

    def reset(self: st.Windower) -> None:
        base_reset(self)
        self.frame_peaks = []

    def append(self: st.Windower, frames: np.ndarray, peaks: np.ndarray | None = None) -> None:
        if frames.shape[0]:
            self.frame_peaks.extend(frames.max(axis=1).tolist())
        base_append(self, frames, peaks)

    def shifted(self: st.Windower, window: np.ndarray, end: int) -> np.ndarray:
        if not getattr(self, "level_shifted", True):
            return window
        out = level_shift.shift(window, np.asarray(self.frame_peaks[max(0, end - history) : end], np.float32))
        return np.maximum(out, floor, out=out) if range_db > 0 else out

    # the windows the stream scores come from ready_raw / tiled_raw (a level bundle's own running levels ride
    # along and shift them once more, after this shift; ready / tiled go through these too)
    def ready_raw(self: st.Windower) -> tuple[list[np.ndarray], list[float]]:
        first = self.n_windows  # window k ends at frame k * hop_frames + window_frames
        windows, levels = base_ready(self)
        return [shifted(self, w, (first + i) * self.hop_frames + self.window_frames)
                for i, w in enumerate(windows)], levels

    def tiled_raw(self: st.Windower) -> tuple[np.ndarray, float | None] | None:
        raw = base_tiled(self)
        return None if raw is None else (shifted(self, raw[0], len(self.frame_peaks)), raw[1])

    st.Windower.reset, st.Windower.append, st.Windower.ready_raw, st.Windower.tiled_raw = (  # type: ignore[method-assign]
        reset, append, ready_raw, tiled_raw)


def patch_gate(only: Sequence[str] | None = None) -> None:
    """Give every ``sdk.quality.WindowGate`` in this process (with ``only``, those of the streams of the primary run's
    bundle systems of these names) the level-blind gate of ``sdk.level`` (``WindowGate.relative``)."""
    from acula.sdk import quality as q
    from acula.sdk import stream as st

    base_init, base_stream_init = q.WindowGate.__init__, st.Stream.__init__

    def init(self: q.WindowGate, relative: bool = False) -> None:
        base_init(self, relative=True)

    def stream_init(self: st.Stream, model: Any) -> None:
        base_stream_init(self, model)
        self.gate.relative = getattr(model, "level_shifted", False)

    q.WindowGate.__init__ = init  # type: ignore[method-assign]
    if only is not None:
        st.Stream.__init__ = stream_init  # type: ignore[method-assign]


def patch_keep_floor(amin_power: float) -> None:
    """Make ``sdk.level.LevelShift.shift_batch`` (which ``shift``, a stream and a pool all shift through) leave the
    cells at the floor of a front end with ``amin_power`` where they are (see the module doc)."""
    from acula.sdk import level as lv
    from acula.sdk.frontend_config import FrontendConfig

    floor = lv.floor_cell(FrontendConfig(amin_power=amin_power))  # the log-mel of digital silence
    base_shift = lv.LevelShift.shift_batch

    def shift_batch(self: lv.LevelShift, windows: Sequence[np.ndarray], levels: Sequence[float],
                    out: np.ndarray) -> np.ndarray:
        out = base_shift(self, windows, levels, out)
        for j, window in enumerate(windows):
            np.copyto(out[j], np.float32(floor), where=window <= floor)
        return out

    lv.LevelShift.shift_batch = shift_batch  # type: ignore[method-assign]


def measure_ref(corpus_dir: str, history_s: float, n: int = 400) -> float:
    """The median over data sets of each one's median running level L at window ends, on ``n`` training
    recordings drawn with seed 0."""
    from acula.aligner.corpus import load_corpus
    from acula.aligner.data import record_features
    from acula.sdk.frontend import LogMelFrontend

    corpus, frontend = load_corpus(corpus_dir), LogMelFrontend()
    history = max(1, int(round(history_s / FRAME_S)))
    picked = list(corpus.indices("train"))
    np.random.default_rng(0).shuffle(picked)
    levels: dict[str, list[float]] = {}
    for i in picked[:n]:
        peaks = record_features(corpus, i, frontend).max(axis=1)
        for end in range(62, peaks.shape[0] + 1, 15):
            levels.setdefault(corpus.rows[i]["dataset"], []).append(float(peaks[max(0, end - history) : end].max()))
    for name, values in sorted(levels.items()):
        print(f"{name}: {len(values)} windows, L median {np.median(values):.3f} "
              f"({np.median(values) * STD_DB - 38.7:+.1f} dB), 1st percentile {np.quantile(values, 0.01):.3f} "
              f"({np.quantile(values, 0.01) * STD_DB - 38.7:+.1f} dB), lowest {min(values) * STD_DB - 38.7:+.1f} dB")
    return float(np.median([np.median(v) for v in levels.values()]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--measure-ref"] and len(argv) == 2:
        print(f"ref {measure_ref(argv[1], 10.0):.2f}")
        return 0
    if "--" not in argv:
        raise SystemExit("give the primary run's arguments after --")
    cut = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--range-db", type=float, required=True, help="relative floor below ref (0: none)")
    parser.add_argument("--history-s", type=float, default=10.0)
    parser.add_argument("--ref", type=float, default=1.87)
    parser.add_argument("--relative-gate", action="store_true", help="low-level gate relative to the loudest window")
    parser.add_argument("--keep-floor", type=float, metavar="AMIN",
                        help="acula.sdk.level's shift leaves the cells at this front-end floor where they are")
    parser.add_argument("--shifted", nargs="*", metavar="NAME",
                        help="only these --bundle systems (default: all; none named: none)")
    args = parser.parse_args(argv[:cut])
    if args.range_db < 0 or args.history_s <= 0:
        parser.error("--range-db must be >= 0 and --history-s > 0")
    patch_windower(args.history_s, args.range_db, args.ref, args.shifted)
    if args.relative_gate:
        patch_gate(args.shifted)
    if args.keep_floor is not None:
        patch_keep_floor(args.keep_floor)
    from acula.aligner.primary import main as primary

    return primary(argv[cut + 1 :], command=f"python scripts/level_floor_experiment.py {shlex.join(argv[:cut])} --")


if __name__ == "__main__":
    sys.exit(main())
