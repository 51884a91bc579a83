"""Similar-case search with a real faiss index: flat and HNSW, save and load, through the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from acula.sdk.search import CaseIndex


def clusters(n: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, dim))
    labels = rng.integers(0, 4, n)
    return (centres[labels] + 0.1 * rng.standard_normal((n, dim))).astype(np.float32), [
        {"label": f"c{lab}", "report": f"case {i}"} for i, lab in enumerate(labels)]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_returns_neighbours_of_the_same_cluster_and_survives_save_load(kind: str, tmp_path: Path):
    x, items = clusters(300)
    index = CaseIndex(16, kind)
    index.add(x, items)
    loaded = CaseIndex.load(index.save(tmp_path / "idx"))
    for q in (0, 17, 123):
        matches = loaded.search(x[q], k=5)
        assert matches[0].item == items[q] and matches[0].score == pytest.approx(1.0, abs=1e-4)
        assert all(m.item["label"] == items[q]["label"] for m in matches)
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_auto_picks_flat_for_small_and_refuses_bad_input(tmp_path: Path):
    assert CaseIndex(4, "auto", 10).kind == "flat"
    index = CaseIndex(4)
    with pytest.raises(ValueError, match="need 2 items"):
        index.add(np.ones((2, 4)), [{}])
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((1, 4), np.nan), [{}])
    assert index.search(np.ones(4)) == []
    with pytest.raises(FileNotFoundError, match="acula index build"):
        CaseIndex.load(tmp_path)


def test_index_build_and_search_cli_on_a_toy_bundle(tmp_path: Path, capsys):
    pytest.importorskip("onnx")
    import soundfile as sf
    from acula.sdk.cli import main
    from acula.sdk.synth import synth_recording

    from tests.toy_bundle import make_toy_bundle

    bundle = make_toy_bundle(tmp_path / "b")
    refs = tmp_path / "refs"
    refs.mkdir()
    for i in range(4):
        sf.write(refs / f"r{i}.wav", synth_recording(3.0, seed=i, heart_rate_bpm=60 + 20 * i)[0], 16000)
    (refs / "broken.wav").write_bytes(b"junk")
    (refs / "labels.csv").write_text("file,label,report\nr0.wav,normal,Normal heart sounds.\n")
    assert main(["index", "build", str(refs), "--out", str(tmp_path / "idx"), "--bundle", str(bundle)]) == 0
    assert "skipped broken.wav" in capsys.readouterr().err
    assert main(["search", str(refs / "r0.wav"), "--index", str(tmp_path / "idx"), "--bundle", str(bundle),
                 "-k", "2", "--ef-search", "32", "--json"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert '"file": "r0.wav"' in first and '"label": "normal"' in first


def gaussian_clusters(n: int, dim: int, seed: int) -> np.ndarray:
    """Points around 50 fixed centres with as much spread inside a cluster as between centres: neighbours are
    found inside crowded clusters, where a graph search with too few candidates misses some."""
    centres = np.random.default_rng(0).standard_normal((50, dim))
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(0, 50, n)] + 0.7 * rng.standard_normal((n, dim))).astype(np.float32)


def test_hnsw_default_ef_search_meets_recall_at_5_and_a_search_may_override_it(tmp_path: Path):
    import faiss

    x, queries = gaussian_clusters(5000, 64, seed=1), gaussian_clusters(200, 64, seed=2)
    index = CaseIndex(64, "hnsw")
    index.add(x, [{"i": i} for i in range(len(x))])
    exact = CaseIndex(64, "flat")
    exact.add(x, index.items)
    truth = exact.search_ids(queries, 5)[1]

    def recall(ids: np.ndarray) -> float:
        return float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, truth, strict=True)]))

    assert recall(index.search_ids(queries, 5)[1]) >= 0.95
    visited = []
    for ef in (5, 200):
        faiss.cvar.hnsw_stats.reset()
        index.search_ids(queries, 5, ef_search=ef)
        visited.append(faiss.cvar.hnsw_stats.ndis)
    assert visited[1] > 3 * visited[0]  # the override reaches faiss
    loaded = CaseIndex.load(index.save(tmp_path / "idx"))
    assert loaded.ef_search == index.ef_search
    assert np.array_equal(loaded.search_ids(queries, 5)[1], index.search_ids(queries, 5)[1])
    assert loaded.search(queries[0], 3, ef_search=64)[0].item == index.items[truth[0, 0]]


def test_hnsw_parameters_are_checked():
    with pytest.raises(ValueError, match="ef_search"):
        CaseIndex(8, "hnsw", ef_search=0)
    index = CaseIndex(8, "hnsw")
    index.add(np.eye(8, dtype=np.float32), [{}] * 8)
    with pytest.raises(ValueError, match="ef_search must be a whole number >= 1"):
        index.search(np.ones(8), ef_search=0)


def test_bad_queries_and_bad_index_files_get_a_sentence_not_a_faiss_error(tmp_path: Path):
    x, items = clusters(50, dim=8)
    index = CaseIndex(8, "hnsw", model="abc123")
    index.add(x, items)
    for k in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="k, the number of matches"):
            index.search(x[0], k)
    with pytest.raises(ValueError, match="dimension 16 for an index of dimension 8"):
        index.search(np.ones(16), 3)
    assert index.search(x[0], 3, ef_search=10**12)[0].item == items[0]  # more candidates than items: all of them
    folder = index.save(tmp_path / "idx")
    assert CaseIndex.load(folder).model == "abc123"
    good = (folder / "index.faiss").read_bytes()
    (folder / "index.faiss").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="index.faiss cannot be read"):
        CaseIndex.load(folder)
    (folder / "index.faiss").write_bytes(good)
    for meta in ("{}", "[]", "not json", '{"kind": "flat", "dim": "8", "n": 50}'):
        (folder / "index.json").write_text(meta)
        with pytest.raises(ValueError, match="is not a case index's description"):
            CaseIndex.load(folder)


def test_an_item_that_is_not_json_is_refused_at_add_and_a_failed_save_keeps_the_old_index(tmp_path: Path,
                                                                                         monkeypatch):
    x, items = clusters(20, dim=8)
    index = CaseIndex(8, "flat")
    index.add(x[:10], items[:10])
    folder = index.save(tmp_path / "idx")
    with pytest.raises(ValueError, match="item 0 cannot be saved as JSON"):
        index.add(x[10:11], [{"score": object()}])
    assert len(index.items) == index.index.ntotal == 10  # nothing half-added
    index.add(x[10:], items[10:])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        index.save(folder)
    monkeypatch.undo()
    assert len(CaseIndex.load(folder).items) == 10 and not list(folder.glob("*.tmp"))  # the old index, whole
