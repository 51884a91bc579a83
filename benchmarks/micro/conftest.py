"""Ratio checks for the micro-benchmarks: each subject's time over a fixed reference workload timed in the same
run, compared with the ratio stored in ``benchmarks/baselines/micro_ratios.json``.

A ratio, not an absolute time, so a baseline stored on one CPU still means something on another and a busy
shared machine slows both sides alike.  Not entirely: int8 kernels run at another speed against the FFT on a
CPU with VNNI than on one with AVX2 alone (TFLite int8: 0.14 against 0.46 x the reference), so ratios are
stored per CPU class (``cpu_class``); on a class with none stored the largest stored ratio is the reference.
``--micro-save-ratios`` rewrites this CPU class's stored ratios from this run; ``--micro-tolerance`` (default
3) is how many times the stored ratio a subject may reach before it fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

RATIOS = Path(__file__).resolve().parents[1] / "baselines" / "micro_ratios.json"
_REFERENCE_INPUT = np.random.default_rng(0).standard_normal(2**16)
_MEASURED: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("micro", "micro-benchmark ratio checks")
    group.addoption("--micro-save-ratios", action="store_true",
                    help=f"store this run's subject / reference ratios in {RATIOS.name}")
    group.addoption("--micro-tolerance", type=float, default=3.0,
                    help="fail when a ratio exceeds the stored one times this (default 3)")


def cpu_class() -> str:
    """The vector extensions that decide int8 speed: 'vnni' (AVX-VNNI too: Zen 5, Sapphire Rapids), 'avx512vnni'
    (AVX-512 VNNI alone: Zen 4, Cascade / Ice Lake, whose front end measured 2-3x the Zen 5 ratio), 'avx512',
    'avx2', else the machine name."""
    import platform

    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith(("flags", "Features"))).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    for name, wanted in (("vnni", {"avx_vnni"}), ("avx512vnni", {"avx512_vnni"}), ("avx512", {"avx512f"}),
                         ("avx2", {"avx2"})):
        if flags & wanted:
            return name
    return platform.machine() or "unknown"


def stored_ratios() -> dict[str, dict[str, float]]:
    """{cpu class: {test: ratio}} (a flat file of an older format was measured on a VNNI CPU)."""
    data = json.loads(RATIOS.read_text()) if RATIOS.is_file() else {}
    if data and all(isinstance(v, (int, float)) for v in data.values()):
        return {"vnni": data}
    return data


def reference_s(repeats: int = 20) -> float:
    """Fastest of ``repeats`` runs of a fixed single-threaded workload (a 65,536-point real FFT), after one
    untimed run.  Single-threaded on purpose: a BLAS matmul would scale with the thread pool, not the core."""
    np.fft.rfft(_REFERENCE_INPUT)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.fft.rfft(_REFERENCE_INPUT)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.fixture
def against_reference(request: pytest.FixtureRequest, benchmark: Any) -> Iterator[Callable[..., Any]]:
    """``against_reference(fn, *args)``: warm ``fn`` up, benchmark it for about ``budget_s`` (7 rounds at
    least), then check its fastest round over the reference's fastest run (timed before and after, the faster
    kept) against the stored ratio."""
    name = request.node.name
    by_class = stored_ratios()
    here = by_class.get(cpu_class(), {})
    stored = {k: here.get(k, max(r[k] for r in by_class.values() if k in r))
              for k in {k for r in by_class.values() for k in r}}

    def run(fn: Callable[..., Any], *args: Any, warmup: int = 3, budget_s: float = 0.2) -> Any:
        t0 = time.perf_counter()
        for _ in range(warmup):
            fn(*args)
        call_s = (time.perf_counter() - t0) / warmup
        # fixed rounds, not pytest-benchmark's time budget: CI's --benchmark-max-time=0.01 would leave a
        # millisecond subject one round, and one preempted round reads as a regression
        iterations = max(1, int(20e-6 / max(call_s, 1e-9)))
        rounds = int(np.clip(budget_s / max(call_s * iterations, 1e-9), 7, 500))
        before = reference_s()
        result = benchmark.pedantic(fn, args=args, rounds=rounds, iterations=iterations)
        ref = min(before, reference_s())
        ratio = benchmark.stats.stats.min / ref
        _MEASURED[name] = ratio
        benchmark.extra_info.update({"reference_s": ref, "ratio_to_reference": ratio})
        if not request.config.getoption("--micro-save-ratios"):
            if name not in stored:
                pytest.fail(f"no stored ratio for {name} in {RATIOS}; store one with --micro-save-ratios")
            limit = stored[name] * request.config.getoption("--micro-tolerance")
            assert ratio <= limit, (f"{name}: {ratio:.2f} x the reference workload, stored {stored[name]:.2f} "
                                    f"(limit {limit:.2f}): a regression, or rerun on a quieter machine")
        return result

    yield run


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.getoption("--micro-save-ratios", default=False) and _MEASURED:
        by_class = stored_ratios()
        here = by_class.setdefault(cpu_class(), {})
        here.update({k: round(v, 3) for k, v in sorted(_MEASURED.items())})
        by_class[cpu_class()] = dict(sorted(here.items()))
        RATIOS.write_text(json.dumps(dict(sorted(by_class.items())), indent=2) + "\n")
