"""Distillation pieces: the cough-head weak-label weights and the masked head loss."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from acula.aligner.checkpoint import check_resumable  # noqa: E402
from acula.distill.student import StreamingStudent, StudentConfig  # noqa: E402
from acula.distill.task import DistillWeights  # noqa: E402
from acula.distill.train import DEFAULT_STUDENT, PRESETS, DistillConfig, cough_head_weights, resolve  # noqa: E402
from acula.sdk.frontend_config import FrontendConfig  # noqa: E402


def spy_model_inputs(monkeypatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Records, for every distillation step from now on, (the student's input, the teacher's input)."""
    from acula.distill.task import DistillTask

    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    forward = DistillTask.forward

    def spy(self, logmel, head_targets, head_weights=None, teacher_logmel=None, labels=None, head_logmel=None):
        seen.append((logmel.detach().clone(), (logmel if teacher_logmel is None else teacher_logmel).detach().clone()))
        return forward(self, logmel, head_targets, head_weights, teacher_logmel, labels, head_logmel)

    monkeypatch.setattr(DistillTask, "forward", spy)
    return seen


def inputs_with_and_without(monkeypatch, teacher, corpus, out, **option
                            ) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """One tiny distillation step with ``option`` set and one without: each step's (student input, teacher input)."""
    import acula.distill.train as train

    seen = spy_model_inputs(monkeypatch)
    base = dataclasses.replace(PRESETS["tiny-test"], max_steps=1)
    train.distill(dataclasses.replace(base, **option), teacher, corpus, out / "with", progress=False)
    train.distill(base, teacher, corpus, out / "plain", progress=False)
    return seen[-2], seen[-1]


class _Bank:
    def __init__(self, feats: dict[int, np.ndarray]) -> None:
        self.feats = feats

    def get(self, i: int) -> np.ndarray:
        return self.feats[i]


def test_quiet_crops_of_cough_recordings_leave_the_head_loss() -> None:
    front = FrontendConfig()
    quiet = np.full((100, 64), -1.0, np.float32)
    burst = quiet.copy()
    burst[40:45] = 1.0  # one cough, 73.6 dB above the floor
    bank = _Bank({0: burst, 1: quiet})
    is_cough = np.array([1.0, 0.0], np.float32)
    chosen = np.array([0, 0, 1])
    crops = np.stack([burst[30:60], burst[60:90], quiet[0:30]])
    w = cough_head_weights(bank, chosen, crops, is_cough, front, 6.0, {})
    assert w.tolist() == [1.0, 0.0, 1.0]  # burst kept, gap dropped, negative kept
    assert cough_head_weights(bank, chosen, crops, is_cough, front, None, {}).tolist() == [1.0, 1.0, 1.0]
    # a crop 5 dB below the peak is still a positive at 6 dB, not at 4 dB
    near = crops[1].copy()
    near[0] = 1.0 - 5.0 / front.norm_std_db
    assert cough_head_weights(bank, chosen[:1], near[None], is_cough, front, 6.0, {})[0] == 1.0
    assert cough_head_weights(bank, chosen[:1], near[None], is_cough, front, 4.0, {})[0] == 0.0


def test_masked_head_loss_ignores_weighted_out_windows() -> None:
    from acula.aligner.config import PRESETS
    from acula.aligner.model import AcuLaModel
    from acula.distill.task import DistillTask

    torch.manual_seed(0)
    teacher = AcuLaModel(PRESETS["tiny-test"], 8)
    student = StreamingStudent(StudentConfig(channels=(8, 16), strides=(2, 2), embed_dim=32, window_frames=32,
                                             hop_frames=15))
    task = DistillTask(teacher, student, torch.nn.functional.normalize(torch.randn(5, 32), dim=-1)).eval()
    x = torch.randn(4, 32, 64)
    y = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    full = task(x, y)["head"]
    masked = task(x, y, torch.tensor([[1.0], [1.0], [0.0], [0.0]]))["head"]
    pair = task(x[:2], y[:2])["head"]
    assert torch.allclose(masked, pair, atol=1e-6)
    assert not torch.allclose(masked, full)
    # the teacher's target from its own input: the student's terms change, the head term (student only) does not
    moved = task(x, y, teacher_logmel=x + 1.0)
    same = task(x, y, teacher_logmel=x)
    assert torch.allclose(same["cos"], task(x, y)["cos"]) and not torch.allclose(moved["cos"], same["cos"])
    assert torch.allclose(moved["head"], full)


def test_a_vit_teacher_sees_the_students_window_tiled_to_its_input_length() -> None:
    from acula.aligner.config import PRESETS
    from acula.aligner.model import AcuLaModel
    from acula.distill.task import DistillTask

    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS["tiny-test"], encoder="vit", crop_frames=64)
    teacher = AcuLaModel(cfg, 8).eval()
    student = StreamingStudent(StudentConfig(channels=(8, 16), strides=(2, 2), embed_dim=32, window_frames=30,
                                             hop_frames=15))
    task = DistillTask(teacher, student, torch.nn.functional.normalize(torch.randn(5, 32), dim=-1)).eval()
    x = torch.randn(2, 30, 64)
    terms = task(x, torch.zeros(2, 1))
    assert all(torch.isfinite(v) for v in terms.values())
    with torch.no_grad():
        tiled = torch.cat([x, x, x[:, :4]], 1)  # 30 + 30 + 4 = the teacher's 64 frames
        assert torch.allclose(teacher.embed_audio(x), teacher.embed_audio(tiled))
        with pytest.raises(ValueError, match="at most 64 frames"):
            teacher.embed_audio(torch.randn(1, 65, 64))


def test_prompt_groups_cover_each_label_set() -> None:
    from acula.distill.prompts import label_sets
    from acula.distill.train import prompt_groups

    sets = label_sets()
    texts = sorted({p for labels in sets.values() for prompts in labels.values() for p in prompts})
    groups = prompt_groups(texts)
    assert len(groups) == len(sets)
    for g, labels in zip(groups, sets.values(), strict=True):
        assert {texts[k] for k in g} == {p for prompts in labels.values() for p in prompts}


def test_kd_per_label_set_differs_from_one_softmax() -> None:
    from acula.aligner.config import PRESETS
    from acula.aligner.model import AcuLaModel
    from acula.distill.task import DistillTask

    torch.manual_seed(0)
    teacher = AcuLaModel(PRESETS["tiny-test"], 8)
    student = StreamingStudent(StudentConfig(channels=(8, 16), strides=(2, 2), embed_dim=32, window_frames=32,
                                             hop_frames=15))
    prompts = torch.nn.functional.normalize(torch.randn(6, 32), dim=-1)
    x, y = torch.randn(3, 32, 64), torch.zeros(3, 1)
    one = DistillTask(teacher, student, prompts).eval()(x, y)["kd"]
    split = DistillTask(teacher, student, prompts, prompt_groups=[[0, 1, 2], [3, 4, 5]]).eval()(x, y)["kd"]
    assert float(one) >= 0 and float(split) >= 0
    assert not torch.allclose(one, split)


@pytest.mark.parametrize("option, value, phrase", [("activation", "gelu", "GELU"), ("activation", "swish", "swish"),
                                                   ("norm", "layer", "LayerNorm"), ("norm", "instance", "stream"),
                                                   ("embed_rank", 512, "embed_rank")])
