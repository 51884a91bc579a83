"""The primary evaluation's per-record cache: outputs are computed once per system, transform and fingerprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from acula.aligner.corpus import load_corpus
from acula.aligner.system_cache import fingerprint_of, run_system
from acula.aligner.systems import SystemOutput


class CountingSystem:
    """A system whose output is the recording's length and RMS, counting the recordings it scored."""

    name = "counting system"
    kind = "frozen"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, samples: np.ndarray) -> SystemOutput:
        self.calls += 1
        rms = float(np.sqrt(np.mean(np.square(samples))))
        return SystemOutput(np.array([samples.size, rms], np.float32), {"cough": rms}, {"cough": 0.5})


@pytest.fixture(scope="module")
def corpus(tiny_corpus: Path):
    return load_corpus(tiny_corpus)


def test_a_second_run_reads_every_output_from_the_cache(corpus, tmp_path: Path):
    system, idx = CountingSystem(), list(range(4))
    first = run_system(system, corpus, idx, "none", tmp_path, "fp-1", progress=False)
    assert system.calls == 4
    again = run_system(system, corpus, idx, "none", tmp_path, "fp-1", progress=False)
    assert system.calls == 4  # nothing scored twice
    for i in idx:
        assert np.array_equal(first[i].features, again[i].features) and first[i].native == again[i].native


def test_a_new_fingerprint_or_transform_scores_again(corpus, tmp_path: Path):
    system, idx = CountingSystem(), [0, 1]
    run_system(system, corpus, idx, "none", tmp_path, "fp-1", progress=False)
    run_system(system, corpus, idx, "none", tmp_path, "fp-2", progress=False)
    assert system.calls == 4
    run_system(system, corpus, idx, "gain-6", tmp_path, "fp-2", progress=False)
    assert system.calls == 6


def test_only_the_records_missing_from_the_cache_are_scored(corpus, tmp_path: Path):
    system = CountingSystem()
    run_system(system, corpus, [0, 1], "none", tmp_path, "fp", progress=False)
    out = run_system(system, corpus, [0, 1, 2], "none", tmp_path, "fp", progress=False)
    assert system.calls == 3 and sorted(out) == [0, 1, 2]


def test_the_fingerprint_follows_the_name_and_the_spec():
    system = CountingSystem()
    assert fingerprint_of(system, {}) == fingerprint_of(system, {})
    assert fingerprint_of(system, {}) != fingerprint_of(system, {system.name: "runs/elsewhere"})
