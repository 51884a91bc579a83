"""Helpers shared by the benchmark commands: their command line, single-thread runs and robust timing."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from acula.sdk.bench import machine_line
from acula.sdk.runtimes import BACKENDS

__all__ = ["add_model_options", "command_parser", "emit_json", "ensure_single_thread", "machine_line", "median_ms",
           "time_call", "write_results"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def ensure_single_thread(module: str, argv: list[str]) -> None:
    """Re-run ``python -m module argv`` with every thread pool pinned to one thread.

    Thread pools read these variables when numpy / numba first load, so they
    must be set before the process imports them; re-executing is the only
    reliable way from inside a command.
    """
    if all(os.environ.get(v) == "1" for v in THREAD_VARS):
        return
    env = dict(os.environ, **{v: "1" for v in THREAD_VARS})
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def command_parser(module: str, doc: str | None, argv: Sequence[str] | None, single_thread: bool = True
                   ) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of ``python -m module`` (its docstring as the description) and the arguments it will parse
    (``argv``, else the process's); with ``single_thread`` the process first re-runs itself single-threaded."""
    args = list(sys.argv[1:] if argv is None else argv)
    if single_thread:
        ensure_single_thread(module, args)
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, args


def add_model_options(parser: argparse.ArgumentParser, backend: bool = True) -> None:
    """``--bundle``, ``--backend`` and ``--precision`` of the commands that load one bundle through ``sdk.load``."""
    parser.add_argument("--bundle", default="default")
    if backend:
        parser.add_argument("--backend", default="onnxruntime", choices=sorted(BACKENDS))
    parser.add_argument("--precision", default="auto",
                        help="int8, fp32 or auto (default: what sdk.load picks on this device, as users get it)")


def time_call(fn: Callable[[], object], repeats: int = 30, warmup: int = 3) -> list[float]:
    """Wall time of each call in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median_ms(times_s: list[float]) -> float:
    return statistics.median(times_s) * 1e3


def write_results(path: str | Path, results: dict[str, Any], markdown: Callable[[dict[str, Any]], str]) -> None:
    """``path`` (JSON, sorted keys) and the table beside it (same stem, .md), rendered from the same dict."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    out.with_suffix(".md").write_text(markdown(results))


def emit_json(results: dict[str, Any], dest: str | None, indent: int = 2, newline: bool = False) -> None:
    """A command's ``--json [OUT]``: ``"-"`` prints the JSON to stdout (the command's tables then go to stderr),
    a path writes it there (ending in a newline with ``newline``), None writes nothing."""
    if not dest:
        return
    text = json.dumps(results, indent=indent)
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n" if newline else text)