def test_options_that_break_streaming_export_or_quantisation_are_refused(option: str, value: object,
                                                                         phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        StudentConfig(**{option: value})


def test_the_parameter_budget_is_enforced() -> None:

    with pytest.raises(ValueError, match="max_params"):
        StreamingStudent(StudentConfig(channels=(64, 128, 256, 512), strides=(2, 2, 2, 2)))


def test_an_embedding_bottleneck_spends_parameters_on_the_trunk_and_exports(tmp_path) -> None:
    from acula.export.cli import run_onnx
    from acula.export.writers import export_onnx_fp32

    torch.manual_seed(0)
    flat = StreamingStudent(StudentConfig(channels=(16, 32), strides=(2, 2)))
    low = StreamingStudent(StudentConfig(channels=(16, 32), strides=(2, 2), embed_rank=16))
    n_flat, n_low = (sum(p.numel() for p in m.embed.parameters()) for m in (flat, low))
    assert n_low == 64 * 16 + 16 * 512 + 512 < n_flat == 64 * 512 + 512
    low.eval()
    x = torch.randn(40, 62, 64)
    emb, _ = low(x)
    assert torch.linalg.matrix_rank(emb - emb[:1]).item() <= 16
    path = export_onnx_fp32(low, tmp_path / "low.onnx")
    np.testing.assert_allclose(run_onnx(path, x.numpy()), emb.detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("time_pool", ["mean+max", "mean|max"])
def test_time_pooling_with_a_max_is_the_stated_pooling_and_exports(tmp_path, time_pool: str) -> None:
    from acula.export.cli import run_onnx
    from acula.export.writers import export_onnx_fp32

    torch.manual_seed(0)
    cfg = StudentConfig(channels=(16, 32), strides=(2, 2), time_pool=time_pool)
    student = StreamingStudent(cfg).eval()
    plain = StreamingStudent(dataclasses.replace(cfg, time_pool="mean"))
    n_extra = sum(p.numel() for p in student.parameters()) - sum(p.numel() for p in plain.parameters())
    assert n_extra == (0 if time_pool == "mean+max" else 64 * (512 + 1))  # side by side: a wider embed and heads
    x = torch.randn(8, 62, 64)
    with torch.no_grad():
        fmap = student.features(x.transpose(1, 2).unsqueeze(1))  # (8, 32, 16 mel rows, 16 time steps)
        blocks = fmap.reshape(8, 32, 2, 8, 16).mean(dim=3)  # n_freq_bins 2: two blocks of 8 rows
        mean, peak = blocks.mean(dim=3).flatten(1), blocks.amax(dim=3).flatten(1)
        expected = mean + peak if time_pool == "mean+max" else torch.cat([mean, peak], dim=1)
        emb, heads = student(x)
    torch.testing.assert_close(emb, student.embed(expected))
    torch.testing.assert_close(heads, student.heads(expected))
    path = export_onnx_fp32(student, tmp_path / "maxpool.onnx")
    np.testing.assert_allclose(run_onnx(path, x.numpy()), emb.numpy(), atol=1e-4)


def test_gated_pooling_starts_as_the_mean_and_learns_per_block_weights_that_export(tmp_path) -> None:
    from acula.export.cli import run_onnx
    from acula.export.writers import export_onnx_fp32

    torch.manual_seed(0)
    cfg = StudentConfig(channels=(16, 32), strides=(2, 2), time_pool="gated")
    student = StreamingStudent(cfg).eval()
    plain = StreamingStudent(dataclasses.replace(cfg, time_pool="mean")).eval()
    plain.load_state_dict({k: v for k, v in student.state_dict().items() if not k.startswith("time_score")})
    assert sum(p.numel() for p in student.parameters()) - sum(p.numel() for p in plain.parameters()) == 32 + 1
    x = torch.randn(8, 62, 64)
    with torch.no_grad():
        torch.testing.assert_close(student(x)[0], plain(x)[0])  # zero scores: every step weighs 1, the plain mean
        assert student.time_score is not None
        student.time_score.weight.normal_()
        student.time_score.bias.fill_(0.3)
        fmap = student.features(x.transpose(1, 2).unsqueeze(1))  # (8, 32, 16 mel rows, 16 time steps)
        blocks = fmap.reshape(8, 32, 2, 8, 16).mean(dim=3)  # n_freq_bins 2
        scores = torch.einsum("bcft,c->bft", blocks, student.time_score.weight.flatten()) + 0.3
        w = 2 * torch.sigmoid(scores)
        expected = (blocks * w[:, None]).mean(dim=3).flatten(1)
        emb, heads = student(x)
    assert not torch.allclose(emb, plain(x)[0].detach(), atol=1e-3)
    torch.testing.assert_close(emb, student.embed(expected))
    torch.testing.assert_close(heads, student.heads(expected))
    path = export_onnx_fp32(student, tmp_path / "gated.onnx")
    np.testing.assert_allclose(run_onnx(path, x.numpy()), emb.numpy(), atol=1e-4)


def test_time_pooling_options_are_checked() -> None:
    with pytest.raises(ValueError, match="time_pool"):
        StudentConfig(time_pool="median")
    with pytest.raises(ValueError, match="equal blocks"):
        StreamingStudent(StudentConfig(channels=(16, 32), strides=(2, 2), n_freq_bins=3, time_pool="mean+max"))


def test_a_run_resumes_only_under_its_own_config(tmp_path) -> None:
    narrow = DistillConfig(name="narrow")
    saved = narrow.to_dict()
    del saved["student"]["embed_rank"]  # a checkpoint written before the option existed
    (tmp_path / "last.json").write_text(json.dumps({"distill_config": saved}))
    check_resumable(tmp_path, "distill_config", dataclasses.replace(narrow, name="renamed", max_steps=9000))
    wide = dataclasses.replace(narrow, kd_per_label_set=True, weights=DistillWeights(kd=2.0),
                               student=StudentConfig(channels=(32, 48, 64, 96, 128, 192), embed_rank=112))
    with pytest.raises(ValueError, match=r"different config \(kd_per_label_set: .*student: .*weights: "):
        check_resumable(tmp_path, "distill_config", wide)
    check_resumable(tmp_path / "nothing-here", "distill_config", wide)


def test_a_json_config_names_a_preset_or_overrides_the_defaults_and_misspelt_keys_are_refused(tmp_path,
                                                                                            capsys) -> None:
    from acula.distill.train import main as distill_main

    def cfg(data: dict) -> str:
        path = tmp_path / "cfg.json"
        path.write_text(json.dumps(data))
        return str(path)

    narrow = resolve(cfg({"max_steps": 10}))  # no preset: over the dataclass defaults, as configs/distill/*.json
    assert narrow == dataclasses.replace(DistillConfig(), max_steps=10)
    wide = resolve(cfg({"preset": "default-cpu", "max_steps": 10, "weights": {"cos": 0.5},
                        "student": {"embed_rank": 64}}))
    base = PRESETS["default-cpu"]
    assert wide.max_steps == 10 and wide.kd_per_label_set and wide.weights == dataclasses.replace(base.weights, cos=0.5)
    assert wide.student == dataclasses.replace(DEFAULT_STUDENT, embed_rank=64) and wide.weights.kd == 2.0
    for bad, message in [({"max_step": 10}, r"unknown DistillConfig fields: \['max_step'\]"),
                         ({"student": {"chanels": [8]}}, r"unknown StudentConfig fields: \['chanels'\]"),
                         ({"weights": {"kd_temp": 1.0}}, r"unknown DistillWeights fields: \['kd_temp'\]"),
                         ({"preset": "wide"}, "unknown preset 'wide'")]:
        with pytest.raises(ValueError, match=message):
            resolve(cfg(bad))
    assert distill_main(["--teacher", "t", "--corpus", "c", "--out", str(tmp_path / "o"),
                         "--config", cfg({"max_step": 10})]) == 1
    assert "acula distill: unknown DistillConfig fields" in capsys.readouterr().err


def test_the_student_only_level_change_shifts_every_cell_alike_and_keeps_the_floor():
    import numpy as np
    import torch
    from acula.distill.train import shift_level
    from acula.sdk.frontend_config import FrontendConfig

    front = FrontendConfig()
    floor = (10 * float(np.log10(front.amin_power)) - front.norm_mean_db) / front.norm_std_db
    x = torch.full((4, 10, front.n_mels), 0.5)
    x[0, 0, 0] = floor
    y = shift_level(x, front, torch.Generator().manual_seed(0), 24.0)
    d = (y - x)[1:] * front.norm_std_db  # dB
    assert torch.allclose(d, d[:, :1, :1].expand_as(d)) and float(d.abs().max()) <= 24.0 + 1e-4
    assert float(y.min()) >= floor - 1e-6 and not torch.equal(y, x)


def test_the_student_only_level_change_reaches_about_a_share_p_of_the_crops():
    import numpy as np
    import torch
    from acula.distill.train import DistillConfig, shift_level
    from acula.sdk.frontend_config import FrontendConfig

    front = FrontendConfig()
    x = torch.full((2000, 4, front.n_mels), 0.5)
    y = shift_level(x, front, torch.Generator().manual_seed(0), 24.0, p=0.3)
    changed = (y != x).flatten(1).any(1).float().mean()
    assert 0.26 < float(changed) < 0.34
    unchanged = ~(y != x).flatten(1).any(1)
    assert torch.equal(y[unchanged], x[unchanged])
    assert torch.equal(shift_level(x, front, torch.Generator().manual_seed(0), 24.0, p=1.0),
                       shift_level(x, front, torch.Generator().manual_seed(0), 24.0))
    with pytest.raises(ValueError, match="p_student_gain"):
        DistillConfig(p_student_gain=1.5)
    assert np.isfinite(float(y.sum()))


def test_the_student_only_level_change_spares_crops_of_corpora_it_is_not_allowed_on():
    import torch
    from acula.distill.train import DistillConfig, shift_level
    from acula.sdk.frontend_config import FrontendConfig

    front = FrontendConfig()
    x = torch.full((6, 4, front.n_mels), 0.5)
    allowed = torch.tensor([True, False, True, False, True, False])
    y = shift_level(x, front, torch.Generator().manual_seed(0), 24.0, allowed=allowed)
    changed = (y != x).flatten(1).any(1)
    assert torch.equal(changed, allowed)
    assert DistillConfig(student_gain_datasets=["physionet2016"]).student_gain_datasets == ("physionet2016",)


def test_a_bundle_teaches_with_its_fp32_student_prompt_bank_and_logit_scale(tiny_bundle, tiny_corpus, tmp_path):
    """``acula distill --teacher BUNDLE``: the targets are the bundle's fp32 ONNX embeddings, the zero-shot
    targets its own prompt bank at its own logit scale, and the run records which bundle taught it."""
    import onnxruntime as ort
    from acula.aligner.checkpoint import load_checkpoint
    from acula.distill.bundle_teacher import load_bundle_teacher
    from acula.distill.train import main as distill_main
    from acula.sdk.bundle import read_bundle

    teacher, meta = load_bundle_teacher(tiny_bundle)
    bundle = read_bundle(tiny_bundle)
    x = torch.randn(3, *teacher.window, generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(str(tiny_bundle / "student_fp32.onnx"), providers=["CPUExecutionProvider"])
    want = np.stack([session.run(["embedding"], {"logmel": x[k:k + 1].numpy()})[0][0] for k in range(3)])
    np.testing.assert_allclose(teacher.embed_audio(x).numpy(), want, rtol=1e-6, atol=1e-6)
    assert float(teacher.logit_scale.exp()) == pytest.approx(bundle.manifest["calibration"]["logit_scale"])
    with pytest.raises(ValueError, match="crops of"):
        teacher.embed_audio(torch.zeros(1, teacher.window[0] + 1, teacher.window[1]))

    out = tmp_path / "from-bundle"
    assert distill_main(["--teacher", str(tiny_bundle), "--corpus", str(tiny_corpus), "--out", str(out),
                         "--config", "tiny-test"]) == 0
    _, run_meta = load_checkpoint(out)
    assert run_meta["teacher_bundle_sha256"] == bundle.sha256 == meta["bundle_sha256"]
    assert json.loads((out / "prompt_texts.json").read_text()) == bundle.manifest["prompt_bank"]["texts"]
    np.testing.assert_array_equal(np.load(out / "prompt_embeddings.npy"), bundle.array("prompts.npy"))


def test_a_bundle_student_loads_into_the_trainable_student_and_a_fine_tune_starts_from_it(tiny_bundle, tiny_corpus,
                                                                                          tmp_path):
    """``student_from_bundle``: the folded ONNX weights in the torch student compute what the ONNX graph computes;
    ``init_from_teacher`` fine-tunes from them (batch norms kept in eval mode by ``freeze_norm``); without a
    bundle teacher it is refused."""
    import onnxruntime as ort
    from acula.distill.bundle_teacher import student_from_bundle
    from acula.distill.student import StudentConfig
    from acula.distill.train import main as distill_main
    from acula.sdk.bundle import read_bundle

    bundle = read_bundle(tiny_bundle)
    cfg = StudentConfig.from_dict(bundle.manifest["provenance"]["student_config"])
    student = student_from_bundle(bundle, cfg)
    x = np.random.default_rng(1).normal(size=(3, cfg.window_frames, cfg.n_mels)).astype(np.float32)
    session = ort.InferenceSession(bundle.files["student_fp32.onnx"], providers=["CPUExecutionProvider"])
    want = [session.run(None, {"logmel": x[k : k + 1]}) for k in range(3)]
    with torch.no_grad():
        emb, heads = student(torch.from_numpy(x))
    np.testing.assert_allclose(emb.numpy(), np.concatenate([w[0] for w in want]), atol=1e-5)
    np.testing.assert_allclose(heads.numpy(), np.concatenate([w[1] for w in want]), atol=1e-5)

    config = tmp_path / "ft.json"
    config.write_text(json.dumps({"preset": "tiny-test", "init_from_teacher": True, "freeze_norm": True}))
    out = tmp_path / "ft"
    assert distill_main(["--teacher", str(tiny_bundle), "--corpus", str(tiny_corpus), "--out", str(out),
                         "--config", str(config)]) == 0
    from acula.aligner.checkpoint import load_checkpoint

    state, _ = load_checkpoint(out)
    means = [v for k, v in state.items() if k.endswith("running_mean")]
    assert means and all(float(v.abs().max()) == 0.0 for v in means)  # frozen: the loaded identity norms
    with pytest.raises(ValueError, match="needs a bundle"):
        distill_main(["--teacher", str(tiny_bundle.parent / "align"), "--corpus", str(tiny_corpus),
                      "--out", str(tmp_path / "no"), "--config", str(config)])


def test_a_student_only_background_needs_a_background_and_keeps_it_from_the_teacher(tiny_teacher, tiny_corpus,
                                                                                   tmp_path, monkeypatch):
    """``background_student_only``: the student's input is the mixed crop, the teacher's the same crop without
    its background (a denoising distillation); without it both hear the mixed crop."""
    import acula.distill.train as train
    from acula.aligner.corpus import load_corpus

    with pytest.raises(ValueError, match="background_student_only needs p_background"):
        DistillConfig(background_student_only=True)
    assert DistillConfig(background_classes=["rain"]).background_classes == ("rain",)
    for bad in ([], ["rain", "dog_bark"]):
        with pytest.raises(ValueError, match="background_classes must be a non-empty subset"):
            DistillConfig(background_classes=bad)
    # the tiny corpus has no ESC-10 backgrounds: its own training records stand in as the pool
    monkeypatch.setattr(train, "background_pool", lambda corpus, classes=None: corpus.indices("train")[:4])
    seen = spy_model_inputs(monkeypatch)
    base = dataclasses.replace(PRESETS["tiny-test"], max_steps=1, p_background=1.0, background_snr_min_db=0.0)
    assert len(load_corpus(tiny_corpus).indices("train")) >= 4
    train.distill(dataclasses.replace(base, background_student_only=True), tiny_teacher, tiny_corpus,
                  tmp_path / "denoise", progress=False)
    train.distill(base, tiny_teacher, tiny_corpus, tmp_path / "both", progress=False)
    (student_dn, teacher_dn), (student_both, teacher_both) = seen[-2], seen[-1]
    torch.testing.assert_close(student_dn, student_both)  # the same draws: the same mixed crop for the student
    assert torch.equal(teacher_both, student_both)
    assert float((student_dn - teacher_dn).abs().max()) > 0.1 and bool(torch.all(student_dn >= teacher_dn - 1e-5))


def test_background_datasets_keep_the_other_corpora_clean_for_both_models(tiny_teacher, tiny_corpus, tmp_path,
                                                                          monkeypatch):
    """``background_datasets``: crops of the corpora it names may get a background (the student's alone here);
    every other crop reaches student and teacher without one; a corpus the corpus does not hold is refused."""
    import acula.distill.train as train
    from acula.aligner.corpus import load_corpus

    corpus = load_corpus(tiny_corpus)
    monkeypatch.setattr(train, "background_pool", lambda corpus, classes=None: corpus.indices("train")[:4])
    picked: list[np.ndarray] = []
    sample = train.sample_batch

    def spy_sample(*args, **kwargs):
        out = sample(*args, **kwargs)
        picked.append(np.asarray(out[0]))
        return out

    monkeypatch.setattr(train, "sample_batch", spy_sample)
    seen = spy_model_inputs(monkeypatch)
    cfg = dataclasses.replace(PRESETS["tiny-test"], max_steps=1, p_background=1.0, background_snr_min_db=0.0,
                              background_student_only=True, background_datasets=("coswara",))
    train.distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "some", progress=False)
    (student, teacher), chosen = seen[-1], picked[-1]
    allowed = np.array([corpus.rows[int(i)]["dataset"] == "coswara" for i in chosen])
    assert allowed.any() and (~allowed).any()
    assert torch.equal(student[~allowed], teacher[~allowed])
    assert not torch.equal(student[allowed], teacher[allowed])  # power only adds: >= clean, not equal
    assert bool(torch.all(student[allowed] >= teacher[allowed] - 1e-5))
    with pytest.raises(ValueError, match="background_datasets names corpora not in"):
        train.distill(dataclasses.replace(cfg, background_datasets=("no-such-corpus",)), tiny_teacher, tiny_corpus,
                      tmp_path / "none", progress=False)


def test_a_kd_teacher_ensemble_distils_towards_the_mean_of_the_teachers_label_set_probabilities() -> None:
    """``kd_teachers``: the KD target per label set is the mean of the teachers' probabilities, each from its own
    embedding, prompts and logit scale; the embedding terms follow the first teacher alone; an ensemble of one
    teacher twice is that teacher."""
    import torch.nn.functional as F
    from acula.aligner.config import PRESETS
    from acula.aligner.model import AcuLaModel
    from acula.distill.task import DistillTask

    torch.manual_seed(0)
    a, b = AcuLaModel(PRESETS["tiny-test"], 8), AcuLaModel(PRESETS["tiny-test"], 8)
    student = StreamingStudent(StudentConfig(channels=(8, 16), strides=(2, 2), embed_dim=32, window_frames=32,
                                             hop_frames=15))
    pa, pb = (F.normalize(torch.randn(6, 32), dim=-1) for _ in range(2))
    groups = [[0, 1, 2], [3, 4, 5]]
    x, y = torch.randn(3, 32, 64), torch.zeros(3, 1)
    alone = DistillTask(a, student, pa, prompt_groups=groups).eval()(x, y)
    twice = DistillTask(a, student, pa, prompt_groups=groups, kd_teachers=[(a, pa)]).eval()(x, y)
    both = DistillTask(a, student, pa, prompt_groups=groups, kd_teachers=[(b, pb)]).eval()(x, y)
    torch.testing.assert_close(twice["kd"], alone["kd"])
    torch.testing.assert_close(both["cos"], alone["cos"])
    assert not torch.allclose(both["kd"], alone["kd"])
    # the target by hand: softmax per label set of each teacher, averaged
    temp = DistillWeights().kd_temperature
    with torch.no_grad():
        probs = []
        for teacher, prompts in ((a, pa), (b, pb)):
            scale = float(teacher.logit_scale.exp().clamp(max=100.0))
            scores = scale * F.normalize(teacher.embed_audio(x), dim=-1) @ prompts.T / temp
            probs.append([F.softmax(scores[:, g], -1) for g in groups])
        s_scores = float(a.logit_scale.exp().clamp(max=100.0)) * F.normalize(student(x)[0], dim=-1) @ pa.T / temp
        want = torch.stack([F.kl_div(F.log_softmax(s_scores[:, g], -1), ((pa_ + pb_) / 2).log(), log_target=True,
                                     reduction="batchmean") for g, pa_, pb_ in zip(groups, *probs, strict=True)])
    torch.testing.assert_close(both["kd"], want.mean() * temp**2)
    assert not any(p.requires_grad for p in b.parameters())
    with pytest.raises(ValueError, match="same prompts in the same order"):
        DistillTask(a, student, pa, kd_teachers=[(b, pb[:5])])


def test_kd_teachers_load_from_their_runs_and_are_recorded_or_refused(tiny_teacher, tiny_corpus, tmp_path):
    from acula.aligner.checkpoint import load_checkpoint
    from acula.distill.train import distill

    cfg = dataclasses.replace(PRESETS["tiny-test"], max_steps=1, kd_teachers=[str(tiny_teacher)])
    assert cfg.kd_teachers == (str(tiny_teacher),)
    distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "ens", progress=False)
    _, meta = load_checkpoint(tmp_path / "ens")
    assert meta["kd_teachers"] == [str(tiny_teacher)] and meta["kd_teacher_ids"][0]["run"] == str(tiny_teacher)
    with pytest.raises(ValueError, match="kd_teachers: .* does not exist"):
        distill(dataclasses.replace(cfg, kd_teachers=(str(tmp_path / "nowhere"),)), tiny_teacher, tiny_corpus,
                tmp_path / "missing", progress=False)


def test_kd_teachers_from_the_command_line_replace_the_configs_and_a_resume_keeps_them(tiny_teacher, tiny_corpus,
                                                                                     tmp_path, capsys):
    """``acula distill --kd-teacher RUN`` (as scripts/train_default.sh passes the teachers it aligned): the run
    records them over the config's, and resuming with other KD teachers is refused."""
    from acula.aligner.checkpoint import load_checkpoint
    from acula.distill.train import main as distill_main

    config = tmp_path / "kd.json"
    config.write_text(json.dumps({"preset": "tiny-test", "max_steps": 1, "kd_teachers": ["runs/not-here/align"]}))
    args = ["--teacher", str(tiny_teacher), "--corpus", str(tiny_corpus), "--out", str(tmp_path / "o"),
            "--config", str(config)]
    assert distill_main([*args, "--kd-teacher", str(tiny_teacher)]) == 0
    assert "kd_teachers from the command line" in capsys.readouterr().err  # said, not silent
    _, meta = load_checkpoint(tmp_path / "o")
    assert meta["kd_teachers"] == [str(tiny_teacher)] and meta["distill_config"]["kd_teachers"] == [str(tiny_teacher)]
    assert distill_main([*args, "--kd-teacher", str(tiny_teacher)]) == 0  # the same teachers: the run resumes
    assert distill_main(args) == 1  # the config's own KD teacher: another config than the checkpoint's
    assert "different config" in capsys.readouterr().err
    assert distill_main([*args, "--kd-teacher", str(tiny_teacher), "--kd-teacher", str(tiny_teacher)]) == 1
    assert "gives 2 KD teachers where the config's kd_teachers lists 1" in capsys.readouterr().err


def test_student_only_codec_noise_reaches_the_student_alone(tiny_teacher, tiny_corpus, tmp_path, monkeypatch):
    """``p_student_codec``: the student hears the crop with a codec's signal-following noise, the teacher the crop
    without it; at 0 both hear the same crop, drawn as before the option existed."""
    for bad in ({"p_student_codec": 1.5}, {"student_codec_snr_db": (40.0, 20.0)}, {"student_codec_snr_db": (10.0,)},
                {"student_codec_snr_db": "38"}, {"student_codec_snr_db": 30}, {"student_codec_snr_db": None},
                {"student_codec_snr_db": [True, True]}):
        with pytest.raises(ValueError, match="student_codec|p_student_codec"):
            DistillConfig(**bad)
    assert DistillConfig(student_codec_snr_db=[20, 30]).student_codec_snr_db == (20.0, 30.0)
    (student_c, teacher_c), (student_p, teacher_p) = inputs_with_and_without(monkeypatch, tiny_teacher, tiny_corpus,
                                                                             tmp_path, p_student_codec=1.0)
    torch.testing.assert_close(teacher_c, teacher_p)  # the teacher's crop is untouched
    assert torch.equal(student_p, teacher_p)
    assert float((student_c - teacher_c).abs().max()) > 0.1 and bool(torch.all(student_c >= teacher_c - 1e-5))
    assert bool((student_c != teacher_c).flatten(1).any(1).all())  # p 1: every crop, not a share of them


def test_the_phone_channel_reaches_teacher_and_student_alike(tiny_teacher, tiny_corpus, tmp_path, monkeypatch):
    """``p_phone``: both models hear the crop without its upper band (nothing over 4 kHz); at 0 the crops are those
    of the recipe without it."""
    from acula.aligner.augment import band_centres_hz

    (student_f, teacher_f), (student_p, teacher_p) = inputs_with_and_without(monkeypatch, tiny_teacher, tiny_corpus,
                                                                             tmp_path, p_phone=1.0)
    assert torch.equal(student_f, teacher_f) and torch.equal(student_p, teacher_p)
    centres = band_centres_hz(FrontendConfig())
    low, high = centres < 3500, centres > 4600
    assert torch.equal(student_f[..., low], student_p[..., low])  # every other draw as before
    floor = float(student_p.min())
    assert float(student_f[..., high].max()) <= floor + 1e-5 < float(student_p[..., high].max())


def test_a_student_only_phone_channel_reaches_the_student_alone(tiny_teacher, tiny_corpus, tmp_path, monkeypatch):
    """``p_student_phone``: the student hears the crop without its upper band, the teacher the full-band crop."""
    from acula.aligner.augment import band_centres_hz

    with pytest.raises(ValueError, match="p_student_phone"):
        DistillConfig(p_student_phone=1.5)
    (student_s, teacher_s), (student_p, teacher_p) = inputs_with_and_without(monkeypatch, tiny_teacher, tiny_corpus,
                                                                             tmp_path, p_student_phone=1.0)
    torch.testing.assert_close(teacher_s, teacher_p)  # the teacher's crop is untouched
    centres = band_centres_hz(FrontendConfig())
    low, high = centres < 3500, centres > 4600
    assert torch.equal(student_s[..., low], student_p[..., low])
    assert float(student_s[..., high].max()) <= float(student_p.min()) + 1e-5 < float(teacher_s[..., high].max())


def test_a_student_only_lowpass_reaches_the_student_alone_on_the_named_corpora(tiny_teacher, tiny_corpus, tmp_path,
                                                                               monkeypatch):
    """``p_student_lowpass``: the student hears the crop through a stethoscope's low-pass (the bands well above 2 kHz
    lose tens of dB, those under 500 Hz almost nothing), the teacher the full-band crop; ``student_lowpass_datasets``
    keeps it to the corpora named; bad settings are refused."""
    from acula.aligner.augment import band_centres_hz

    for bad in ({"p_student_lowpass": -0.1}, {"student_lowpass_hz": (2000.0, 1000.0)}, {"student_lowpass_hz": (0, 5)},
                {"student_lowpass_hz": "1000"}, {"student_lowpass_hz": (1000.0,)}):
        with pytest.raises(ValueError, match="student_lowpass|p_student_lowpass"):
            DistillConfig(**bad)
    assert DistillConfig(student_lowpass_hz=[1000, 1500]).student_lowpass_hz == (1000.0, 1500.0)
    (student_l, teacher_l), (student_p, teacher_p) = inputs_with_and_without(monkeypatch, tiny_teacher, tiny_corpus,
                                                                             tmp_path, p_student_lowpass=1.0)
    torch.testing.assert_close(teacher_l, teacher_p)  # the teacher's crop is untouched
    centres = band_centres_hz(FrontendConfig())
    low, high = centres < 500, centres > 4000
    torch.testing.assert_close(student_l[..., low], student_p[..., low], atol=1e-3, rtol=0)
    floor = float(student_p.min())
    above = (student_p[..., high] > floor + 1.0)  # cells more than 36.8 dB above the floor before the low-pass
    assert bool(above.any()) and bool(torch.all(student_l[..., high][above] < student_p[..., high][above] - 0.5))
    with pytest.raises(ValueError, match="student_lowpass_datasets names corpora not in"):
        inputs_with_and_without(monkeypatch, tiny_teacher, tiny_corpus, tmp_path / "bad", p_student_lowpass=1.0,
                                student_lowpass_datasets=("no-such-corpus",))


def test_a_student_on_a_lower_floor_than_its_teacher(tiny_teacher, tiny_corpus, tmp_path, monkeypatch):
    """student_amin_power: the student's features and its checkpoint's front end take the lower floor, the teacher
    reads the same crops clamped at its own floor (never below it); a floor above the teacher's is refused."""
    import dataclasses

    from acula.distill import train as T
    from acula.distill.task import DistillTask
    from acula.sdk.frontend_config import FrontendConfig

    seen: dict[str, list[float]] = {"student": [], "teacher": []}
    base_call = DistillTask.__call__

    def spy(self, logmel, *args, teacher_logmel=None, **kwargs):
        seen["student"].append(float(logmel.min()))
        seen["teacher"].append(float((logmel if teacher_logmel is None else teacher_logmel).min()))
        return base_call(self, logmel, *args, teacher_logmel=teacher_logmel, **kwargs)

    monkeypatch.setattr(DistillTask, "__call__", spy)
    cfg = dataclasses.replace(T.PRESETS["tiny-test"], student_amin_power=1e-16, gain_db=80.0)  # into both floors
    T.distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "low", progress=False)
    meta = json.loads((tmp_path / "low" / "last.json").read_text())
    assert meta["frontend"]["amin_power"] == 1e-16
    teacher_front = FrontendConfig()
    floor = (10 * np.log10(teacher_front.amin_power) - teacher_front.norm_mean_db) / teacher_front.norm_std_db
    assert min(seen["teacher"]) >= floor - 1e-6 and min(seen["student"]) < floor - 0.2
    with pytest.raises(ValueError, match="above the teacher's floor"):
        T.distill(dataclasses.replace(cfg, student_amin_power=1e-8), tiny_teacher, tiny_corpus, tmp_path / "high",
                  progress=False)
    with pytest.raises(ValueError, match="student_amin_power"):
        dataclasses.replace(cfg, student_amin_power=2.0)


