"""The kit's copy of the int8 student, rewritten so that TFLite Micro needs a smaller tensor arena; same outputs.

The student's stride-2 convolutions pad symmetrically (torch ``padding=1``), which the converter writes as a PAD
op followed by a VALID convolution.  A PAD's output lives in the arena next to its input, and the one after stage
1 sets the arena's peak: 1x32x31x32 + 1x34x33x32 int8 = 67,648 B of the 85,611 B measured.  TFLite's own SAME
padding needs no PAD op, but over an even height a stride-2 SAME convolution pads one row at the bottom, where
torch pads one at the top (torch's bottom row is never read).  Mirrored along the height, torch's padding *is*
SAME.  So the rewrite runs the convolutional part upside down, every step exact in int8:

* a GATHER reverses the mel axis of the input (the model input itself is unchanged);
* every convolution kernel is mirrored along its height (the rows of a sum are the same integers);
* a PAD + VALID convolution whose padding equals SAME in the mirrored layout becomes a SAME convolution (the
  convolution then reads the input's zero point where the PAD wrote it); the other PADs pad the mirrored rows;
* average pooling over whole row blocks mirrors its output rows; the fully connected layers that read the
  flattened pooled tensor take their weight columns in the mirrored order.

:func:`fold_pads` refuses, with a sentence, a graph that does not follow this pattern.  ``tests/test_mcu.py``
checks that the rewritten graph's outputs equal the bundle graph's bit for bit, on TFLite Micro and on LiteRT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_same_outputs", "fold_pads"]

_SPATIAL = ("CONV_2D", "DEPTHWISE_CONV_2D")
_ELEMENTWISE_PASS = ("TRANSPOSE", "RESHAPE")


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TFLite's SAME padding (before, after) of one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pack_aligned(model: Any, size_hint: int) -> bytes:
    """Serialise a ModelT with every buffer's data 16-byte aligned, as the schema's ``force_align: 16`` asks
    (the generated Python packer aligns them to 1 byte; int32 biases must be aligned on cores without unaligned
    loads, e.g. the ESP32-S3's Xtensa)."""
    import flatbuffers

    s = _schema()

    class AlignedBuffer(s.BufferT):  # type: ignore[name-defined]
        def Pack(self, builder: Any) -> int:  # noqa: N802 (the schema's name)
            data = None
            if self.data is not None and len(self.data):
                payload = bytes(bytearray(self.data))
                builder.StartVector(1, len(payload), 16)
                builder.head -= len(payload)
                builder.Bytes[builder.head : builder.head + len(payload)] = payload
                builder.vectorNumElems = len(payload)
                data = builder.EndVector()
            s.BufferStart(builder)
            if data is not None:
                s.BufferAddData(builder, data)
            s.BufferAddOffset(builder, self.offset)
            s.BufferAddSize(builder, self.size)
            return int(s.BufferEnd(builder))

    for i, buf in enumerate(model.buffers):
        aligned = AlignedBuffer()
        aligned.data, aligned.offset, aligned.size = buf.data, buf.offset, buf.size
        model.buffers[i] = aligned
    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def fold_pads(tflite: bytes) -> bytes:
    """The graph with PAD ops folded into SAME convolutions where the mirrored layout allows (module docstring)."""
    s = _schema()
    model = s.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    if len(model.subgraphs) != 1:
        raise ValueError(f"fold_pads handles one subgraph, the graph has {len(model.subgraphs)}")
    g = model.subgraphs[0]
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op: Any) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    def const(index: int) -> np.ndarray:
        t = g.tensors[index]
        dtype = {s.TensorType.INT8: np.int8, s.TensorType.INT32: np.int32, s.TensorType.INT64: np.int64}[t.type]
        return np.frombuffer(bytes(bytearray(model.buffers[t.buffer].data)), dtype=dtype).reshape(t.shape)

    def new_const(values: np.ndarray, name: str) -> int:
        buf = s.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
        model.buffers.append(buf)
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = list(values.shape), s.TensorType.INT32, len(model.buffers) - 1, name
        g.tensors.append(t)
        return len(g.tensors) - 1

    def set_const(index: int, values: np.ndarray) -> None:
        """Overwrite a constant (in a buffer of its own when the converter shared its buffer between tensors)."""
        data = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
        if sum(t.buffer == g.tensors[index].buffer for t in g.tensors) > 1:
            model.buffers.append(s.BufferT())
            g.tensors[index].buffer = len(model.buffers) - 1
        model.buffers[g.tensors[index].buffer].data = data

    def opcode(name: str, version: int) -> int:
        code = getattr(s.BuiltinOperator, name)
        for i, c in enumerate(model.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
                return i
        c = s.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), version
        model.operatorCodes.append(c)
        return len(model.operatorCodes) - 1

    ops = list(g.operators)
    consumers: dict[int, list[Any]] = {}
    for op in ops:
        for i in op.inputs:
            consumers.setdefault(int(i), []).append(op)

    # 1. mirror the mel axis of the input: the last axis of (1, window_frames, n_mels)
    (inp,) = [int(i) for i in g.inputs]
    in_shape = [int(d) for d in g.tensors[inp].shape]
    mel_axis = len(in_shape) - 1
    gathered = s.TensorT()
    src = g.tensors[inp]
    gathered.shape, gathered.type, gathered.name = list(src.shape), src.type, "acula_fold_pads/mirrored_input"
    gathered.quantization, gathered.buffer = src.quantization, 0
    g.tensors.append(gathered)
    gathered_index = len(g.tensors) - 1
    indices = new_const(np.arange(in_shape[mel_axis] - 1, -1, -1, dtype=np.int32), "acula_fold_pads/mel_reversed")
    gather = s.OperatorT()
    gather.opcodeIndex = opcode("GATHER", 2)
    gather.inputs, gather.outputs = [inp, indices], [gathered_index]
    gather.builtinOptionsType = s.BuiltinOptions.GatherOptions
    gather.builtinOptions = s.GatherOptionsT()
    gather.builtinOptions.axis = mel_axis
    for op in consumers.get(inp, []):
        op.inputs = [gathered_index if int(i) == inp else int(i) for i in op.inputs]

    # 2. follow the mirrored axis through the graph, op by op (they are stored in execution order)
    axis_of: dict[int, int] = {gathered_index: mel_axis}  # tensor -> its mirrored axis
    flat_perm: dict[int, np.ndarray] = {}  # flattened tensor -> order of the unmirrored elements
    kept: list[Any] = [gather]
    folded: list[Any] = []  # convolutions made SAME here: their padding is SAME in the mirrored layout
    for op in ops:
        name, ins, outs = op_name(op), [int(i) for i in op.inputs], [int(i) for i in op.outputs]
        x = ins[0]
        if x not in axis_of and x not in flat_perm:
            if any(i in axis_of or i in flat_perm for i in ins):
                raise ValueError(f"fold_pads: {name} reads a mirrored tensor in a way it cannot follow")
            kept.append(op)
            continue
        out_shape = [int(d) for d in g.tensors[outs[0]].shape]
        if name == "TRANSPOSE" and x in axis_of:
            perm = [int(p) for p in const(ins[1])]
            axis_of[outs[0]] = perm.index(axis_of[x])
        elif name == "RESHAPE" and x in axis_of:
            a, in_dims = axis_of[x], [int(d) for d in g.tensors[x].shape]
            if in_dims[: a + 1] == out_shape[: a + 1] and np.prod(in_dims[a + 1 :]) == np.prod(out_shape[a + 1 :]):
                axis_of[outs[0]] = a  # the dims up to the mirrored one are unchanged
            else:  # a flattening: record which unmirrored element each position holds
                order = np.flip(np.arange(int(np.prod(in_dims))).reshape(in_dims), a).reshape(out_shape)
                flat_perm[outs[0]] = order.reshape(-1)
        elif name == "TRANSPOSE" and x in flat_perm:
            raise ValueError("fold_pads: a TRANSPOSE after the flattening is not supported")
        elif name == "PAD":
            if axis_of[x] != 1 or len(out_shape) != 4:
                raise ValueError("fold_pads: a PAD outside the NHWC convolution stack")
            pads = const(ins[1]).astype(int)
            (conv,) = consumers[outs[0]]
            if op_name(conv) not in _SPATIAL or conv.builtinOptions.padding != s.Padding.VALID:
                raise ValueError("fold_pads: a PAD that does not feed a VALID convolution")
            opt = conv.builtinOptions
            kh, kw = (int(d) for d in g.tensors[int(conv.inputs[1])].shape[1:3])
            h, w = (int(d) for d in g.tensors[x].shape[1:3])
            out_h, out_w = (int(d) for d in g.tensors[int(conv.outputs[0])].shape[1:3])
            unread_h = out_shape[1] - ((out_h - 1) * opt.strideH + kh)
            unread_w = out_shape[2] - ((out_w - 1) * opt.strideW + kw)
            # rows the convolution reads, mirrored: (bottom - unread, top)
            mirrored_h = (int(pads[1, 1]) - unread_h, int(pads[1, 0]))
            read_w = (int(pads[2, 0]), int(pads[2, 1]) - unread_w)
            if pads[0].any() or pads[3].any():
                raise ValueError("fold_pads: a PAD of the batch or channel axis")
            if (mirrored_h == _same_padding(h, kh, opt.strideH) and read_w == _same_padding(w, kw, opt.strideW)):
                conv.inputs = [x if int(i) == outs[0] else int(i) for i in conv.inputs]
                opt.padding = s.Padding.SAME
                folded.append(conv)
                continue  # the PAD op is dropped; its output tensor is left unused
            new_pads = pads.copy()
            new_pads[1] = mirrored_h
            new_pads[2] = read_w
            op.inputs = [x, new_const(new_pads.astype(np.int32), f"acula_fold_pads/paddings_{len(g.tensors)}")]
            padded = g.tensors[outs[0]]
            padded.shape = [out_shape[0], h + sum(mirrored_h), w + sum(read_w), out_shape[3]]
            if padded.shapeSignature is not None and len(padded.shapeSignature):
                padded.shapeSignature = list(padded.shape)
            axis_of[outs[0]] = 1
        elif name in _SPATIAL:
            if axis_of[x] != 1:
                raise ValueError(f"fold_pads: {name} over a mirrored axis other than the height")
            opt = op.builtinOptions
            kh = int(g.tensors[ins[1]].shape[1])
            if opt.padding == s.Padding.SAME and not any(op is c for c in folded):
                before, after = _same_padding(int(g.tensors[x].shape[1]), kh, opt.strideH)
                if before != after:
                    raise ValueError(f"fold_pads: {name} with SAME padding that is not symmetric over the height")
            set_const(ins[1], np.ascontiguousarray(const(ins[1])[:, ::-1]))
            axis_of[outs[0]] = 1
        elif name == "AVERAGE_POOL_2D":
            opt, h = op.builtinOptions, int(g.tensors[x].shape[1])
            if axis_of[x] != 1 or opt.padding != s.Padding.VALID or opt.filterHeight != opt.strideH \
                    or h % opt.strideH:
                raise ValueError("fold_pads: an average pool that does not tile the height in whole blocks")
            axis_of[outs[0]] = 1
        elif name == "FULLY_CONNECTED" and x in flat_perm:
            weights = const(ins[1])
            set_const(ins[1], np.ascontiguousarray(weights[:, flat_perm[x]]))
            kept.append(op)
            continue
        else:
            raise ValueError(f"fold_pads: {name} on a mirrored tensor is not supported")
        kept.append(op)
    outputs = {int(i) for i in g.outputs}
    if outputs & set(axis_of) or outputs & set(flat_perm):
        raise ValueError("fold_pads: a graph output is still mirrored")
    g.operators = kept
    return _pack_aligned(model, len(tflite) + 4096)


def check_same_outputs(original: bytes, rewritten: bytes, window_frames: int, n_windows: int = 4) -> None:
    """Raise ``ValueError`` unless both graphs give identical int8 outputs on seeded random windows (LiteRT,
    reference kernels: no XNNPACK delegate)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def run(model: bytes, windows: np.ndarray) -> list[np.ndarray]:
        it = Interpreter(model_content=model,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        (inp,), outs = it.get_input_details(), it.get_output_details()
        got = []
        for w in windows:
            it.set_tensor(inp["index"], w[None])
            it.invoke()
            got += [it.get_tensor(o["index"]).copy() for o in outs]
        return got

    rng = np.random.default_rng(0)
    probe = Interpreter(model_content=original)
    shape = tuple(int(d) for d in probe.get_input_details()[0]["shape"][1:])
    if shape[0] != window_frames:
        raise ValueError(f"the graph takes {shape}, expected {window_frames} frames")
    windows = rng.integers(-128, 128, size=(n_windows, *shape), dtype=np.int8)
    for a, b in zip(run(original, windows), run(rewritten, windows), strict=True):
        if not np.array_equal(a, b):
            raise ValueError("the rewritten graph's outputs differ from the bundle graph's; not writing the kit")
