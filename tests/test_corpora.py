"""Corpus adapters on tiny replicas of every layout, and on the real shared data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from acula.aligner.corpora import ADAPTERS, discover, from_csv_manifest, icbhi_recording_metadata
from acula.aligner.records import Record

from tests.replicas import make_data_root


@pytest.fixture(scope="module")
def replica(tmp_path_factory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data"))


def test_every_layout_yields_records_with_modality_and_group(replica: Path):
    records = discover(replica)
    counts = Counter(r.dataset for r in records)
    assert counts == {"coswara": 10, "physionet2016": 8, "icbhi": 14, "esc10": 4, "circor": 4, "kauh": 2}
    for r in records:
        assert (replica / r.path).is_file(), r.path
        assert r.group_id.count(":") == 1


def test_coswara_metadata_comes_from_participants_and_annotations(replica: Path):
    by_id = {r.record_id: r for r in ADAPTERS["coswara"](replica / "coswara")}
    cough = by_id["coswara/p1/cough-heavy"]
    assert cough.modality == "cough" and cough.group_id == "coswara:p1"
    assert cough.metadata["quality"] == 2 and cough.metadata["smoker"] is True and cough.metadata["asthma"] is False
    assert "fever" not in cough.metadata  # unknown stays out
    assert by_id["coswara/p2/vowel-a"].modality == "speech"
    assert by_id["coswara/p2/breathing-deep"].metadata["fever"] is True


def test_icbhi_names_decode_to_location_mode_and_device():
    meta = icbhi_recording_metadata("156_1b1_Pr_mc_LittC2SE")
    assert meta == {"patient": "156", "chest_location": "posterior right chest", "acquisition_mode": "multichannel",
                    "recording_device": "3M Littmann Classic II SE stethoscope"}
    with pytest.raises(ValueError, match="not an ICBHI recording name"):
        icbhi_recording_metadata("101_Al_Meditron")


def test_icbhi_official_layout_cuts_cycles_into_segments(replica: Path):
    records = ADAPTERS["icbhi_official"](replica / "icbhi_official")
    assert [(r.start_s, r.end_s) for r in records] == [(0.1, 1.5), (1.5, 3.2)]
    assert records[0].metadata["crackles"] == 1 and records[1].metadata["wheezes"] == 1
    assert records[0].metadata["diagnosis"] == "URTI" and records[0].metadata["age"] == 3


def test_circor_and_kauh_layouts(replica: Path):
    circor = ADAPTERS["circor"](replica / "circor")
    assert {r.metadata["murmur"] for r in circor} == {"present", "absent"}
    kauh = {r.metadata["diagnosis"]: r for r in ADAPTERS["kauh"](replica / "kauh")}
    assert kauh["Asthma"].metadata["wheezes"] == 1 and kauh["Asthma"].metadata["sex"] == "male"
    assert kauh["N"].metadata["crackles"] == 0


def test_csv_manifest_keeps_every_extra_column_as_metadata(tmp_path: Path):
    (tmp_path / "m.csv").write_text("path,modality,group_id,start_s,end_s,murmur\na.wav,heart,g1,0.5,2.0,present\n"
                                    "b.wav,lung,g2,,,\n")
    a, b = from_csv_manifest(tmp_path / "m.csv", "mine")
    assert a.metadata == {"murmur": "present"} and (a.start_s, a.end_s) == (0.5, 2.0)
    assert b.modality == "lung" and b.metadata == {}


def test_records_refuse_unknown_modality_and_inverted_segments():
    with pytest.raises(ValueError, match="modality"):
        Record("x", "d", "p", "elbow", "g")
    with pytest.raises(ValueError, match="segment"):
        Record("x", "d", "p", "lung", "g", start_s=2.0, end_s=1.0)


def test_unknown_data_set_name_is_refused(replica: Path):
    with pytest.raises(ValueError, match="unknown data sets"):
        discover(replica, ["icbhi_cycles", "mimic"])


@pytest.mark.shared_data
def test_real_data_adapters_find_every_file(data_dir: Path):
    counts = Counter(r.dataset for r in discover(data_dir))
    assert counts == {"coswara": 456, "physionet2016": 1099, "icbhi": 1969, "esc10": 400}


def test_frontend_statistics_sample_every_registered_data_set_present(replica: Path):
    from acula.aligner.frontend_stats import recordings

    files = recordings(replica)
    assert set(files) == {name for name in ADAPTERS if (replica / name).is_dir()}
    for name, paths in files.items():
        assert paths == sorted(set(paths)) and all(p.is_file() for p in paths), name