def test_a_student_with_its_own_mel_bank_reads_its_crops_with_the_teachers_augmentation_draws(
        tiny_teacher, tiny_corpus, tmp_path, monkeypatch):
    """student_f_max_hz: the student reads the same crops from its own feature bank (its mel bands up to 4 kHz),
    each moved by the same level change as the teacher's view (one set of draws for both), and its checkpoint
    names that front end; a bank above the teacher's band is refused."""
    import dataclasses

    from acula.aligner.corpus import load_corpus
    from acula.aligner.data import FeatureBank
    from acula.distill import train as T
    from acula.sdk.frontend_config import FrontendConfig

    calls: list[tuple[np.ndarray, np.ndarray]] = []
    base_aug, base_crops = T.augment_logmel_views, T.crops_at
    cut: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def aug(x, *args, **kwargs):
        out = base_aug(x, *args, **kwargs)
        calls.append((x.numpy().copy(), out[1].numpy().copy()))
        return out

    def crops(bank, chosen, starts, n):
        out = base_crops(bank, chosen, starts, n)
        cut.append((np.array(chosen), np.array(starts), out))
        return out

    monkeypatch.setattr(T, "augment_logmel_views", aug)
    monkeypatch.setattr(T, "crops_at", crops)
    cfg = dataclasses.replace(T.PRESETS["tiny-test"], student_f_max_hz=4000.0, gain_db=20.0, eq_db=0.0)
    T.distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "s4k", progress=False)
    meta = json.loads((tmp_path / "s4k" / "last.json").read_text())
    assert meta["frontend"]["f_max_hz"] == 4000.0 and meta["frontend"]["n_mels"] == FrontendConfig().n_mels
    assert len(calls) == 2 * cfg.max_steps and len(cut) == cfg.max_steps
    teacher_front = FrontendConfig.from_dict(json.loads((tiny_teacher / "last.json").read_text())["frontend"])
    tbank = FeatureBank.for_corpus(load_corpus(tiny_corpus), teacher_front, progress=False)
    sbank = FeatureBank.for_corpus(load_corpus(tiny_corpus), dataclasses.replace(teacher_front, f_max_hz=4000.0),
                                   progress=False)
    for step, (chosen, starts, scrops) in enumerate(cut):
        (tx, ty), (sx, sy) = calls[2 * step], calls[2 * step + 1]
        np.testing.assert_array_equal(sx, scrops)
        assert not np.allclose(tx, sx)  # the two banks differ
        for k, (i, start) in enumerate(zip(chosen, starts, strict=True)):
            feats = sbank.get(int(i))
            if feats.shape[0] >= scrops.shape[1]:  # the teacher's crop, from the student's bank
                np.testing.assert_array_equal(tx[k], tbank.get(int(i))[start : start + scrops.shape[1]])
                np.testing.assert_array_equal(scrops[k], feats[start : start + scrops.shape[1]])
            # one level change per crop, the same in both views (cells above either floor)
            t_shift = (ty[k] - tx[k])[ty[k] > ty[k].min() + 1e-3]
            s_shift = (sy[k] - sx[k])[sy[k] > sy[k].min() + 1e-3]
            assert np.ptp(t_shift) < 1e-4 and np.ptp(s_shift) < 1e-4
            assert abs(float(np.median(t_shift)) - float(np.median(s_shift))) < 1e-4
    with pytest.raises(ValueError, match="must lie between"):
        T.distill(dataclasses.replace(cfg, student_f_max_hz=9000.0), tiny_teacher, tiny_corpus, tmp_path / "high",
                  progress=False)


