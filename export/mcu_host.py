"""Host tools for the firmware kit (:mod:`export.mcu`): build and run its C front end, run its graph on TFLite Micro.

The tests and ``benchmarks.mcu`` use these to check the kit against the SDK: the C front end is compiled with
:data:`GCC_FLAGS`, fed raw float32 samples through ``main.c`` and read back; the int8 graph runs in the
``tflite-micro`` Python wrapper around the real TFLM C++ interpreter (reference kernels on x86).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from acula.export.mcu import GraphInfo, inspect_graph

GCC_FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")


class ToolMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class HostBuild:
    exe: Path  # main.c harness linked with the front end
    obj: Path  # acula_frontend.o alone, for `size`
    n_mels: int
    window_frames: int


def build_frontend(kit: Path, build: Path, cc: str = "gcc", double: bool = False) -> HostBuild:
    """Compile ``acula_frontend.c`` and the ``main.c`` harness of a kit with :data:`GCC_FLAGS`
    (``double``: with ``-DACULA_FE_DOUBLE``).  A compiler error raises ``CalledProcessError`` with its output."""
    if shutil.which(cc) is None:
        raise ToolMissing(f"{cc} is not installed")
    build.mkdir(parents=True, exist_ok=True)
    flags = [*GCC_FLAGS, *(["-DACULA_FE_DOUBLE"] if double else [])]
    obj, exe = build / "acula_frontend.o", build / "acula_fe_demo"
    subprocess.run([cc, *flags, "-c", str(kit / "acula_frontend.c"), "-o", str(obj)], check=True,
                   capture_output=True, text=True)
    subprocess.run([cc, *flags, "-I", str(kit), str(kit / "main.c"), str(obj), "-lm", "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    tables = (kit / "acula_fe_tables.h").read_text()
    n_mels = int(tables.split("#define ACULA_N_MELS ")[1].split("u")[0])
    window = int(tables.split("#define ACULA_WINDOW_FRAMES ")[1].split("u")[0])
    return HostBuild(exe, obj, n_mels, window)


def section_sizes(obj: Path) -> dict[str, int]:
    """Bytes per section of an object file from ``size -A``: code (.text), tables (.rodata), data, bss."""
    if shutil.which("size") is None:
        raise ToolMissing("binutils' size is not installed")
    out = subprocess.run(["size", "-A", str(obj)], check=True, capture_output=True, text=True).stdout
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            for key in sizes:
                if parts[0] == f".{key}" or parts[0].startswith(f".{key}."):
                    sizes[key] += int(parts[1])
    return sizes


def _run(build: HostBuild, mode: str, samples: np.ndarray) -> tuple[bytes, str]:
    """The harness's output file and its stderr line."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.f32", Path(tmp) / "out.bin"
        np.ascontiguousarray(samples, dtype="<f4").tofile(src)
        done = subprocess.run([str(build.exe), mode, str(src), str(dst)], check=True, capture_output=True, text=True)
        return dst.read_bytes(), done.stderr


def fe_state_bytes_measured(build: HostBuild) -> int:
    """sizeof(acula_fe_t) in this build (on this host's ABI), as the harness reports it."""
    _, line = _run(build, "frames", np.zeros(16, np.float32))
    return int(line.split("sizeof(acula_fe_t)")[1].split()[0])


def c_frames(build: HostBuild, samples: np.ndarray) -> np.ndarray:
    """The C front end's normalised log-mel frames of 16 kHz samples, shape (n_frames, n_mels), float32."""
    return np.frombuffer(_run(build, "frames", samples)[0], dtype="<f4").reshape(-1, build.n_mels)


def c_windows(build: HostBuild, samples: np.ndarray) -> np.ndarray:
    """The C front end's int8 model input windows, shape (n_windows, window_frames, n_mels)."""
    raw = np.frombuffer(_run(build, "windows", samples)[0], dtype=np.int8)
    return raw.reshape(-1, build.window_frames, build.n_mels)


class TFLMBackend:
    """The int8 graph on TFLite Micro: ``backend(int8 windows) -> (embeddings, heads)``, dequantised float32,
    shapes (n, embed_dim) and (n, n_heads); the SDK backends' call signature, but on the model's int8 input."""

    name = "tflite-micro"

    def __init__(self, tflite: bytes, info: GraphInfo | None = None) -> None:
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError as exc:
            raise ToolMissing("TFLite Micro needs: pip install tflite-micro (the [mcu] extra)") from exc
        self.info = info or inspect_graph(tflite)
        self.interpreter = runtime.Interpreter.from_bytes(tflite)

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        info, embs, heads = self.info, [], []
        for w in np.asarray(windows, dtype=np.int8):
            self.interpreter.set_input(w[None], 0)
            self.interpreter.invoke()
            embs.append(info.embedding_quant.dequantise(self.interpreter.get_output(info.embedding_output)))
            heads.append(info.heads_quant.dequantise(self.interpreter.get_output(info.heads_output)))
        d = info.embed_dim
        return (np.concatenate(embs).reshape(-1, d) if embs else np.zeros((0, d), np.float32),
                np.concatenate(heads).reshape(-1, info.n_heads) if heads else np.zeros((0, info.n_heads), np.float32))


def quantise_windows(windows: np.ndarray, info: GraphInfo) -> np.ndarray:
    """Float feature windows -> the model's int8 input, as :class:`sdk.runtimes.TFLiteBackend` quantises them."""
    q = info.input_quant
    x = np.asarray(windows, dtype=np.float32)
    return np.clip(np.round(x / q.scale) + q.zero_point, -128, 127).astype(np.int8)
