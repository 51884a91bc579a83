"""acula align end to end on a tiny corpus: runs, resumes, and matches under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from acula.aligner.checkpoint import load_checkpoint  # noqa: E402
from acula.aligner.config import PRESETS, resolve_config  # noqa: E402
from acula.aligner.train import main as align_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# tiny_corpus and tiny_teacher (an acula align --config tiny-test run on it) are session fixtures (conftest.py)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_writes_safetensors_config_and_metrics(tiny_teacher: Path):
    out = tiny_teacher  # the session's acula align --config tiny-test run
    state, meta = load_checkpoint(out)
    assert meta["step"] == PRESETS["tiny-test"].max_steps and meta["align_config"]["name"] == "tiny-test"
    assert any(k.startswith("encoder.") for k in state) and "text_proj.weight" in state
    rows = metrics(out)
    assert [r["step"] for r in rows] == list(range(PRESETS["tiny-test"].max_steps))
    assert all(r["loss"] == pytest.approx(r["cka"] + 0.5 * r["mask"], rel=1e-5) for r in rows)


def test_the_vit_trains_as_a_masked_autoencoder_with_the_alignment_terms(tiny_corpus: Path, tmp_path: Path):
    """The opera-gt-gpu architecture through acula align: the masked term is an MAE reconstruction (it used to be
    dropped silently for the ViT), and the run's checkpoint evaluates."""
    import numpy as np
    from acula.aligner.evaluate import AlignedEncoder

    cfg = tmp_path / "vit.json"
    cfg.write_text(json.dumps({"preset": "tiny-test", "name": "vit-test", "encoder": "vit", "w_nce": 0.5,
                               "mask_ratio": 0.75, "max_steps": 2}))
    out = tmp_path / "run"
    assert align_main(["--config", str(cfg), "--corpus", str(tiny_corpus), "--out", str(out)]) == 0
    rows = metrics(out)
    assert len(rows) == 2 and all(r["mask"] > 0 for r in rows)
    assert all(r["loss"] == pytest.approx(r["cka"] + 0.5 * r["nce"] + 0.5 * r["mask"], rel=1e-5) for r in rows)
    state, _ = load_checkpoint(out)
    assert "encoder.decoder_pred.weight" in state and "encoder.blocks.11.attn.qkv.weight" in state
    pooled, joint = AlignedEncoder(str(out))(np.random.default_rng(0).normal(size=(80, 64)).astype(np.float32))
    assert np.isfinite(pooled).all() and joint.shape == (PRESETS["tiny-test"].embed_dim,)