def test_the_running_level_shift_in_training_is_the_sdks_on_a_uniform_gain_and_floors_as_it_does() -> None:
    """``student_level_ref``: the student's crops shifted to a running level as ``sdk.level`` shifts a stream's
    windows: a uniform gain leaves them unchanged, a louder history moves them down by the difference, and
    ``student_level_range_db`` raises cells to the relative floor."""
    from acula.distill.train import level_shift_crops
    from acula.sdk.level import LevelShift

    level = LevelShift(range_db=60.0).for_front(FrontendConfig())
    rng = np.random.default_rng(3)
    clean = rng.normal(0.0, 1.0, (3, 20, 8)).astype(np.float32)
    history = np.array([-np.inf, clean[1].max() + 0.5, clean[2].max() - 0.5], np.float32)  # none, louder, quieter
    base = level_shift_crops(level, torch.from_numpy(clean), clean, history)
    gained = level_shift_crops(level, torch.from_numpy(clean - 0.4), clean, history)  # ~15 dB down, no floor
    torch.testing.assert_close(base, gained, atol=1e-5, rtol=0)
    bare = dataclasses.replace(level, range_db=None, low=None)
    shifted = level_shift_crops(bare, torch.from_numpy(clean), clean, history)
    for k, extra in enumerate((0.0, 0.5, 0.0)):
        np.testing.assert_allclose(shifted[k].numpy(), clean[k] - (clean[k].max() + extra - level.ref), atol=1e-5)
    assert float(base.min()) == pytest.approx(level.low) and bool((shifted < level.low).any())
    assert torch.equal(base, shifted.clamp_min(float(level.low)))


