"""Latency, memory and accuracy harnesses that use only public APIs and exported files.

Installed as acula.benchmarks (``python -m acula.benchmarks.readme``).  Unlike the other folders this one does
not refuse its folder name: pytest imports it as ``benchmarks`` to collect benchmarks/micro, and it holds no state.
"""
