"""``acula index build FOLDER --out INDEX`` and ``acula search FILE --index INDEX``.

Build: every audio file under FOLDER is embedded with the bundle (mean of its
window embeddings); a ``labels.csv`` in FOLDER (``file,label,report`` columns)
attaches labels and reports.  Search: the k most similar references to a file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from acula.sdk.audio import AudioError, iter_audio_blocks
from acula.sdk.cli import checked_type
from acula.sdk.model import Model
from acula.sdk.results import WindowResult
from acula.sdk.scoring import check_matchable
from acula.sdk.screen_cli import AUDIO_SUFFIXES, MAX_BLOCK_SAMPLES, Progress, _common, _load, stream_file
from acula.sdk.search import HNSW_MIN_ITEMS, CaseIndex


def clip_embedding(model: Model, path: Path, block_s: float = 10.0) -> np.ndarray:
    """Mean of the unit-normalised window embeddings of a file, streamed from disk in blocks.  AudioError for a
    file too short for one window or silent throughout (nothing to match it by)."""
    blocks = iter_audio_blocks(path, block_s, MAX_BLOCK_SAMPLES)
    stream, mean = stream_file(model, blocks, windows=EmbeddingMean())
    check_matchable(stream.quality(), len(mean), str(path), "index")
    return mean.value()


class EmbeddingMean:
    """:func:`sdk.scoring.clip_embedding` of a file's windows, kept as they arrive: one running sum of the
    unit-normalised embeddings instead of every window's embedding (2 KB a window: 15 MB an hour).  The sum is
    taken row after row in float32, the order numpy's ``mean(axis=0)`` adds rows in, so the value equals the
    whole-array call bit for bit (tests/test_cli_streaming.py)."""

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self._n = 0

    def extend(self, windows: Iterable[WindowResult]) -> None:
        rows = [w.embedding for w in windows]
        if not rows:
            return
        e = np.stack(rows)
        unit = e / np.linalg.norm(e, axis=1, keepdims=True)
        if self._sum is None:
            self._sum = np.zeros(unit.shape[1], unit.dtype)
        for row in unit:
            self._sum += row
        self._n += len(rows)

    def __len__(self) -> int:
        return self._n

    def value(self) -> np.ndarray:
        if self._sum is None:
            raise ValueError("no window was added")
        return self._sum / self._n


def _build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="reference recordings (labels from labels.csv beside them, if present)")
    parser.add_argument("--out", required=True, help="index file to write")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing index file at --out")
    parser.add_argument("--kind", default="auto", choices=["auto", "flat", "hnsw"],
                        help=f"faiss index type (auto: exact flat search below {HNSW_MIN_ITEMS:,} recordings, HNSW "
                             "from there)")
    _common(parser, json_help="print the summary as one JSON object on stdout")


def build_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="acula index build", description=__doc__)
    _build_arguments(parser)
    return _build(parser.parse_args(argv))


def _build(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"acula index build: {folder} is not a folder of recordings", file=sys.stderr)
        return 1
    if Path(args.out).exists() and not args.force:
        print(f"acula index build: {args.out} exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    model = _load(args)
    if model is None:
        return 1
    labels = {}
    if (folder / "labels.csv").is_file():
        try:
            with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
                labels = {row["file"]: row for row in csv.DictReader(f)}
        except (KeyError, UnicodeDecodeError, csv.Error) as exc:
            print(f"acula index build: {folder / 'labels.csv'} needs a 'file' column of UTF-8 CSV "
                  f"({type(exc).__name__}: {exc})", file=sys.stderr)
            return 1
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    embs, items, skipped = [], [], []
    progress = Progress(len(files), "indexing")
    for path in files:
        rel = path.relative_to(folder).as_posix()
        progress.show(rel)
        try:
            embs.append(clip_embedding(model, path))
        except AudioError as exc:
            skipped.append({"file": rel, "reason": str(exc)})
            continue
        finally:
            progress.advance()
            progress.show(rel, 0.0)
        items.append({"file": rel, **{k: v for k, v in labels.get(rel, {}).items() if k != "file"}})
    progress.close()
    if not items:
        for skip in skipped:
            print(f"  skipped {skip['file']}: {skip['reason']}", file=sys.stderr)
        print(f"acula index build: no usable audio under {folder}", file=sys.stderr)
        return 1
    index = CaseIndex(len(embs[0]), args.kind, len(items), model=model.bundle.sha256 or None)
    index.add(np.stack(embs), items)
    try:
        index.save(args.out)
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        print(f"acula index build: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"out": args.out, "kind": index.kind, "n_indexed": len(items), "skipped": skipped}))
    else:
        print(f"indexed {len(items)} recordings ({index.kind}) into {args.out}; skipped {len(skipped)}")
    for skip in skipped:
        print(f"  skipped {skip['file']}: {skip['reason']}", file=sys.stderr)
    return 0


def search_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula search", description="The most similar reference recordings.")
    parser.add_argument("file", help="audio file to match")
    parser.add_argument("--index", required=True, help="index written by 'acula index build'")
    parser.add_argument("-k", type=checked_type(int, lambda v: v >= 1, "a whole number of matches, at least 1"),
                        default=5, help="how many matches")
    parser.add_argument("--ef-search", type=int, help="HNSW candidates visited per search (more: higher recall, "
                                                      "slower; default: the one stored with the index)")
    _common(parser)
    args = parser.parse_args(argv)
    model = _load(args)
    if model is None:
        return 1
    try:
        index = CaseIndex.load(args.index)
        if index.model and model.bundle.sha256 and index.model != model.bundle.sha256:
            raise ValueError(f"{args.index} was built with the bundle {index.model[:12]}..., this is "
                             f"{model.bundle.sha256[:12]}...: their embeddings do not compare (pass that bundle with "
                             "--bundle, or build the index again)")
        matches = index.search(clip_embedding(model, Path(args.file)), args.k, args.ef_search)
    except (AudioError, FileNotFoundError, ValueError) as exc:
        print(f"acula search: {exc}", file=sys.stderr)
        return 1
    for m in matches:
        print(json.dumps(m.to_dict()) if args.json else f"{m.score:6.3f}  {m.item}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="acula index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="{build}")
    _build_arguments(sub.add_parser("build", help="embed a folder of recordings into a case index",
                                    description="Embed every recording under FOLDER into a case index."))
    return _build(parser.parse_args(argv))