def test_sample_batch_gives_each_crops_start_with_the_same_draws() -> None:
    from acula.aligner.data import FeatureBank, sample_batch

    lengths = [30, 5, 50]
    frames = np.arange(sum(lengths) * 2, dtype=np.float16).reshape(-1, 2)
    bank = FeatureBank(frames, np.cumsum([0, *lengths]))
    plain = sample_batch(bank, [0, 1, 2], np.ones(3) / 3, 12, 10, np.random.default_rng(4))
    chosen, crops, starts = sample_batch(bank, [0, 1, 2], np.ones(3) / 3, 12, 10, np.random.default_rng(4),
                                         with_starts=True)
    assert np.array_equal(plain[0], chosen) and np.array_equal(plain[1], crops)
    for i, crop, start in zip(chosen, crops, starts, strict=True):
        feats = bank.get(int(i))
        expected = np.tile(feats, (2, 1))[:10] if int(i) == 1 else feats[start : start + 10]
        assert np.array_equal(crop, expected) and (start == 0 or int(i) != 1)
    assert len(set(starts[chosen != 1].tolist())) > 2


def test_a_student_trained_level_shifted_distils_and_exports_only_as_it_was_trained(tiny_teacher, tiny_corpus,
                                                                                  tmp_path) -> None:
    import acula.distill.train as train
    from acula.export.cli import main as export_main

    from acula import sdk

    with pytest.raises(ValueError, match="student_level_range_db needs student_level_ref"):
        dataclasses.replace(PRESETS["tiny-test"], student_level_range_db=130.0)
    cfg = dataclasses.replace(PRESETS["tiny-test"], max_steps=2, student_level_ref=1.87, student_level_range_db=130.0)
    train.distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "student", progress=False)
    base = ["--student", str(tmp_path / "student"), "--corpus", str(tiny_corpus), "--no-tflite"]
    for flags in (["--level-shift"], ["--level-shift", "--level-range-db", "120"],
                  ["--level-shift", "1.5", "--level-range-db", "130"]):
        with pytest.raises(ValueError, match="--level-shift 1.87 --level-range-db 130.0"):
            export_main([*base, "--out", str(tmp_path / "wrong"), *flags])
    assert export_main([*base, "--out", str(tmp_path / "bundle"), "--level-shift", "--level-range-db", "130"]) == 0
    assert export_main([*base, "--out", str(tmp_path / "own")]) == 0  # no flags: the shift it was trained with
    with pytest.raises(ValueError, match="waveform graph"):
        export_main([*base, "--out", str(tmp_path / "wave"), "--waveform-graph"])
    for name in ("bundle", "own"):
        level = sdk.load(tmp_path / name).level
        assert (level.ref, level.range_db, level.gate) == (1.87, 130.0, "relative")


