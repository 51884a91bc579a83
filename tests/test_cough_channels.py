"""cough_channels: every bundle through every channel, by the real cough screening on real audio files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from acula import sdk


def tiny_corpus(tmp: Path) -> Path:
    """Two val recordings: the shipped real cough (at its own 44.1 kHz rate) and a synthetic breath at 16 kHz."""
    from acula.sdk.synth import synth_recording

    audio = tmp / "audio"
    audio.mkdir()
    cough = sdk.load_audio(Path(sdk.__file__).parent / "data" / "cough_smith2006_p05.flac", None)
    sf.write(audio / "cough.wav", cough.samples, cough.sample_rate_hz)
    breath, _ = synth_recording(6.0, seed=2)
    sf.write(audio / "breath.wav", np.asarray(breath, np.float32), 16000)
    corpus = tmp / "corpus"
    corpus.mkdir()
    rows = [{"path": "cough.wav", "split": "val", "modality": "cough", "group_id": "p1"},
            {"path": "breath.wav", "split": "val", "modality": "breathing", "group_id": "p2"},
            {"path": "breath.wav", "split": "test", "modality": "breathing", "group_id": "p3"}]
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (corpus / "corpus.json").write_text(json.dumps({"data_root": str(audio)}))
    return corpus


def test_every_bundle_and_channel_is_screened_and_tabled(tmp_path: Path):
    from acula.benchmarks.cough_channels import main
    from acula.benchmarks.cough_screening import main as screening

    corpus = tiny_corpus(tmp_path)
    out = tmp_path / "results"
    assert main(["--corpus", str(corpus), "--bundle", "a=default", "--bundle", "b=default", "--name", "cc",
                 "--out", str(out)]) == 0
    data = json.loads((out / "cc.json").read_text())
    assert list(data["runs"]) == ["a", "b"] and list(data["runs"]["a"]) == ["clean", "8k", "mulaw8k"]
    for channel, r in data["runs"]["a"].items():
        assert r["groups"]["cough (phone)"]["n"] == 1 and r["groups"]["breathing + speech (phone)"]["n"] == 1
        assert r == data["runs"]["b"][channel]  # the same bundle gives the same counts
        # the same counts as cough_screening's own run for that channel
        args = ["--corpus", str(corpus), "--splits", "val", "--yamnet", "", "--json", str(tmp_path / f"{channel}.json")]
        assert screening(args + ([] if channel == "clean" else ["--phone", channel])) == 0
        own = json.loads((tmp_path / f"{channel}.json").read_text())
        assert {g: v["flagged"] for g, v in r["groups"].items()} == {g: v["flagged"] for g, v in own["groups"].items()}
    assert data["runs"]["a"]["clean"]["groups"]["cough (phone)"]["flagged"] == 1  # the real cough is found
    md = (out / "cc.md").read_text()
    on = data["runs"]["a"]["mulaw8k"]["operating_point"]["cough_on"]
    assert f"| a | {on} | mulaw8k |" in md and data["command"].startswith("python -m acula.benchmarks.cough_channels")
