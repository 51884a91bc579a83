"""Latency, memory and accuracy harnesses that use only public APIs and exported files."""

if __name__ != "acula.benchmarks":  # a second name would load a second copy of every module, with its own state
    raise ImportError(f"{__name__} installs as acula.benchmarks: import it by that name, "
                      "run the command line as python -m acula; scripts/namespace_imports.py rewrites old imports")