def test_the_weight_average_is_what_a_run_exports_and_a_resume_goes_on_from_the_trained_weights(tiny_teacher,
                                                                                               tiny_corpus, tmp_path):
    """``ema_decay``: ``last`` (what ``acula export`` reads) holds the moving average of the trained weights,
    ``live`` the trained weights; a run resumed half way ends with the same average and weights as one run
    through; 0 keeps one checkpoint, the trained weights."""
    from acula.aligner.checkpoint import load_checkpoint
    from acula.distill.train import WeightAverage, distill

    with pytest.raises(ValueError, match="ema_decay"):
        DistillConfig(ema_decay=1.0)
    cfg = dataclasses.replace(PRESETS["tiny-test"], max_steps=4, ckpt_every=2, ema_decay=0.5)
    distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "through", progress=False)
    average, meta = load_checkpoint(tmp_path / "through")
    live, _ = load_checkpoint(tmp_path / "through" / "live.safetensors")
    assert meta["ema_decay"] == 0.5 and meta["step"] == 4
    floats = [k for k, v in live.items() if v.is_floating_point()]
    assert any(not torch.equal(average[k], live[k]) for k in floats)  # an average, not the last step
    # a resume from step 2 (the checkpoint a stopped run leaves) ends where the run straight through ended
    distill(dataclasses.replace(cfg, max_steps=2), tiny_teacher, tiny_corpus, tmp_path / "resumed", progress=False)
    distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "resumed", progress=False)
    for name in ("last", "live"):
        a, _ = load_checkpoint(tmp_path / "through" / f"{name}.safetensors")
        b, _ = load_checkpoint(tmp_path / "resumed" / f"{name}.safetensors")
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    distill(dataclasses.replace(cfg, ema_decay=0.0), tiny_teacher, tiny_corpus, tmp_path / "off", progress=False)
    assert not (tmp_path / "off" / "live.safetensors").exists()
    # the average itself: decay warmed up, integer buffers copied
    m = torch.nn.BatchNorm1d(2)
    avg = WeightAverage(m, 0.9)
    with torch.no_grad():
        m.weight.fill_(3.0)
    m.num_batches_tracked.fill_(7)
    avg.update(m, 0)  # d = min(0.9, 1 / 10) = 0.1
    torch.testing.assert_close(avg.state["weight"], torch.full((2,), 0.1 * 1.0 + 0.9 * 3.0))
    assert int(avg.state["num_batches_tracked"]) == 7


