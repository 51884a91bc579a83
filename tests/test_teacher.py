"""The text teacher: semantics, padding-free pooling, and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from acula.aligner.teacher import TextTeacher, pool_hidden  # noqa: E402


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> TextTeacher:
    try:
        return TextTeacher(cache_path=tmp_path_factory.mktemp("cache") / "emb.sqlite")
    except ImportError as exc:
        pytest.skip(str(exc))


def test_paraphrases_score_higher_than_unrelated_reports(teacher: TextTeacher):
    a, b, c, d = teacher.encode([
        "Crackles, brief discontinuous popping sounds, are heard over the right lung base.",
        "Discontinuous popping crackles are audible at the right lower chest.",
        "The patient counts from one to twenty at a normal pace.",
        "A holosystolic harsh murmur is heard at the mitral valve.",
    ])
    assert a @ b > a @ c + 0.2 and a @ b > a @ d + 0.2
    assert abs(np.linalg.norm(a) - 1.0) < 1e-5


def test_padding_never_enters_the_pool():
    hidden = torch.randn(1, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    np.testing.assert_allclose(pool_hidden(hidden, mask, "mean"), hidden[:, :3].mean(1), atol=1e-6)
    np.testing.assert_allclose(pool_hidden(hidden, mask, "last"), hidden[:, 2], atol=0)
    left = torch.tensor([[0, 0, 1, 1, 1]])
    np.testing.assert_allclose(pool_hidden(hidden, left, "last"), hidden[:, 4], atol=0)


def test_batch_padding_does_not_change_an_embedding(teacher: TextTeacher):
    short = "No wheezes."
    alone = teacher._embed_batch([short])
    padded = teacher._embed_batch([short, "A much longer sentence that forces padding of the short one in the batch."])
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)


def test_cache_returns_stored_vectors_without_running_the_model(teacher: TextTeacher, monkeypatch):
    first = teacher.encode(["Wheezes are heard."])
    monkeypatch.setattr(teacher, "_embed_batch", lambda texts: pytest.fail("model ran for a cached text"))
    np.testing.assert_array_equal(teacher.encode(["Wheezes are heard."]), first)


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model directory"):
        TextTeacher(tmp_path)


def test_a_local_decoder_model_works_with_last_token_and_hidden_layer(tmp_path: Path):
    """A MedGemma-class teacher goes through the same interface: here a tiny random GPT-2 saved locally."""
    import shutil

    from acula.aligner.teacher import default_teacher_dir
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    src = default_teacher_dir()
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    GPT2Model(GPT2Config(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=2, n_positions=128)
              ).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, tmp_path / name)
    teacher = TextTeacher(tmp_path, pooling="last", layer=1, normalize=False)
    assert teacher.dim == 32 and teacher.teacher_id.endswith(":last:1:0:256")
    alone = teacher._embed_batch(["No wheezes."])
    padded = teacher._embed_batch(["No wheezes.", "A much longer sentence that forces padding of the short one."])
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
    assert teacher.encode(["a", "b"]).shape == (2, 32)


def test_negation_table_shows_the_default_teacher_ignores_negation(teacher: TextTeacher, capsys):
    """Why no task or bundle prompt negates a finding: all-MiniLM-L6-v2 puts 'There is no wheezing.'
    nearer to 'wheezing' than the sentence that affirms it; the CLI prints the table the README cites."""
    from acula.aligner.reports import main, negation_table

    rows = {r["mention"]: r for r in negation_table(teacher)}
    assert rows["wheezing"]["cos_mention_negated"] > rows["wheezing"]["cos_mention_affirmed"]
    assert rows["crackles"]["cos_mention_negated"] > rows["crackles"]["cos_mention_affirmed"]
    assert all(-1.0 <= r[k] <= 1.0 for r in rows.values() for k in r if k.startswith("cos_"))
    assert main(["--negation"]) == 0
    assert "| wheezing |" in capsys.readouterr().out
