"""``acula export-mcu``: the firmware kit for a microcontroller stethoscope (C99 front end + TFLite Micro).

    acula export-mcu --bundle default --out kit/        (or: python -m acula.export.mcu ...)

The kit holds the bundle's int8 student as a C array (rewritten by :mod:`export.mcu_graph` so that TFLite
Micro's arena fits 64 KB; outputs bit-identical, checked at export), the streaming log-mel
front end in portable C99 (``export/mcu_kit/``) with its tables generated here
from the bundle's :class:`FrontendConfig` and the int8 model's input
quantisation, a header with the TFLite Micro op list, arena size and output
quantisation, a README for firmware engineers and ``kit.json``, which ties the
kit to the bundle by sha256.  Nothing here imports torch; LiteRT
(``ai-edge-litert``, the ``[tflite]`` extra) reads the graph, and TFLite Micro (``tflite-micro``, the
``[mcu]`` extra) measures the tensor arena when it is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from acula.export.mcu_graph import check_same_outputs, fold_pads
from acula.sdk.bundle import MANIFEST, Bundle, read_bundle, sha256_bytes
from acula.sdk.frontend import hann_window, sparse_filterbank
from acula.sdk.frontend_config import FrontendConfig
from acula.sdk.level import LevelShift, bundle_level

#: version 2: acula_model_data.c holds the bundle's graph rewritten by export.mcu_graph.fold_pads (kit.json "graph")
KIT_FORMAT, KIT_FORMAT_VERSION = "acula-mcu-kit", 2
#: copied verbatim from export/mcu_kit/
STATIC_SOURCES = ("acula_frontend.h", "acula_frontend.c", "acula_model_runner.h", "acula_model_runner.cc", "main.c")
GENERATED = ("acula_fe_tables.h", "acula_model_config.h", "acula_model_data.h", "acula_model_data.c", "README.md")
#: TFLite builtin op -> MicroMutableOpResolver method (the ops this exporter knows TFLM kernels for)
TFLM_RESOLVER = {
    "ADD": "AddAdd", "AVERAGE_POOL_2D": "AddAveragePool2D", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather", "HARD_SWISH": "AddHardSwish",
    "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean", "MUL": "AddMul", "PAD": "AddPad",
    "PADV2": "AddPadV2", "QUANTIZE": "AddQuantize", "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape",
    "SOFTMAX": "AddSoftmax", "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice", "TRANSPOSE": "AddTranspose",
}
#: ops with an optimised CMSIS-NN kernel in TFLM (the rest run TFLM's portable reference kernels)
CMSIS_NN_OPS = {"ADD", "AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "MUL",
                "SOFTMAX", "TRANSPOSE", "PAD"}


@dataclass(frozen=True)
class Quant:
    scale: float
    zero_point: int

    def dequantise(self, q: np.ndarray) -> np.ndarray:
        return ((np.asarray(q, np.float32) - self.zero_point) * np.float32(self.scale)).astype(np.float32)


@dataclass(frozen=True)
class GraphOp:
    name: str
    macs: int
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class GraphInfo:
    """What the firmware needs to know of one int8 TFLite graph."""

    ops: tuple[GraphOp, ...]
    input_shape: tuple[int, ...]
    input_quant: Quant
    embedding_output: int  # index among the subgraph outputs (TFLM's interpreter.output(i))
    heads_output: int
    embedding_quant: Quant
    heads_quant: Quant
    embed_dim: int
    n_heads: int

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def op_names(self) -> list[str]:
        return sorted({op.name for op in self.ops})


def _quant(detail: dict[str, Any]) -> Quant:
    scale, zero = detail["quantization"]
    if detail["dtype"] != np.int8 or scale == 0:
        raise ValueError(f"tensor {detail['name']!r} is not int8-quantised; the MCU kit needs the int8 student")
    return Quant(float(scale), int(zero))


def inspect_graph(tflite: bytes) -> GraphInfo:
    """Ops, multiply-adds per op (Conv2D, DepthwiseConv2D, FullyConnected) and I/O quantisation, read with LiteRT."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # without the default XNNPACK delegate, which would replace the graph's ops by one DELEGATE node
    interpreter = Interpreter(model_content=tflite,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interpreter.get_tensor_details()}
    ops = []
    for op in interpreter._get_ops_details():
        name, out = op["op_name"], shapes[int(op["outputs"][0])]
        weight = shapes[int(op["inputs"][1])] if len(op["inputs"]) > 1 and op["inputs"][1] >= 0 else ()
        macs = 0
        if name == "CONV_2D":  # weight (c_out, kh, kw, c_in)
            macs = int(np.prod(out)) * int(np.prod(weight[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # weight (1, kh, kw, c_out)
            macs = int(np.prod(out)) * int(np.prod(weight[1:3]))
        elif name == "FULLY_CONNECTED":  # weight (units, n_in)
            macs = int(np.prod(out)) * int(weight[-1])
        ops.append(GraphOp(name, macs, out))
    (inp,) = interpreter.get_input_details()
    outs = interpreter.get_output_details()  # in subgraph order, as TFLM numbers them
    emb = max(range(len(outs)), key=lambda i: int(np.prod(outs[i]["shape"])))
    heads = [i for i in range(len(outs)) if i != emb]
    if len(outs) != 2:
        raise ValueError(f"expected two outputs (embedding, heads), the graph has {len(outs)}")
    return GraphInfo(tuple(ops), tuple(int(d) for d in inp["shape"]), _quant(inp), emb, heads[0],
                     _quant(outs[emb]), _quant(outs[heads[0]]), int(np.prod(outs[emb]["shape"])),
                     int(np.prod(outs[heads[0]]["shape"])))


def tflm_arena_bytes(tflite: bytes, hi: int = 1 << 22) -> int | None:
    """Smallest tensor arena in which TFLite Micro allocates and invokes the graph (bisection, on this host);
    None when ``tflite_micro`` is not installed."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None

    def fits(n: int) -> bool:
        try:
            interp = runtime.Interpreter.from_bytes(tflite, arena_size=n)
            interp.invoke()
            return True
        except RuntimeError:
            return False

    lo = 1024
    with _quiet_stderr():  # TFLM reports every failed allocation on the C stderr
        if not fits(hi):
            raise RuntimeError(f"TFLite Micro cannot run the graph even in a {hi}-byte arena")
        while hi - lo > 16:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _f32(value: float) -> str:
    """A C float literal that rounds to exactly the float32 of ``value``."""
    text = format(float(np.float32(value)), ".9g")
    return (text if any(c in text for c in ".en") else text + ".0") + "f"


def _f64(value: float) -> str:
    """A C double literal (exact): tables of acula_fe_real_t round it to float at compile time in float builds."""
    return repr(float(value))


def _array(ctype: str, name: str, values: Sequence[str], per_line: int = 8) -> str:
    rows = [", ".join(values[i : i + per_line]) for i in range(0, len(values), per_line)]
    return f"static const {ctype} {name}[{len(values)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


def render_fe_tables(cfg: FrontendConfig, window_frames: int, hop_frames: int, input_quant: Quant,
                     source: str, level: LevelShift | None = None) -> str:
    """``acula_fe_tables.h``: front-end constants and tables, all derived from ``cfg`` (see sdk/frontend.py);
    ``level``: a level bundle's running-level shift (``ACULA_LEVEL_HISTORY``, ``ACULA_LEVEL_REF``)."""
    starts, widths, weights = [], [], []
    for s, band in sparse_filterbank(cfg):
        starts.append(str(s))
        widths.append(str(len(band)))
        weights += [_f64(w) for w in band]
    half = cfg.n_fft // 2
    angles = 2.0 * np.pi * np.arange(half) / cfg.n_fft
    bits = int(np.log2(half))
    bitrev = [str(int(format(i, f"0{bits}b")[::-1], 2)) for i in range(half)]
    # |1 - exp(-2 pi i k / n_fft)|^-4 = 1 / (16 sin^4(pi k / n_fft)): power of a frame's bin from that of the
    # frame's circular second difference (acula_frontend.c, pass 2)
    diff2_gain = [0.0] + [1.0 / (16.0 * np.sin(np.pi * k / cfg.n_fft) ** 4) for k in range(1, half + 1)]
    defines = {
        "ACULA_SAMPLE_RATE_HZ": f"{cfg.sample_rate_hz}u", "ACULA_N_FFT": f"{cfg.n_fft}u",
        "ACULA_HOP": f"{cfg.hop_length}u", "ACULA_N_MELS": f"{cfg.n_mels}u", "ACULA_N_FREQS": f"{cfg.n_freqs}u",
        "ACULA_WINDOW_FRAMES": f"{window_frames}u", "ACULA_HOP_FRAMES": f"{hop_frames}u",
        "ACULA_FE_AMIN_POWER": _f32(cfg.amin_power),
        # feature = log10(mel) * SCALE - SHIFT = (10 log10(mel) - norm_mean_db) / norm_std_db
        "ACULA_FE_SCALE": _f32(10.0 / cfg.norm_std_db), "ACULA_FE_SHIFT": _f32(cfg.norm_mean_db / cfg.norm_std_db),
        "ACULA_INPUT_SCALE": _f32(input_quant.scale), "ACULA_INPUT_ZERO_POINT": f"({input_quant.zero_point})",
    }
    if level is not None:  # sdk.level: the window moved by float(L - ref) before quantisation (acula_frontend.c)
        defines |= {"ACULA_LEVEL_HISTORY": f"{level.history_frames}u", "ACULA_LEVEL_REF": _f64(level.ref)}
        if level.floor is not None:  # keep_floor: digital silence stays at the floor cell
            defines["ACULA_LEVEL_FLOOR"] = _f32(level.floor)
        if level.low is not None:  # range_db: shifted cells raised to the relative floor
            defines["ACULA_LEVEL_LOW"] = _f32(level.low)
    lines = ["/* acula_fe_tables.h: generated by `acula export-mcu` from the bundle's FrontendConfig; do not edit.",
             f" * Source: {source}.  FrontendConfig: {cfg.to_json()}",
             " * Include acula_frontend.h, which defines acula_fe_real_t, rather than this file. */",
             "#ifndef ACULA_FE_TABLES_H", "#define ACULA_FE_TABLES_H", "#include <stdint.h>", ""]
    lines += [f"#define {k} {v}" for k, v in defines.items()]
    real = "acula_fe_real_t"  # float, or double with ACULA_FE_DOUBLE (acula_frontend.h)
    lines += ["", "/* periodic Hann window */", _array(real, "ACULA_FE_WINDOW", [_f64(v) for v in
                                                                                   hann_window(cfg.n_fft)]),
              "/* cos / sin of 2 pi k / ACULA_N_FFT, k < ACULA_N_FFT / 2 */",
              _array(real, "ACULA_FFT_COS", [_f64(v) for v in np.cos(angles)]),
              _array(real, "ACULA_FFT_SIN", [_f64(v) for v in np.sin(angles)]),
              "/* 1 / |1 - exp(-2 pi i k / ACULA_N_FFT)|^4, k <= ACULA_N_FFT / 2 (k = 0 unused) */",
              _array(real, "ACULA_FE_DIFF2_GAIN", [_f64(v) for v in diff2_gain]),
              "/* bit reversal of the ACULA_N_FFT / 2-point complex FFT */",
              _array("uint16_t", "ACULA_FFT_BITREV", bitrev, 16),
              "/* HTK mel filterbank, sparse: filter m spans bins [START[m], START[m] + WIDTH[m]) */",
              _array("uint16_t", "ACULA_FE_MEL_START", starts, 16),
              _array("uint16_t", "ACULA_FE_MEL_WIDTH", widths, 16),
              _array(real, "ACULA_FE_MEL_WEIGHTS", weights), "#endif /* ACULA_FE_TABLES_H */", ""]
    return "\n".join(lines)


def fe_state_bytes(cfg: FrontendConfig, window_frames: int, double: bool = False) -> int:
    """sizeof(acula_fe_t) (acula_frontend.h): samples, FFT scratch, power, frame, int8 window ring, counters."""
    real = 8 if double else 4
    return 4 * (cfg.n_fft + cfg.n_mels) + real * (cfg.n_fft + cfg.n_freqs) + window_frames * cfg.n_mels + 4 * 5


def arena_budget_bytes(measured: int | None) -> int:
    """The arena the kit reserves: the host measurement plus 4 KiB for CMSIS-NN scratch, rounded to 1 KiB
    (96 KiB when the arena was not measured)."""
    return 96 * 1024 if measured is None else -(-(measured + 4096) // 1024) * 1024


def render_model_config(info: GraphInfo, manifest: dict[str, Any], arena_measured: int | None) -> str:
    unknown = [op for op in info.op_names if op not in TFLM_RESOLVER]
    if unknown:
        raise ValueError(f"the graph uses ops {unknown} that this exporter has no TFLite Micro kernel for")
    cough = manifest.get("heads", {}).get("cough", {}).get("index", -1)
    screening = manifest.get("screening", {})
    adds = " ".join(f"(r).{TFLM_RESOLVER[op]}();" for op in info.op_names)
    lines = ["/* acula_model_config.h: generated by `acula export-mcu`; do not edit. */",
             "#ifndef ACULA_MODEL_CONFIG_H", "#define ACULA_MODEL_CONFIG_H", "",
             f"/* TFLite Micro ops of the graph: {', '.join(info.op_names)} */",
             f"#define ACULA_N_OPS {len(info.op_names)}",
             f"#define ACULA_ADD_OPS(r) do {{ {adds} }} while (0)",
             f"/* measured on the host with tflite-micro: {arena_measured} bytes; + 4 KiB for CMSIS-NN scratch */",
             f"#define ACULA_ARENA_BYTES {arena_budget_bytes(arena_measured)}u",
             f"#define ACULA_MACS_PER_WINDOW {info.macs}u", "",
             f"#define ACULA_OUTPUT_EMBEDDING {info.embedding_output}",
             f"#define ACULA_OUTPUT_HEADS {info.heads_output}",
             f"#define ACULA_EMBED_DIM {info.embed_dim}u", f"#define ACULA_N_HEADS {info.n_heads}u",
             f"#define ACULA_EMBEDDING_SCALE {_f32(info.embedding_quant.scale)}",
             f"#define ACULA_EMBEDDING_ZERO_POINT ({info.embedding_quant.zero_point})",
             f"#define ACULA_HEADS_SCALE {_f32(info.heads_quant.scale)}",
             f"#define ACULA_HEADS_ZERO_POINT ({info.heads_quant.zero_point})",
             f"#define ACULA_COUGH_HEAD ({cough}) /* -1: no cough head */", "",
             "/* the bundle's cough operating point (sdk.screening.EventDetector: hysteresis on window"
             " probabilities) */",
             f"#define ACULA_COUGH_ON {_f32(screening.get('cough_on', 0.5))}",
             f"#define ACULA_COUGH_OFF {_f32(screening.get('cough_off', 0.35))}",
             f"#define ACULA_COUGH_MIN_DURATION_S {_f32(screening.get('min_duration_s', 0.25))}",
             f"#define ACULA_COUGH_REFRACTORY_S {_f32(screening.get('refractory_s', 1.0))}", "",
             "#endif /* ACULA_MODEL_CONFIG_H */", ""]
    return "\n".join(lines)


def render_model_data(tflite: bytes, source: str) -> tuple[str, str]:
    """``acula_model_data.h`` (declarations) and ``acula_model_data.c`` (the flatbuffer as a 16-byte-aligned
    const array, which the linker places in flash)."""
    header = "\n".join([
        "/* acula_model_data.h: generated by `acula export-mcu`; do not edit. */",
        "#ifndef ACULA_MODEL_DATA_H", "#define ACULA_MODEL_DATA_H", "#ifdef __cplusplus", 'extern "C" {', "#endif",
        f"#define ACULA_MODEL_BYTES {len(tflite)}u",
        "extern const unsigned char acula_model_tflite[ACULA_MODEL_BYTES];",
        "#ifdef __cplusplus", "}", "#endif", "#endif /* ACULA_MODEL_DATA_H */", ""])
    hexes = [f"0x{b:02x}" for b in tflite]
    rows = [", ".join(hexes[i : i + 16]) for i in range(0, len(hexes), 16)]
    body = "\n".join([
        f"/* acula_model_data.c: generated by `acula export-mcu` from {source}; do not edit.",
        f" * sha256 {sha256_bytes(tflite)} */", '#include "acula_model_data.h"', "",
        "/* TFLite Micro needs the flatbuffer 16-byte aligned */",
        "#if defined(__GNUC__) || defined(__clang__)", "#define ACULA_ALIGN16 __attribute__((aligned(16)))", "#else",
        "#define ACULA_ALIGN16", "#endif",
        "const unsigned char acula_model_tflite[ACULA_MODEL_BYTES] ACULA_ALIGN16 = {",
        "    " + ",\n    ".join(rows), "};", ""])
    return header, body


def render_readme(template: str, kit: dict[str, Any], info: GraphInfo, manifest: dict[str, Any]) -> str:
    cfg = FrontendConfig.from_dict(kit["frontend"])
    screening = manifest.get("screening", {})
    arena = kit["tflm_arena_bytes_measured"]
    return string.Template(template).substitute(
        bundle_name=manifest.get("name") or kit["bundle"]["source"], model_file=kit["bundle"]["model_file"],
        model_sha256=kit["bundle"]["model_sha256"], model_bytes=kit["graph"]["bytes"],
        model_kb=f"{kit['graph']['bytes'] / 1000:.0f}", n_fft=cfg.n_fft, hop=cfg.hop_length,
        hop_ms=f"{1000 * cfg.hop_s:g}", rate=cfg.sample_rate_hz, n_mels=cfg.n_mels, f_min=f"{cfg.f_min_hz:g}",
        f_max=f"{cfg.f_max_hz:g}", amin=f"{cfg.amin_power:g}", norm_std=cfg.norm_std_db,
        norm_mean=f"- {cfg.norm_mean_db:g}" if cfg.norm_mean_db >= 0 else f"+ {-cfg.norm_mean_db:g}",
        in_scale=_f32(info.input_quant.scale)[:-1], in_zero=info.input_quant.zero_point,
        window_frames=kit["window_frames"], hop_frames=kit["hop_frames"],
        window_s=f"{((kit['window_frames'] - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate_hz:.3g}",
        hop_s=f"{kit['hop_frames'] * cfg.hop_s:.3g}", fe_state_bytes=fe_state_bytes(cfg, kit["window_frames"]),
        cough_on=screening.get("cough_on", 0.5), cough_off=screening.get("cough_off", 0.35),
        min_dur=screening.get("min_duration_s", 0.25), refractory=screening.get("refractory_s", 1.0),
        ops=", ".join(kit["ops"]), arena_reserved=kit["arena_bytes_reserved"],
        arena_note="not measured: install tflite-micro and re-export" if arena is None else
        f"{arena} bytes measured on a 64-bit host with tflite-micro, plus 4 KiB for CMSIS-NN scratch",
        macs_m=f"{info.macs / 1e6:.2f}")


def resolve_bundle(bundle: str | Path) -> Path:
    """A packaged bundle name (e.g. ``default``) or a path."""
    from acula.sdk.model import available_models

    if str(bundle) in available_models():
        return Path(str(resources.files("acula.sdk.models").joinpath(str(bundle))))
    return Path(bundle)


def write_kit(bundle: Bundle, bundle_path: Path, out: Path, measure_arena: bool = True) -> dict[str, Any]:
    """Write the kit into ``out``; returns its manifest (also written as ``kit.json``)."""
    m = bundle.manifest
    level = bundle_level(bundle)
    name, _ = bundle.model_file("tflite", "int8")
    tflite = bundle.files[name]
    graph = fold_pads(tflite)  # what the kit runs
    check_same_outputs(tflite, graph, int(m["window_frames"]))
    cfg = bundle.frontend
    info = inspect_graph(graph)
    window_frames, hop_frames = int(m["window_frames"]), int(m["hop_frames"])
    if info.input_shape[-2:] != (window_frames, cfg.n_mels):
        raise ValueError(f"the int8 graph takes {info.input_shape}, the manifest says ({window_frames}, {cfg.n_mels})")
    arena = tflm_arena_bytes(graph) if measure_arena else None
    source = f"{bundle_path.name}/{name}"
    data_h, data_c = render_model_data(graph, f"{source} (export.mcu_graph.fold_pads)")
    texts = {"acula_fe_tables.h": render_fe_tables(cfg, window_frames, hop_frames, info.input_quant, source, level),
             "acula_model_config.h": render_model_config(info, m, arena),
             "acula_model_data.h": data_h, "acula_model_data.c": data_c}
    kit_dir = resources.files("acula.export").joinpath("mcu_kit")
    texts |= {f: kit_dir.joinpath(f).read_text() for f in STATIC_SOURCES}
    manifest_bytes = (bundle_path / MANIFEST).read_bytes() if bundle_path.is_dir() else None
    kit: dict[str, Any] = {
        "format": KIT_FORMAT, "format_version": KIT_FORMAT_VERSION,
        "bundle": {"source": str(bundle_path), "name": m.get("name"),
                   "manifest_sha256": sha256_bytes(manifest_bytes) if manifest_bytes is not None else None,
                   "model_file": name, "model_sha256": sha256_bytes(tflite), "model_bytes": len(tflite)},
        # the graph in acula_model_data.c: the bundle's, PADs folded (export.mcu_graph), bit-identical outputs
        "graph": {"sha256": sha256_bytes(graph), "bytes": len(graph), "rewrite": "acula.export.mcu_graph.fold_pads"},
        "frontend": cfg.to_dict(), "window_frames": window_frames, "hop_frames": hop_frames,
        "level": level.to_manifest() if level is not None else None,  # sdk.level, in acula_fe_get_window
        "input_quantisation": asdict(info.input_quant), "ops": info.op_names,
        "macs_per_window": info.macs, "tflm_arena_bytes_measured": arena,
        "arena_bytes_reserved": arena_budget_bytes(arena),
    }
    texts["README.md"] = render_readme(kit_dir.joinpath("README.md.in").read_text(), kit, info, m)
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in texts.items():
        (out / fname).write_text(text)
    kit["files"] = {f: {"sha256": sha256_bytes(t.encode()), "bytes": len(t.encode())} for f, t in texts.items()}
    (out / "kit.json").write_text(json.dumps(kit, indent=2, sort_keys=True) + "\n")
    return kit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula export-mcu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default", help="packaged bundle name or bundle path (default: default)")
    parser.add_argument("--out", required=True, help="folder to write the kit into")
    parser.add_argument("--no-arena", action="store_true", help="skip the TFLite Micro arena measurement")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    path = resolve_bundle(args.bundle)
    kit = write_kit(read_bundle(path), path, Path(args.out), measure_arena=not args.no_arena)
    arena = kit["tflm_arena_bytes_measured"]
    print(f"wrote {len(kit['files']) + 1} files to {args.out}: model {kit['bundle']['model_bytes']} B, "
          f"{kit['macs_per_window'] / 1e6:.1f} M MACs per window, "
          f"arena {'not measured' if arena is None else f'{arena} B (host)'}, ops {', '.join(kit['ops'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