def test_training_labels_become_targets_over_each_label_set() -> None:
    """``distill.labels``: by ``sdk/label_sets.json``'s ``record_label`` rules, a PhysioNet record answers heart, an
    ICBHI cycle lung (both findings: the rule's shares, half each, where calibration's one label is none), Coswara
    and ESC-10 sound; a record answers no set it has no label for."""
    from acula.distill.labels import label_targets, prompt_averaging
    from acula.sdk.label_sets import label_sets, record_label

    rows = [{"dataset": "physionet2016", "modality": "heart", "metadata": {"outcome": "abnormal"}},
            {"dataset": "icbhi", "modality": "lung", "metadata": {"crackles": 1, "wheezes": 1}},
            {"dataset": "icbhi", "modality": "lung", "metadata": {"crackles": 0, "wheezes": 0}},
            {"dataset": "coswara", "modality": "speech"}, {"dataset": "esc10", "modality": "environment"},
            {"dataset": "physionet2016", "modality": "heart", "metadata": {}}]
    targets, known = label_targets(rows)
    names = [(s, label) for s, labels in label_sets().items() for label in labels]
    got = [{names[j]: float(v) for j, v in enumerate(row) if v} for row in targets]
    assert got == [{("heart", "abnormal"): 1.0}, {("lung", "crackles"): 0.5, ("lung", "wheezes"): 0.5},
                   {("lung", "normal"): 1.0}, {("sound", "speech"): 1.0}, {("sound", "other"): 1.0}, {}]
    assert known.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]]
    assert record_label(rows[1], "lung") is None and record_label(rows[2], "lung") == "normal"
    texts = sorted({p for labels in label_sets().values() for prompts in labels.values() for p in prompts})
    matrix, slices = prompt_averaging(texts)
    assert matrix.shape == (len(texts), len(names)) and np.allclose(matrix.sum(0), 1.0)
    assert [s.stop - s.start for s in slices] == [len(v) for v in label_sets().values()]


