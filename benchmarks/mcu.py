"""The microcontroller target: parity of the firmware kit with the SDK, and a budget per MCU.

    python -m acula.benchmarks.mcu [--bundle default] [--data ../shared/data] [--json]

Writes the kit (``export.mcu``) to a temporary folder, builds its C front end with gcc (float32 and
``-DACULA_FE_DOUBLE``) and checks, on real recordings at 16 kHz after the SDK's resampling:

* front end: C vs the SDK's float32 numpy engine and its float64 numba engine (max abs, normalised log-mel);
* TFLite Micro on the kit's graph (``export.mcu_graph.fold_pads``) vs LiteRT on the bundle's int8 graph, same int8
  windows (cosine per window, cough-head difference);
* end to end: C front end -> TFLM vs ``sdk.load(bundle, backend="tflite", precision="int8")`` (the same int8
  graph on LiteRT; onnxruntime's int8 kernels saturate on x86 CPUs without VNNI) on coughs and non-coughs:
  embedding cosine per window, cough probability, and the per-recording cough decision (any event from the
  bundle's detector, with the SDK's per-window signal-quality gate applied to both).

Measured: arena (TFLM on this host, the kit's graph and the bundle's), model bytes, MACs (from the graph),
front-end code and table size (``size`` on the x86-64 object), parity.  Estimated: cycles per target, from the
assumptions in :data:`TARGETS`.
``--json`` writes benchmarks/results/mcu.json and mcu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: per target: clock, cycles per int8 MAC in conv/FC kernels, cycles per float op of the front end, cycles per
#: byte of the reference-kernel ops (PAD, TRANSPOSE, RESHAPE, AVERAGE_POOL_2D), flash, RAM; the cycle figures are
#: assumptions (vendor kernel benchmarks of MobileNet-like int8 graphs), not measurements
TARGETS: tuple[dict[str, Any], ...] = (
    {"target": "Cortex-M4F @ 64 MHz (CMSIS-NN)", "clock_hz": 64e6, "cycles_per_mac": 1.5, "cycles_per_flop": 1.5,
     "cycles_per_byte_moved": 8.0, "flash_kb": 1024, "ram_kb": 256, "example": "nRF52840"},
    {"target": "Cortex-M7 @ 480 MHz (CMSIS-NN)", "clock_hz": 480e6, "cycles_per_mac": 1.0, "cycles_per_flop": 1.0,
     "cycles_per_byte_moved": 4.0, "flash_kb": 2048, "ram_kb": 1024, "example": "STM32H743"},
    {"target": "ESP32-S3 @ 240 MHz (ESP-NN)", "clock_hz": 240e6, "cycles_per_mac": 1.0, "cycles_per_flop": 2.0,
     "cycles_per_byte_moved": 6.0, "flash_kb": 8192, "ram_kb": 512, "example": "ESP32-S3 (512 KB SRAM)"},
)
#: code of the TFLM interpreter and the graph's 7 kernels with CMSIS-NN, an estimate from TFLM's size reports
TFLM_CODE_BYTES_ESTIMATE = 60_000
LOG10_FLOPS = 40  # a log10f call counted as this many float ops
#: recordings of the front-end parity table: heart 2 kHz, lung 8 kHz, cough 16 kHz, environment 44.1 kHz (as stored)
PARITY_GROUPS = ("heart", "lung", "cough", "environment")


def frontend_flops_per_frame(n_fft: int, n_mels: int, n_weights: int) -> int:
    """Float ops of one frame in acula_frontend.c, two passes (the windowed frame and its second difference,
    6 ops per sample with energies), each a radix-2 FFT of n_fft/2 points (10 per butterfly) and the split step
    with power (about 20 per bin); then sparse mel sums (2 per weight), log10 and the affine map."""
    half = n_fft // 2
    return (2 * (6 * n_fft + 10 * (half // 2) * int(np.log2(half)) + 20 * half) + 2 * n_weights
            + n_mels * (LOG10_FLOPS + 2))


def pick_files(data: Path) -> dict[str, list[Path]]:
    """A fixed handful of recordings per group (sorted, so the same files every run)."""
    def first(folder: Path, pattern: str, n: int) -> list[Path]:
        return sorted(folder.glob(pattern))[:n]

    coswara = sorted(p for p in (data / "coswara" / "audio").iterdir() if p.is_dir())
    esc = data / "esc10"
    return {
        "heart": first(data / "physionet2016" / "audio", "*.flac", 3),
        "lung": first(data / "icbhi_cycles" / "audio", "*.flac", 3),
        "cough": [c / "cough-heavy.flac" for c in coswara[:3]],
        # ESC-10 keeps its original 44.1 kHz: the shared rate the groups above do not cover
        "environment": [first(cls, "*.ogg", 1)[0] for cls in sorted(p for p in esc.iterdir() if p.is_dir())],
        "e2e_cough": first(data / "smith2006_cough" / "audio", "*.flac", 5),
        "e2e_noncough": [c / "breathing-deep.flac" for c in coswara[:5]]
        + [first(esc / cls, "*.ogg", 1)[0] for cls in ("001 - Dog bark", "004 - Baby cry", "006 - Person sneeze")],
    }


def frontend_parity(builds: dict[str, Any], groups: dict[str, list[Path]], config: Any) -> list[dict[str, Any]]:
    """Max abs difference of normalised log-mel frames per recording (plus synthetic noise and tones)."""
    from acula.export.mcu_host import c_frames
    from acula.sdk.frontend import LogMelFrontend

    from acula import sdk

    engines = {"numpy": LogMelFrontend(config), "numba": LogMelFrontend(config, engine="numba")}
    rng = np.random.default_rng(0)
    t = np.arange(48000) / config.sample_rate_hz
    synthetic = (0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    clips = [("synthetic", "noise + 220 Hz", synthetic)]
    clips += [(g, f"{p.parent.name}/{p.name}", sdk.load_audio(p).samples)
              for g in PARITY_GROUPS for p in groups.get(g, [])]
    rows = []
    for group, name, x in clips:
        ref = {k: fe(x) for k, fe in engines.items()}
        row: dict[str, Any] = {"group": group, "file": name, "n_frames": int(ref["numpy"].shape[0])}
        for build_name, build in builds.items():
            c = c_frames(build, x)
            for engine, r in ref.items():
                row[f"c_{build_name}_vs_{engine}"] = float(np.abs(c - r).max())
        row["numpy_vs_numba"] = float(np.abs(ref["numpy"] - ref["numba"]).max())
        rows.append(row)
    return rows


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def tflm_vs_litert(kit_graph: bytes, bundle_graph: bytes, windows_int8: np.ndarray) -> dict[str, float]:
    """The same int8 windows through TFLite Micro (the kit's graph) and LiteRT (the bundle's), dequantised."""
    from acula.export.mcu_host import TFLMBackend
    from acula.sdk.runtimes import TFLiteBackend

    tflm = TFLMBackend(kit_graph)
    emb_m, heads_m = tflm(windows_int8)
    litert = TFLiteBackend(bundle_graph)
    # feed LiteRT the exact int8 values: dequantise, and its own quantisation gives them back
    emb_l, heads_l = litert(tflm.info.input_quant.dequantise(windows_int8))
    cos = _cosines(emb_m, emb_l)
    return {"n_windows": int(windows_int8.shape[0]), "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "heads_max_abs": float(np.abs(heads_m - heads_l).max()),
            "embedding_bit_exact_fraction": float(np.mean(np.abs(emb_m - emb_l) < 1e-6))}


def end_to_end(build: Any, kit_graph: bytes, model: Any, groups: dict[str, list[Path]]) -> list[dict[str, Any]]:
    """C front end -> TFLM (the kit's graph) vs the SDK's screen(), per recording."""
    from acula.export.mcu_host import TFLMBackend, c_windows
    from acula.sdk.scoring import logit
    from acula.sdk.screening import EventDetector

    from acula import sdk

    tflm = TFLMBackend(kit_graph)
    rows = []
    for group in ("e2e_cough", "e2e_noncough"):
        for path in groups.get(group, []):
            x = sdk.load_audio(path).samples
            ref = model.screen(x, 16000)
            emb_c, heads_c = tflm(c_windows(build, x))
            if emb_c.shape[0] != len(ref.windows):
                raise AssertionError(f"{path.name}: C gave {emb_c.shape[0]} windows, the SDK {len(ref.windows)}")
            emb_s = np.stack([w.embedding for w in ref.windows])
            p_c = 1.0 / (1.0 + np.exp(-heads_c[:, model.cough_head]))
            detector, events = EventDetector(model.screening), []
            for w, p in zip(ref.windows, p_c, strict=True):  # the SDK's quality gate, on both paths
                events += detector.update(w.start_s, w.end_s, None if w.problems else float(p))
            events += detector.flush()
            p_s = np.array([np.nan if w.cough_probability is None else w.cough_probability for w in ref.windows])
            scored = ~np.isnan(p_s)
            cos = _cosines(emb_c, emb_s)
            # a scored window whose two probabilities lie on either side of the on- or off-threshold: the two
            # paths' int8 inputs differ by rounding ties (one LSB), which such a window turns into a decision
            thresholds = (model.screening.on, model.screening.off)
            lo, hi = np.minimum(p_c, p_s)[scored], np.maximum(p_c, p_s)[scored]
            straddles = bool(any(((lo < t) & (t <= hi)).any() for t in thresholds))
            rows.append({"group": "cough" if group == "e2e_cough" else "non-cough",
                         "file": f"{path.parent.name}/{path.name}",
                         "n_windows": int(emb_c.shape[0]), "cosine_min": float(cos.min()),
                         "cough_p_max_abs_diff": float(np.abs(p_c[scored] - p_s[scored]).max()) if scored.any()
                         else None,
                         # the same in logits: how far apart the two int8 paths are, whatever the sigmoid's slope there
                         "cough_logit_max_abs_diff": float(np.abs(logit(p_c[scored]) - logit(p_s[scored])).max())
                         if scored.any() else None,
                         "sdk_cough": bool(ref.events), "mcu_cough": bool(events),
                         "agree": bool(ref.events) == bool(events), "straddles_threshold": straddles})
    return rows


def budget(kit: dict[str, Any], info: Any, fe_sizes: dict[str, int], fe_state: int, n_weights: int) -> list[dict]:
    from acula.sdk.frontend_config import FrontendConfig

    cfg = FrontendConfig.from_dict(kit["frontend"])
    hop_s = kit["hop_frames"] * cfg.hop_s
    moved = sum(int(np.prod(op.output_shape)) for op in info.ops if op.macs == 0)  # int8 bytes, reference kernels
    fe_flops = frontend_flops_per_frame(cfg.n_fft, cfg.n_mels, n_weights) * kit["hop_frames"]
    arena = kit["tflm_arena_bytes_measured"] or kit["arena_bytes_reserved"]
    ram = arena + fe_state + kit["window_frames"] * cfg.n_mels + 4 * info.embed_dim
    flash = kit["graph"]["bytes"] + fe_sizes["text"] + fe_sizes["rodata"] + TFLM_CODE_BYTES_ESTIMATE
    rows = []
    for t in TARGETS:
        model_cycles = info.macs * t["cycles_per_mac"] + moved * t["cycles_per_byte_moved"]
        fe_cycles = fe_flops * t["cycles_per_flop"]
        seconds = (model_cycles + fe_cycles) / t["clock_hz"]
        rows.append({**t, "model_ms_per_hop": 1e3 * model_cycles / t["clock_hz"],
                     "frontend_ms_per_hop": 1e3 * fe_cycles / t["clock_hz"], "duty_cycle": seconds / hop_s,
                     "flash_bytes": flash, "ram_bytes": ram, "flash_fraction": flash / (t["flash_kb"] * 1024),
                     "ram_fraction": ram / (t["ram_kb"] * 1024)})
    return rows


def run(bundle_name: str, data: Path | None) -> dict[str, Any]:
    from acula.export.mcu import inspect_graph, resolve_bundle, tflm_arena_bytes, write_kit
    from acula.export.mcu_graph import fold_pads
    from acula.export.mcu_host import (
        build_frontend,
        c_windows,
        fe_state_bytes_measured,
        quantise_windows,
        section_sizes,
    )
    from acula.sdk.bundle import read_bundle

    from acula import sdk

    path = resolve_bundle(bundle_name)
    bundle = read_bundle(path)
    tflite = bundle.files[bundle.model_file("tflite", "int8")[0]]
    graph = fold_pads(tflite)  # the kit's graph (write_kit checks that its outputs equal the bundle graph's)
    info = inspect_graph(graph)
    with tempfile.TemporaryDirectory() as tmp:
        kit = write_kit(bundle, path, Path(tmp) / "kit")
        builds = {"float32": build_frontend(Path(tmp) / "kit", Path(tmp) / "f32"),
                  "double": build_frontend(Path(tmp) / "kit", Path(tmp) / "f64", double=True)}
        sizes = {k: section_sizes(b.obj) for k, b in builds.items()}
        state = {k: fe_state_bytes_measured(b) for k, b in builds.items()}
        tables = (Path(tmp) / "kit" / "acula_fe_tables.h").read_text()
        n_weights = int(tables.split("ACULA_FE_MEL_WEIGHTS[")[1].split("]")[0])
        groups = pick_files(data) if data is not None and data.is_dir() else {}
        kit["bundle"]["source"] = bundle_name  # not this machine's path
        out: dict[str, Any] = {"bundle": bundle_name, "kit": {k: v for k, v in kit.items() if k != "files"},
                               "macs_per_window": info.macs, "frontend_sizes": sizes, "frontend_state_bytes": state,
                               "frontend_parity": frontend_parity(builds, groups, bundle.frontend),
                               "tflm_arena_bytes_bundle_graph": tflm_arena_bytes(tflite)}
        model = sdk.load(path, backend="tflite", precision="int8")
        if groups:
            wins = [c_windows(builds["float32"], sdk.load_audio(p).samples) for g in ("heart", "lung", "cough")
                    for p in groups[g]]
            out["tflm_vs_litert"] = tflm_vs_litert(graph, tflite, np.concatenate(wins))
            out["end_to_end"] = end_to_end(builds["float32"], graph, model, groups)
        else:  # no data: TFLM vs LiteRT on synthetic windows only
            rng = np.random.default_rng(0)
            out["tflm_vs_litert"] = tflm_vs_litert(graph, tflite, quantise_windows(
                rng.standard_normal((8, kit["window_frames"], bundle.frontend.n_mels)), info))
        out["budget"] = budget(kit, info, sizes["float32"], state["float32"], n_weights)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2e}" if v and abs(v) < 1e-2 else f"{v:.4g}"
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
    return (["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows])


def render_markdown(r: dict[str, Any]) -> str:
    kit = r["kit"]
    f32 = r["frontend_sizes"]["float32"]
    arena = kit["tflm_arena_bytes_measured"]
    lines = ["# MCU target: TFLite Micro + C99 front end", "",
             f"Bundle `{r['bundle']}`, model `{kit['bundle']['model_file']}` ({kit['bundle']['model_bytes']} bytes, "
             f"sha256 `{kit['bundle']['model_sha256'][:16]}...`).  `python -m acula.benchmarks.mcu --json`.", "",
             "## Measured", "",
             f"* Ops (all with TFLM kernels; the graph allocates and runs in TFLM): {', '.join(kit['ops'])}.",
             f"* Multiply-adds per window (Conv2D, DepthwiseConv2D, FullyConnected, from the graph): "
             f"{r['macs_per_window']:,}.",
             f"* Tensor arena (TFLM, smallest that allocates and invokes, x86-64 host): {arena:,} bytes for the kit's "
             f"graph ({r['tflm_arena_bytes_bundle_graph']:,} bytes for the bundle's graph as converted)"
             if arena else "* Tensor arena: not measured (tflite-micro missing)",
             f"* Model flash: {kit['graph']['bytes']:,} bytes (the kit's graph, a const array; the bundle's file "
             f"{kit['bundle']['model_bytes']:,} bytes).",
             "* The kit's graph is the bundle's with its PAD ops folded (`export.mcu_graph.fold_pads`): torch's "
             "symmetric padding of a stride-2 convolution over an even height reads one pad row at the top, "
             "TFLite's SAME one at the bottom, so the graph mirrors the mel axis (a GATHER on the input, kernels "
             "mirrored along the height, pooled features' FC columns permuted) and the PAD before stage 2 becomes a "
             "SAME convolution.  Outputs are bit-identical on TFLM and LiteRT (checked at every export and in "
             "tests/test_mcu.py).",
             f"* Front end (`size -A` on acula_frontend.o, x86-64 gcc -O2): code {f32['text']:,} B, tables "
             f"{f32['rodata']:,} B; with ACULA_FE_DOUBLE code {r['frontend_sizes']['double']['text']:,} B, tables "
             f"{r['frontend_sizes']['double']['rodata']:,} B.  State `sizeof(acula_fe_t)`: "
             f"{r['frontend_state_bytes']['float32']:,} B (double {r['frontend_state_bytes']['double']:,} B); "
             "nothing is allocated.", "",
             "### Front-end parity (max abs difference, normalised log-mel; 16 kHz after the SDK's resampling from "
             "the stored 2, 8, 16 and 44.1 kHz)", ""]
    lines += _table(r["frontend_parity"], ["group", "file", "n_frames", "c_float32_vs_numpy", "c_float32_vs_numba",
                                           "c_double_vs_numba", "numpy_vs_numba"])
    lines += ["", "`numpy` is the SDK's default float32 engine, `numba` its float64 engine.  On heart and lung "
              "recordings (resampled from 2 and 8 kHz) the upper mel bands hold almost no energy, 100 dB and more "
              "below the frame's loudest band; a plain float32 FFT's rounding noise, which lands in every bin in "
              "proportion to the frame's energy, set their level (a few 1e-3 here before).  The C front end "
              "therefore takes each bin's power from two float32 FFTs, of the windowed frame and of its circular "
              "second difference (exact in float for smooth signals, orders of magnitude less energy when low "
              "frequencies dominate, divided back by |1 - W^k|^4), keeping per bin the one with the smaller error "
              "bound.  The largest difference left is ESC-10's rooster crow (1.1e-3 with a single FFT): strong "
              "mid-frequency harmonics with a mel band about 118 dB below the loudest between them, whose energy "
              "the second difference does not remove; only wider arithmetic (double, or float-float) would.  "
              "`-DACULA_FE_DOUBLE` (double-precision FPU, e.g. Cortex-M7) matches the float64 engine to "
              "~1e-7.", ""]
    t = r["tflm_vs_litert"]
    lines += ["### TFLite Micro vs LiteRT (same int8 windows)", "",
              f"{t['n_windows']} windows: embedding cosine min {t['cosine_min']:.6f} (mean {t['cosine_mean']:.6f}), "
              f"{100 * t['embedding_bit_exact_fraction']:.1f}% of embedding values identical, cough head max abs "
              f"difference {t['heads_max_abs']:.3g}.", ""]
    if "end_to_end" in r:
        e2e = r["end_to_end"]
        agree = sum(row["agree"] for row in e2e)
        lines += ["### End to end: C front end -> TFLM vs sdk.load(backend=\"tflite\", precision=\"int8\") screen "
                  "(LiteRT int8)", ""]
        lines += _table(e2e, ["group", "file", "n_windows", "cosine_min", "cough_p_max_abs_diff", "sdk_cough",
                              "mcu_cough", "agree"])
        lines += ["", f"Cough decisions agree on {agree} of {len(e2e)} recordings; embedding cosine min "
                  f"{min(row['cosine_min'] for row in e2e):.4f}.", ""]
    lines += ["## Budget per target (estimates)", "",
              "Cycles are estimated: MACs x cycles per MAC (CMSIS-NN / ESP-NN int8 kernels) + bytes written by the "
              "reference-kernel ops (PAD, TRANSPOSE, RESHAPE, pooling) x cycles per byte + front-end float ops per "
              f"hop x cycles per op.  One window per hop ({kit['hop_frames']} frames).  Flash = model + front end "
              f"(code + tables) + TFLM code (~{TFLM_CODE_BYTES_ESTIMATE // 1000} KB, estimated).  RAM = measured "
              "arena + front-end state + int8 window + float embedding.", ""]
    lines += _table(r["budget"], ["target", "cycles_per_mac", "model_ms_per_hop", "frontend_ms_per_hop",
                                  "duty_cycle", "flash_bytes", "flash_fraction", "ram_bytes", "ram_fraction"])
    met = arena is not None and arena <= 64 * 1024
    lines += ["", f"Goals of issue #27: arena <= 64 KB ({'met' if met else 'not met'}: {arena:,} B; the activation "
              "plan's peak is now the stage-1 output and the stage-2 depthwise output, 1x32x31x32 + 1x16x16x32 int8 "
              "= 39,936 B, where the bundle's graph needed 1x32x31x32 + 1x34x33x32 = 67,648 B for the PAD between "
              "them; the rest, about 18 KB, is TFLM's persistent data: per-channel requantisation, op data, tensor "
              "structs); model flash <= 256 KB "
              f"({'met' if kit['graph']['bytes'] <= 256 * 1024 else 'not met'}: {kit['graph']['bytes']:,} B).", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.mcu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data", default=os.environ.get("ACULA_DATA", str(shared)),
                        help="shared data folder (default: $ACULA_DATA or ../shared/data)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/mcu.json and mcu.md")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    result = run(args.bundle, Path(args.data))
    text = render_markdown(result)
    print(text)
    if args.json:
        out = Path(__file__).parent / "results"
        (out / "mcu.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "mcu.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
