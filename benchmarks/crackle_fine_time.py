"""Do crackles show in fine time?  Hand-made fine-time features of ICBHI cycles against the crackles label.

    python -m acula.benchmarks.crackle_fine_time --corpus runs/corpus [--out benchmarks/results]

The issue's lever for crackles is a finer hop or a second fine-time branch: crackles last under 20 ms and the front
end hops 32 ms.  Before that branch is built (it touches every place that assumes the 32 ms frame), this asks a
cheaper question: does the fine time structure of a cycle carry the label at all?  Each cycle (8 kHz, band-passed
150-2000 Hz, where crackles lie) gives features no model learns:

* impulsiveness: kurtosis of 16 ms frames (hop 8 ms), mean and 90th percentile, and of the whole cycle;
* transients: peaks of the 1 ms envelope over 3x / 5x its running 51 ms median, per second;
* roughness: the spread of the level's step from one 4 ms frame to the next (fine) and one 32 ms frame to the next
  (the front end's grid).

Each feature alone is scored as it is (nothing fitted: AUROC on train and val, with 95 % patient-bootstrap intervals,
and within recording, the cycle scores standardised per recording); one linear probe over all of them is fitted on
train (C chosen on train by the project's rule, ``aligner.protocol.fit_probe``) and scored on val.  Test is not
read: nothing here is chosen, but the split is kept for choices that are.  Writes ``crackle_fine_time.json`` and
``.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from acula.benchmarks._util import command_parser, write_results

RATE = 8000
SPLITS = ("train", "val")


def cycle_features(x: np.ndarray, sos: np.ndarray) -> dict[str, float] | None:
    """The features of one cycle at 8 kHz; None for a cycle shorter than three 16 ms frames."""
    import scipy.signal as ss

    h = ss.sosfilt(sos, np.asarray(x, np.float64))
    frames = np.lib.stride_tricks.sliding_window_view(h, 128)[::64]
    if frames.shape[0] < 3:
        return None
    d = frames - frames.mean(axis=1, keepdims=True)
    var = (d**2).mean(axis=1)
    kurt = (d**4).mean(axis=1) / np.maximum(var**2, 1e-20)
    c = h - h.mean()
    out = {"kurtosis 16 ms, mean": float(kurt.mean()), "kurtosis 16 ms, p90": float(np.percentile(kurt, 90)),
           "kurtosis, whole cycle": float((c**4).mean() / max(float((c**2).mean()) ** 2, 1e-20))}
    env = np.convolve(np.abs(h), np.ones(8) / 8, "same")[::8]  # 1 ms grid
    base = ss.medfilt(env, 51)
    seconds = x.shape[0] / RATE
    for k in (3, 5):
        peaks, _ = ss.find_peaks(env, height=k * np.maximum(base, 1e-9), distance=5)
        out[f"transients over {k}x median, per s"] = len(peaks) / seconds

    def level_steps(n: int) -> np.ndarray:
        f = np.lib.stride_tricks.sliding_window_view(h, n)[::n]
        return np.diff(10 * np.log10((f**2).mean(axis=1) + 1e-12))

    out["level step spread, 4 ms"] = float(np.std(level_steps(32)))
    coarse = level_steps(256)
    out["level step spread, 32 ms"] = float(np.std(coarse)) if coarse.size > 1 else 0.0
    return out


def measure(corpus_dir: str, data: str | None = None) -> dict[str, Any]:
    import scipy.signal as ss
    import soundfile as sf
    from acula.aligner.corpus import load_corpus
    from acula.aligner.primary import recording_of
    from acula.aligner.protocol import auroc, fit_probe, group_bootstrap, within_group_standardise

    corpus = load_corpus(corpus_dir, data)
    sos = ss.butter(4, [150, 2000], btype="band", fs=RATE, output="sos")
    feats, y, split, group, rec = [], [], [], [], []
    skipped = 0
    for i in corpus.indices(dataset="icbhi"):
        row = corpus.rows[i]
        if row["split"] not in SPLITS:
            continue
        x, rate = sf.read(str(corpus.audio_path(i)), dtype="float32", always_2d=True)
        if rate != RATE:
            raise ValueError(f"{row['record_id']}: {rate} Hz, the ICBHI cycles here are {RATE} Hz")
        f = cycle_features(x.mean(axis=1), sos)
        if f is None:
            skipped += 1
            continue
        feats.append(f)
        y.append(int(row["metadata"]["crackles"]))
        split.append(row["split"])
        group.append(row["group_id"])
        rec.append(recording_of(row))
    names = list(feats[0])
    X = np.array([[f[n] for n in names] for f in feats])
    Y, S, G, R = np.array(y), np.array(split), np.array(group), np.array(rec)

    def scored(m: np.ndarray, s: np.ndarray) -> dict[str, Any]:
        lo, hi = group_bootstrap(Y[m], s, G[m])
        return {"auroc": auroc(Y[m], s), "ci": [lo, hi], "within_recording": auroc(Y[m], within_group_standardise(
            s, R[m]))}

    # features as a list: the stored JSON sorts its keys, the table keeps this order
    out: dict[str, Any] = {"features": [], "n": {}, "skipped_short": skipped}
    for sp in SPLITS:
        m = S == sp
        out["n"][sp] = {"cycles": int(m.sum()), "crackles": int(Y[m].sum()), "patients": len(set(G[m]))}
    for j, name in enumerate(names):
        out["features"].append({"name": name, **{sp: scored(S == sp, X[S == sp, j]) for sp in SPLITS}})
    tr, va = S == "train", S == "val"
    probe = fit_probe(X[tr], Y[tr], G[tr])
    out["probe_val"] = scored(va, probe.decision_function(X[va]))
    return out


def to_markdown(r: dict[str, Any]) -> str:
    n = r["n"]
    L = ["# Do crackles show in fine time? (ICBHI cycles, hand-made features, no model)\n",
         "Generated by `python -m acula.benchmarks.crackle_fine_time --corpus runs/corpus`. "
         + "; ".join(f"{sp}: {n[sp]['cycles']} cycles, {n[sp]['crackles']} with crackles, {n[sp]['patients']} "
                     "patients" for sp in SPLITS)
         + f"; {r['skipped_short']} cycles under 24 ms left out. AUROC with its 95 % patient-bootstrap interval, and "
         "within recording (cycle scores standardised per recording). Test is not read.\n",
         "| feature | train AUROC | val AUROC | train within rec. | val within rec. |", "|---|---|---|---|---|"]

    def cell(v: dict[str, Any]) -> str:
        return f"{v['auroc']:.3f} [{v['ci'][0]:.2f}, {v['ci'][1]:.2f}]"

    for v in r["features"]:
        L.append(f"| {v['name']} | {cell(v['train'])} | {cell(v['val'])} | {v['train']['within_recording']:.3f} | "
                 f"{v['val']['within_recording']:.3f} |")
    p = r["probe_val"]
    L.append(f"| linear probe over all, fitted on train | - | {cell(p)} | - | {p['within_recording']:.3f} |")
    return "\n".join(L) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.crackle_fine_time", __doc__, argv)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--data", default=None, help="data root (default: the corpus's own)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    r = measure(args.corpus, args.data)
    r["command"] = "python -m acula.benchmarks.crackle_fine_time --corpus runs/corpus"
    write_results(f"{args.out}/crackle_fine_time.json", r, to_markdown)
    print(to_markdown(r), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