def test_same_seed_gives_the_same_losses_and_resume_continues(tiny_corpus: Path, tmp_path: Path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    align_main(["--config", "tiny-test", "--corpus", str(tiny_corpus), "--out", str(a)])
    align_main(["--config", "tiny-test", "--corpus", str(tiny_corpus), "--out", str(b), "--max-steps", "2"])
    assert load_checkpoint(b)[1]["step"] == 2
    align_main(["--config", "tiny-test", "--corpus", str(tiny_corpus), "--out", str(b)])  # resumes at step 2
    assert [r["step"] for r in metrics(b)] == [0, 1, 2, 3]
    for x, y in zip(metrics(a), metrics(b), strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
    capsys.readouterr()
    align_main(["--config", "tiny-test", "--corpus", str(tiny_corpus), "--out", str(b)])  # finished: nothing to do
    out = capsys.readouterr()
    assert "at step 4 of 4" in out.err and len(metrics(b)) == 4
    assert json.loads(out.out.strip().splitlines()[-1])["final"]["loss"] == pytest.approx(metrics(b)[-1]["loss"])


def test_resuming_under_a_different_config_is_refused(tiny_corpus: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    align_main(["--config", "tiny-test", "--corpus", str(tiny_corpus), "--out", str(run), "--max-steps", "2"])
    changed = _json(tmp_path, {"preset": "tiny-test", "lr": 0.5})
    assert align_main(["--config", str(changed), "--corpus", str(tiny_corpus), "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert "different config" in err and "lr:" in err and "--fresh" in err
    assert load_checkpoint(run)[1]["step"] == 2  # untouched
    assert align_main(["--config", str(changed), "--corpus", str(tiny_corpus), "--out", str(run), "--fresh"]) == 0


def test_unknown_config_is_refused(tmp_path: Path, capsys):
    assert align_main(["--config", "nope", "--corpus", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "neither a preset" in capsys.readouterr().err
    with pytest.raises(ValueError, match="pooling"):
        resolve_config(str(_json(tmp_path, {"pooling": "max"})))
    with pytest.raises(ValueError, match=r"unknown AlignConfig fields: \['max_step'\]"):
        resolve_config(str(_json(tmp_path, {"max_step": 10})))
    with pytest.raises(ValueError, match="unknown preset 'opera-gt-gpus'"):  # was: silently the default preset
        resolve_config(str(_json(tmp_path, {"preset": "opera-gt-gpus"})))


def _json(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process_on_the_same_global_batch(tiny_corpus: Path, tmp_path: Path):
    cfg = _json(tmp_path, {"preset": "tiny-test", "name": "ddp-test", "tiny_norm": "group", "w_nce": 0.5,
                           "batch_size": 8, "max_steps": 3})
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    common = ["-m", "acula.aligner.train", "--config", str(cfg), "--corpus", str(tiny_corpus), "--device", "cpu"]
    single = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], env=env, capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          *common, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert len(one) == len(two) == 3
    for x, y in zip(one, two, strict=True):
        for key in ("cka", "nce", "mask", "loss"):
            assert x[key] == pytest.approx(y[key], rel=1e-4, abs=1e-5), (key, x, y)


def test_distillation_resumes_where_it_stopped_and_matches_an_uninterrupted_run(tiny_corpus: Path,
                                                                                  tiny_teacher: Path,
                                                                                  tmp_path: Path, capsys):
    from acula.distill.train import main as distill_main

    teacher = tiny_teacher
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--teacher", str(teacher), "--corpus", str(tiny_corpus), "--config", "tiny-test"]
    assert distill_main([*common, "--out", str(a)]) == 0
    assert distill_main([*common, "--out", str(b), "--max-steps", "2"]) == 0
    assert load_checkpoint(b)[1]["step"] == 2
    capsys.readouterr()
    assert distill_main([*common, "--out", str(b)]) == 0  # resumes at step 2: weights and optimizer state
    assert "resuming" in capsys.readouterr().err
    assert [r["step"] for r in metrics(b)] == [r["step"] for r in metrics(a)]
    for x, y in zip(metrics(a), metrics(b), strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
    for name, tensor in load_checkpoint(a)[0].items():
        assert torch.allclose(tensor, load_checkpoint(b)[0][name], atol=1e-6), name


def test_a_level_normalised_teacher_embeds_the_same_at_any_gain_and_reconstructs_what_it_sees():
    """level_norm_db takes the absolute level out of the encoder's input in training and in every embedding:
    the same crop 20 dB quieter (a constant shift of the normalised log-mel) embeds identically, and the masked
    term's target is the normalised input, not the raw one."""
    import dataclasses

    from acula.aligner.model import AcuLaModel
    from acula.aligner.train import loss_terms

    cfg = dataclasses.replace(PRESETS["tiny-test"], level_norm_db=60.0)
    torch.manual_seed(0)
    model = AcuLaModel(cfg, text_dim=8).eval()
    x = torch.rand(2, cfg.crop_frames, 64) * 1.2 - 0.5  # a 44 dB span: the 60 dB floor never bites
    quieter = x - 20.0 / 36.8
    assert torch.allclose(model.embed_audio(x), model.embed_audio(quieter), atol=1e-5)
    plain = AcuLaModel(dataclasses.replace(cfg, level_norm_db=None), text_dim=8).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain.embed_audio(x), plain.embed_audio(quieter), atol=1e-3)
    mask = model.patch_mask(2, torch.Generator().manual_seed(0))
    text = torch.randn(2, 8)
    assert torch.allclose(loss_terms(model, x, text, mask)["mask"], loss_terms(model, quieter, text, mask)["mask"],
                          atol=1e-5)
    with pytest.raises(ValueError, match="level_norm_db"):
        dataclasses.replace(cfg, level_norm_db=5.0)
    from acula.distill.student import StudentConfig

    with pytest.raises(ValueError, match="level_norm_db"):  # the student's config shares the bound
        StudentConfig(level_norm_db=5.0)
