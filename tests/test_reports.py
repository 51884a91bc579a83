"""Template reports: deterministic, varied, and never beyond the metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from acula.aligner.corpora import discover
from acula.aligner.records import Record
from acula.aligner.reports import NEGATING, NEUTRAL_OMITS, unfaithful_findings, write_template_report


def lung(**meta) -> Record:
    return Record("icbhi/x/c01", "icbhi", "x.flac", "lung", "icbhi:1", meta)


def test_report_is_deterministic_and_seeded():
    r = lung(crackles=1, wheezes=0, diagnosis="COPD", age=70.0, sex="male")
    assert write_template_report(r, seed=0) == write_template_report(r, seed=0)
    variants = {write_template_report(r, seed=s) for s in range(20)}
    assert len(variants) > 5


def test_report_uses_descriptive_terms_and_leaves_unknowns_out():
    text = write_template_report(lung(crackles=1, wheezes=0))
    assert "popping" in text or "clicking" in text
    assert "wheez" in text.lower()  # denied, since wheezes is known to be 0
    assert "year-old" not in text and "diagnos" not in text.lower()
    assert "wheez" not in write_template_report(lung(crackles=1)).lower()


def test_neutral_reports_name_no_device_and_negate_nothing():
    r = lung(crackles=1, wheezes=0, diagnosis="COPD", age=70.0, sex="male",
             recording_device="Welch Allyn Meditron stethoscope", chest_location="anterior left chest")
    for seed in range(20):
        full, neutral = write_template_report(r, seed), write_template_report(r, seed, "neutral")
        assert "Meditron" in full and "Meditron" not in neutral and "Welch Allyn" not in neutral
        assert "wheez" in full.lower() and "wheez" not in neutral.lower()  # the absent finding is not stated
        assert "popping" in neutral or "clicking" in neutral  # the present one is
        assert "COPD" in neutral and "anterior left chest" in neutral
        assert not NEGATING.search(neutral)
    assert write_template_report(r, 3, "neutral") == write_template_report(r, 3, "neutral")
    with pytest.raises(ValueError, match="report style"):
        write_template_report(r, 0, "terse")


def test_checker_catches_findings_the_metadata_lacks():
    assert unfaithful_findings("Crackles are heard.", {"crackles": 0})
    assert unfaithful_findings("Crackles are heard.", {})
    assert unfaithful_findings("No wheezes.", {})  # denying an unknown is a claim too
    assert unfaithful_findings("A cardiac murmur was noted.", {"murmur": "unknown", "outcome": "abnormal"})
    assert unfaithful_findings("Consistent with pneumonia.", {"diagnosis": "COPD"})
    assert unfaithful_findings("The heart sounds are abnormal.", {"outcome": "normal"})


def test_checker_accepts_faithful_reports():
    assert unfaithful_findings("Crackles present, no wheezes. COPD.", {"crackles": 1, "wheezes": 0,
                                                                     "diagnosis": "COPD"}) == []
    assert unfaithful_findings("Murmur absent; heart sounds are normal.", {"murmur": "absent",
                                                                           "outcome": "normal"}) == []
    assert unfaithful_findings("Sound of a fire crackling.", {"sound_class": "fire crackling"}) == []


@pytest.mark.shared_data
def test_every_template_report_on_the_real_corpus_is_faithful(data_dir: Path):
    records = discover(data_dir)
    problems = {r.record_id: p for r in records if (p := unfaithful_findings(write_template_report(r), r.metadata))}
    assert problems == {}
    texts = {r.modality: write_template_report(r) for r in records}
    assert set(texts) == {"heart", "lung", "cough", "breathing", "speech", "environment"}
    for r in records:
        neutral = write_template_report(r, style="neutral")
        assert unfaithful_findings(neutral, r.metadata) == []
        assert not NEGATING.search(neutral), neutral
        assert all(str(r.metadata[f]) not in neutral for f in NEUTRAL_OMITS if r.metadata.get(f)), neutral
