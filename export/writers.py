"""ONNX and TFLite writers for the student, fp32 and int8.

* ONNX fp32: ``torch.onnx.export``; batch norm is folded by the exporter.
* ONNX int8: onnxruntime static quantisation in QDQ format (per-channel int8
  weights, uint8 activations) calibrated on real corpus windows.  Dynamic
  quantisation of convolutions was measured 5x slower here and is not offered.
* TFLite fp32 / int8: litert-torch (no GPU needed); int8 through PT2E static
  quantisation calibrated on the same windows.

Every graph maps one window (1, window_frames, n_mels) to (embedding, head logits)
and holds no hidden state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from acula.distill.student import StreamingStudent

INPUT_NAME = "logmel"
OUTPUT_NAMES = ("embedding", "heads")


def export_onnx(model: torch.nn.Module, example: torch.Tensor, input_name: str, path: Path) -> Path:
    """fp32 ONNX of ``model`` (eval mode) with a dynamic batch axis and the student's outputs."""
    torch.onnx.export(model.eval(), (example,), str(path), input_names=[input_name], output_names=list(OUTPUT_NAMES),
                      dynamic_axes={name: {0: "batch"} for name in (input_name, *OUTPUT_NAMES)},
                      opset_version=17, dynamo=False)
    return path


def export_onnx_fp32(student: StreamingStudent, path: Path) -> Path:
    cfg = student.cfg
    return export_onnx(student, torch.zeros(1, cfg.window_frames, cfg.n_mels), INPUT_NAME, path)


class _Calibration:
    """onnxruntime CalibrationDataReader over calibration windows."""

    def __init__(self, windows: np.ndarray) -> None:
        self._it: Iterator[np.ndarray] = iter(windows)

    def get_next(self) -> dict[str, np.ndarray] | None:
        nxt = next(self._it, None)
        return None if nxt is None else {INPUT_NAME: nxt[None].astype(np.float32)}


def head_nodes(fp32_path: Path) -> list[str]:
    """Names of the nodes that write the graph's ``heads`` output (the cough logit the screening threshold reads)."""
    import onnx

    graph = onnx.load(str(fp32_path)).graph
    return [n.name for n in graph.node if OUTPUT_NAMES[1] in n.output]


def export_onnx_int8(fp32_path: Path, path: Path, calibration: np.ndarray, percentile: float | None = 99.999,
                     float_heads: bool = True) -> Path:
    """calibration: (n, window_frames, n_mels) float32 windows from the corpus.  Activation ranges are the
    ``percentile`` of the calibration histogram (None: min/max).  With ``float_heads`` the head layer (one small
    Gemm, 336 bytes more) stays float, so the cough logit is not rounded to an int8 step; both choices were made
    on the validation windows by the 99th percentile of the cough-logit error against fp32
    (``python -m acula.benchmarks.int8_export``, ``benchmarks/results/int8_export.md``).  ``reduce_range`` stays
    on: onnxruntime's u8s8 kernels saturate on x86 CPUs without VNNI otherwise."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepped = path.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32_path), str(prepped))
    method = CalibrationMethod.MinMax if percentile is None else CalibrationMethod.Percentile
    extra = {} if percentile is None else {"CalibPercentile": percentile}
    quantize_static(str(prepped), str(path), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8, calibrate_method=method, extra_options=extra,
                    nodes_to_exclude=head_nodes(fp32_path) if float_heads else [])
    prepped.unlink()
    return path


def export_tflite(student: StreamingStudent, path: Path, calibration: np.ndarray | None = None) -> Path:
    """fp32 when ``calibration`` is None, else int8 (PT2E static, histogram observers, per-channel weights).  The
    observers need the rarer windows in ``calibration``: ``acula export`` gives 1024
    (``export.cli.TFLITE_CALIBRATION_WINDOWS``), where 256 left cough windows' logits 1.2-1.4 off at the 99th
    percentile."""
    import litert_torch

    student = student.eval()
    cfg = student.cfg
    example = (torch.zeros(1, cfg.window_frames, cfg.n_mels),)
    if calibration is None:
        model = litert_torch.convert(student, example)
    else:
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True,
                                                                                 is_dynamic=False))
        graph = torch.export.export(student, example).module()
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for window in calibration:
                prepared(torch.from_numpy(np.ascontiguousarray(window[None], dtype=np.float32)))
        converted = convert_pt2e(prepared, fold_quantize=False)
        model = litert_torch.convert(converted, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    model.export(str(path))
    return path
