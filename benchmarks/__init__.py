"""Latency, memory and accuracy harnesses that use only public APIs and exported files."""