def test_the_label_term_pulls_the_zero_shot_score_toward_the_label(tiny_teacher, tiny_corpus, tmp_path):
    """``weights.label``: the term is the cross-entropy of the zero-shot label distribution; its gradient raises the
    labelled class's probability; a distillation run with it logs it; without it, no term."""
    import acula.distill.train as train
    from acula.distill.labels import prompt_averaging
    from acula.distill.task import DistillTask
    from acula.sdk.label_sets import label_sets

    texts = sorted({p for labels in label_sets().values() for prompts in labels.values() for p in prompts})
    prompts = torch.nn.functional.normalize(torch.randn(len(texts), 8, generator=torch.Generator().manual_seed(0)),
                                            dim=-1)
    matrix, slices = prompt_averaging(texts)

    class _Teacher(torch.nn.Module):
        logit_scale = torch.tensor(2.0)

    task = DistillTask(_Teacher(), StreamingStudent(StudentConfig(channels=(4,), strides=(2,), embed_dim=8)), prompts,
                       DistillWeights(label=1.0), None, (), (torch.from_numpy(matrix), slices))
    emb = torch.randn(1, 8, requires_grad=True)
    targets = torch.zeros(1, matrix.shape[1])
    targets[0, slices[0].start + 1] = 1.0  # heart: abnormal
    known = torch.tensor([[1.0, 0.0, 0.0]])

    def logits() -> torch.Tensor:
        return task.logit_scale * (torch.nn.functional.normalize(emb, dim=-1) @ prompts.T) @ task.label_matrix

    def p_abnormal() -> float:
        return float(torch.softmax(logits()[:, slices[0]], -1)[0, 1])

    before = p_abnormal()
    loss = task._label_term(logits(), targets, known)
    loss.backward()
    with torch.no_grad():
        emb -= 0.5 * emb.grad
    assert p_abnormal() > before
    assert float(task._label_term(logits(), targets, torch.zeros(1, 3))) == 0.0  # no record answers: no pull
    with pytest.raises(ValueError, match="label_averaging"):
        DistillTask(_Teacher(), task.student, prompts, DistillWeights(label=1.0))
    cfg = dataclasses.replace(PRESETS["tiny-test"], max_steps=2, weights=DistillWeights(label=0.5))
    train.distill(cfg, tiny_teacher, tiny_corpus, tmp_path / "with", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "with" / "metrics.jsonl").read_text().splitlines()]
    assert all("label" in m for m in logged)
    train.distill(dataclasses.replace(cfg, weights=DistillWeights()), tiny_teacher, tiny_corpus, tmp_path / "plain",
                  progress=False)
    plain = (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()
    assert plain and not any("label" in json.loads(line) for line in plain)


def test_supervised_heads_become_heart_and_lung_distributions() -> None:
    """``distill.labels.head_label_targets``: heart abnormal is the head's probability; lung reads crackles and
    wheezes as independent findings, both at once split half and half (as ``record_label``'s shares); the sound
    set is not answered; a head teacher without the heads is refused."""
    from acula.aligner.supervised import SUPERVISED_HEADS
    from acula.distill.labels import head_label_targets
    from acula.sdk.label_sets import label_sets

    heads = list(SUPERVISED_HEADS)
    p = {"cough": 0.9, "heart_abnormal": 0.8, "crackles": 0.6, "wheezes": 0.3, "copd": 0.5}
    logits = torch.logit(torch.tensor([[p[h] for h in heads]]))
    targets, answered = head_label_targets(logits, heads)
    names = [(s, label) for s, labels in label_sets().items() for label in labels]
    got = {names[j]: float(v) for j, v in enumerate(targets[0])}
    assert got[("heart", "abnormal")] == pytest.approx(0.8) and got[("heart", "normal")] == pytest.approx(0.2)
    assert got[("lung", "normal")] == pytest.approx(0.4 * 0.7)
    assert got[("lung", "crackles")] == pytest.approx(0.6 * 0.7 + 0.6 * 0.3 / 2)
    assert got[("lung", "wheezes")] == pytest.approx(0.3 * 0.4 + 0.6 * 0.3 / 2)
    assert all(v == 0.0 for (s, _), v in got.items() if s == "sound")
    assert answered.tolist() == [1.0 if s in ("heart", "lung") else 0.0 for s in label_sets()]
    with pytest.raises(ValueError, match="crackles"):
        head_label_targets(logits[:, :2], heads[:2])


def test_a_head_teacher_pulls_the_student_toward_its_heads(tiny_teacher, tiny_corpus, tmp_path):
    """``weights.head_kd`` with ``head_teacher``: a run with supervised heads gives the heart and lung targets on
    the records answering each set, read on the crop before augmentation; the term logs beside the label term; a
    run without heads, a missing run and a weight without a teacher (or the reverse) are refused."""
    import acula.distill.train as train
    from acula.aligner.checkpoint import load_checkpoint, save_checkpoint
    from acula.aligner.config import AlignConfig
    from acula.aligner.model import AcuLaModel

    state, meta = load_checkpoint(tiny_teacher)
    cfg = dataclasses.replace(AlignConfig.from_dict(meta["align_config"]), w_sup=1.0, encoder_weights=None)
    torch.manual_seed(0)
    control = AcuLaModel(cfg, meta["text_dim"])
    with torch.no_grad():  # a decided control: heart abnormal and crackles high, whatever the crop
        control.sup_head[1].bias.copy_(torch.tensor([0.0, 4.0, 4.0, -4.0, 0.0]))
        control.sup_head[1].weight.zero_()
    save_checkpoint(tmp_path / "control", control, {**meta, "align_config": cfg.to_dict()})
    dcfg = dataclasses.replace(PRESETS["tiny-test"], max_steps=30, lr=1e-2, head_teacher=str(tmp_path / "control"),
                               weights=DistillWeights(cos=0.0, cka=0.0, kd=0.0, head=0.0, head_kd=1.0))
    train.distill(dcfg, tiny_teacher, tiny_corpus, tmp_path / "with", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "with" / "metrics.jsonl").read_text().splitlines()]
    assert all("head_kd" in m and "label" in m for m in logged)
    assert logged[-1]["head_kd"] < logged[0]["head_kd"]  # the student moves toward the heads' answers
    last = json.loads((tmp_path / "with" / "last.json").read_text())
    assert last["head_teacher_id"]["run"] == str(tmp_path / "control")
    from acula.distill.train import main as distill_main

    config = tmp_path / "hkd.json"  # the command line's head teacher replaces the config's (as train_default.sh does)
    config.write_text(json.dumps({"preset": "tiny-test", "max_steps": 1, "head_teacher": "runs/not-here",
                                  "weights": {"head_kd": 0.5}}))
    args = ["--teacher", str(tiny_teacher), "--corpus", str(tiny_corpus), "--out", str(tmp_path / "cli")]
    assert distill_main([*args, "--config", str(config), "--head-teacher", str(tmp_path / "control")]) == 0
    assert json.loads((tmp_path / "cli" / "last.json").read_text())["head_teacher_id"]["run"] == str(
        tmp_path / "control")
    assert distill_main([*args[:-1], str(tmp_path / "cli2"), "--config", "tiny-test", "--head-teacher",
                         str(tmp_path / "control")]) == 1  # a config without a head teacher: refused, not added
    with pytest.raises(ValueError, match="go together"):
        dataclasses.replace(dcfg, head_teacher=None)
    with pytest.raises(ValueError, match="go together"):
        dataclasses.replace(dcfg, weights=DistillWeights())
    with pytest.raises(ValueError, match="no supervised heads"):
        train.distill(dataclasses.replace(dcfg, head_teacher=str(tiny_teacher)), tiny_teacher, tiny_corpus,
                      tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="not an acula align run"):
        train.distill(dataclasses.replace(dcfg, head_teacher=str(tmp_path / "missing")), tiny_teacher, tiny_corpus,
                      tmp_path / "y", progress=False)
