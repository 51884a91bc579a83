"""Per-window compute of bundle students, side by side.

Multiply-adds are counted from each bundle's fp32 ONNX graph (convolutions and matrix products, shapes from ONNX
shape inference); inference time is measured on the int8 and fp32 ONNX graphs, one thread, with the bundles
alternated in blocks inside one process so that a slow phase of a shared machine hits every graph alike.

    python -m acula.benchmarks.student_compute --bundle default --bundle runs/distill-exp/narrow-kd1-3000/bundle \
        [--rounds 40] [--json OUT]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from acula.benchmarks._util import command_parser, machine_line


def count_macs(model_bytes: bytes) -> int:
    """Multiply-adds of one forward pass: Conv, Gemm and MatMul nodes (element-wise work is not counted)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    for value in model.graph.input:  # one window: a symbolic batch dimension becomes 1
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_value = 1
    model = onnx.shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight, out = shapes[node.input[1]], shapes[node.output[0]]
            total += int(np.prod(out)) * int(np.prod(weight[1:]))  # each output: in/groups x kernel terms
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            total += int(np.prod(out)) * a[-1]
    if total == 0:
        raise ValueError("no Conv, Gemm or MatMul node with known shapes in the graph")
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser, argv = command_parser("acula.benchmarks.student_compute", __doc__, argv)
    parser.add_argument("--bundle", action="append", required=True, help="bundle name or path (repeat to compare)")
    parser.add_argument("--rounds", type=int, default=40, help="alternating blocks of 50 windows per graph")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import onnxruntime as ort
    from acula.sdk.bundle import read_bundle
    from acula.sdk.model import _resolve

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    graphs, report = {}, []
    for name in args.bundle:
        bundle = read_bundle(_resolve(name))
        window = np.random.default_rng(0).standard_normal(
            (1, bundle.manifest["window_frames"], bundle.frontend.n_mels)).astype(np.float32)
        fp32, _ = bundle.model_file("onnxruntime", "fp32")
        report.append({"bundle": name, "macs_per_window": count_macs(bundle.files[fp32])})
        for precision in ("int8", "fp32"):
            file, _ = bundle.model_file("onnxruntime", precision)
            sess = ort.InferenceSession(bundle.files[file], opts, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: window}
            for _ in range(5):  # warm-up: the first runs allocate and pick kernels
                sess.run(None, feed)
            graphs[(name, precision)] = (sess, feed, [])
    for _ in range(args.rounds):
        for sess, feed, times in graphs.values():
            for _ in range(50):
                t0 = time.perf_counter()
                sess.run(None, feed)
                times.append(time.perf_counter() - t0)
    print(f"student compute a window, one thread, {machine_line()}; {args.rounds} alternating rounds")
    for row in report:
        for precision in ("int8", "fp32"):
            ms = np.asarray(graphs[(row["bundle"], precision)][2]) * 1e3
            row[f"{precision}_p50_ms"] = float(np.median(ms))
            row[f"{precision}_p90_ms"] = float(np.percentile(ms, 90))
        print(f"  {row['bundle']}: {row['macs_per_window'] / 1e6:.2f} M multiply-adds; int8 ONNX p50 "
              f"{row['int8_p50_ms']:.3f} ms (p90 {row['int8_p90_ms']:.3f}); fp32 ONNX p50 {row['fp32_p50_ms']:.3f} ms "
              f"(p90 {row['fp32_p90_ms']:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_line(), "rounds": args.rounds, "bundles": report},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
