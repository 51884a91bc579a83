"""``acula screen PATH...`` and ``acula score PATH... --labels SET``: run a bundle on recordings.

A PATH is a file, a folder (every audio file under it) or a glob (quote it: ``'visits/*.flac'``).  Files
stream from disk in blocks (:func:`sdk.audio.iter_audio_blocks`) through one :class:`sdk.Stream` each, so a
recording of any length is screened in the memory of one block, with results identical to the whole file's.
Screening keeps 26 bytes a window (:class:`sdk.results.WindowLog`) and writes its JSON windows one at a time;
scoring keeps those plus one row of label logits (:class:`sdk.results.ScoreLog`), never the embeddings; so
peak memory hardly grows with the recording's length (benchmarks/screen_scaling.py measures it).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import glob
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar, overload

import numpy as np
from acula.sdk.audio import AudioBlocks, AudioError, iter_audio_blocks
from acula.sdk.audio_files import MAX_BLOCK_SAMPLES
from acula.sdk.bundle import BundleError
from acula.sdk.cli import HelpFormatter, checked_type
from acula.sdk.model import Model, load
from acula.sdk.results import ScoreLog, ScoreResult, ScreenResult, WindowLog, WindowResult
from acula.sdk.runtimes import BACKENDS
from acula.sdk.stream import Stream
from acula.sdk.text import CustomLabels, prompt_problem

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
#: the most inference threads ``--threads`` takes (more than a machine's cores only adds switching: 1,000 threads
#: took 38 s on a 3 s file here)
MAX_THREADS = 256
#: Seconds read from disk at a time: a block's temporaries (its float64 copies for the quality gate and the
#: resampler, its FFT frames) are most of the peak memory; 10 s blocks measured 25 MB more than 2 s ones on a
#: 44.1 kHz stereo file, for 3 % less CPU.  1.92 s, four hops: at 16 kHz a block of whole quality blocks and
#: envelope frames, which a stream measures in one pass (7 % less CPU than 2.0 s blocks on a 16 kHz file here).
BLOCK_S = 1.92
#: ... and at most MAX_BLOCK_SAMPLES samples (frames x channels; sdk.audio_files)
#: What each result problem means, for the text output (the JSON carries the names).
PROBLEM_TEXT = {
    "silent": "digital silence",
    "clipped": "signal clipped",
    "low_level": "low level",
    "truncated": "file truncated (ends before its header says)",
    "too_short": "shorter than one analysis window",
    "not_scored": "no window passed the quality gate",
}


def _common(parser: argparse.ArgumentParser, json_help: str = "JSON on stdout, one object per line") -> None:
    """The options every command that runs a bundle shares."""
    parser.add_argument("--bundle", default="default", help="packaged bundle name, directory or zip")
    parser.add_argument("--backend", default="onnxruntime", choices=sorted(BACKENDS),
                        help="runtime (tflite: ai-edge-litert or tflite-runtime)")
    parser.add_argument("--precision", default="auto", choices=["auto", "int8", "fp32"],
                        help="model file precision (auto: int8 where it agrees with fp32 and is not slower on "
                             "this CPU; measured once and cached)")
    parser.add_argument("--threads", type=checked_type(int, lambda v: 1 <= v <= MAX_THREADS,
                                                       f"a whole number from 1 to {MAX_THREADS}"),
                        default=1, help="inference threads")
    parser.add_argument("--json", action="store_true", help=json_help)


def add_cough_threshold(parser: argparse.ArgumentParser) -> None:
    """``--cough-on``, for the commands that detect cough events (screen, listen)."""
    parser.add_argument("--cough-on", type=float, default=None, metavar="P",
                        help="cough event threshold in (0, 1) instead of the bundle's operating point (chosen on "
                             "validation audio; see the README's phone-channel table for each channel)")


def _load(args: argparse.Namespace) -> Model | None:
    if args.threads < 1:
        print(f"acula: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return None
    try:
        model = load(args.bundle, args.backend, args.precision, n_threads=args.threads)
        if getattr(args, "cough_on", None) is not None:
            model.set_cough_threshold(args.cough_on)
        return model
    except (BundleError, ImportError, ValueError) as exc:
        print(f"acula: {exc}", file=sys.stderr)
        return None


def expand_paths(patterns: Sequence[str]) -> Iterator[str]:
    """Files named by ``patterns``: a folder gives every audio file under it (sorted), a glob its sorted matches
    (``**`` recurses), anything else itself (a missing file is reported when it is read)."""
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            yield from (str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        elif not path.exists() and glob.has_magic(pattern):
            matches = sorted(m for m in glob.glob(pattern, recursive=True) if Path(m).is_file())
            yield from matches or [pattern]  # no match: reported as a missing file
        else:
            yield pattern


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and pipes stay clean)."""

    def __init__(self, total: int, what: str, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.what, self.width, self.done = total, what, width, 0
        self.out = stream or sys.stderr
        self.on = total > 0 and self.out.isatty()

    def show(self, name: str = "", fraction: float = 0.0) -> None:
        """Draw ``done`` files finished plus ``fraction`` of the current one."""
        if not self.on:
            return
        f = min(1.0, (self.done + fraction) / self.total)
        bar = "#" * int(f * self.width)
        self.out.write(f"\r{self.what} [{bar:<{self.width}}] {self.done}/{self.total} {name[-40:]:<40}")
        self.out.flush()

    def advance(self) -> None:
        self.done += 1

    def close(self) -> None:
        """Erase the bar (before a result line is printed, and at the end)."""
        if self.on:
            self.out.write("\r" + " " * (self.width + len(self.what) + 56) + "\r")
            self.out.flush()


Windows = MutableSequence[WindowResult]


class WindowSink(Protocol):
    """Where a streamed file's windows go: a list, a :class:`WindowLog` / :class:`ScoreLog` (what screening /
    scoring keep), or :class:`sdk.index_cli.EmbeddingMean` (a running mean)."""

    def extend(self, windows: Iterable[WindowResult], /) -> None: ...


_Sink = TypeVar("_Sink", bound=WindowSink)


@overload
def stream_file(model: Model, blocks: AudioBlocks, on_block: Callable[[np.ndarray], None] | None = None,
                windows: None = None) -> tuple[Stream, list[WindowResult]]: ...


@overload
def stream_file(model: Model, blocks: AudioBlocks, on_block: Callable[[np.ndarray], None] | None = None, *,
                windows: _Sink) -> tuple[Stream, _Sink]: ...


@overload
def stream_file(model: Model, blocks: AudioBlocks, on_block: Callable[[np.ndarray], None] | None,
                windows: _Sink) -> tuple[Stream, _Sink]: ...


def stream_file(model: Model, blocks: AudioBlocks, on_block: Callable[[np.ndarray], None] | None = None,
                windows: Any = None) -> tuple[Stream, Any]:
    """Feed a file's blocks through one new Stream: its windows, as one ``accept`` of the whole file gives,
    go to ``windows`` (default: a new list; see :class:`WindowSink`)."""
    stream = model.stream()
    kept: Any = [] if windows is None else windows
    for block in blocks:
        if on_block is not None:
            on_block(block)
        kept.extend(stream.accept(block, blocks.sample_rate_hz))
    kept.extend(stream.flush())
    return stream, kept


def _finished(model: Model, stream: Stream, windows: Sequence[WindowResult]) -> Model:
    """A shallow copy of ``model`` whose whole-clip run returns this finished stream, so :meth:`Model.screen`
    and :meth:`Model.score` build the results of streamed blocks with their own code (one definition of pooling,
    problems and rates); the weights and runtime are shared, not copied."""
    done = copy.copy(model)
    setattr(done, "_whole", lambda audio, sample_rate_hz: (stream, windows, stream.events))  # noqa: B010
    return done


def screen_result(model: Model, stream: Stream, windows: Sequence[WindowResult], blocks: AudioBlocks
                  ) -> ScreenResult:
    """:meth:`Model.screen`'s result from a finished stream, with the file's ``truncated`` flag."""
    result = _finished(model, stream, windows).screen(np.zeros(0, np.float32), blocks.sample_rate_hz)
    return _with_file_flags(result, blocks)


def score_result(model: Model, stream: Stream, windows: Sequence[WindowResult], blocks: AudioBlocks,
                 label_set: str, labels: dict[str, list[str]] | CustomLabels | None = None,
                 text_bundle: str | None = None) -> ScoreResult:
    """:meth:`Model.score`'s result from a finished stream, with the file's ``truncated`` flag; ``labels``:
    custom labels embedded on the device, or embedded already (see :meth:`Model.score`)."""
    result = _finished(model, stream, windows).score(np.zeros(0, np.float32), blocks.sample_rate_hz, label_set,
                                                     labels, text_bundle)
    return _with_file_flags(result, blocks)


def _with_file_flags(result: Any, blocks: AudioBlocks) -> Any:
    """The result with what only the file can tell: its ``truncated`` flag (the header) and clipping in one of its
    channels (the stream was fed the mixdown, where a channel clipped beside a quiet one does not show)."""
    if result.quality is None:
        return result
    quality = result.quality
    if blocks.truncated:
        quality = dataclasses.replace(quality, truncated=True)
    read = blocks.quality()
    if read.clipped_fraction > quality.clipped_fraction:
        quality = dataclasses.replace(quality, clipped=read.clipped, clipped_fraction=read.clipped_fraction)
    if quality == result.quality:
        return result
    if isinstance(result, ScoreResult):  # its problems are stored: the quality's, then the result's own
        own = tuple(p for p in result.problems if p not in result.quality.problems)
        return dataclasses.replace(result, quality=quality, problems=(*quality.problems, *own))
    return dataclasses.replace(result, quality=quality)


def _describe(problems: Sequence[str], scored: bool = True) -> str:
    """The problems in words; ``scored``: whether the recording was scored all the same (a recording shorter than
    one window is scored on a tiled copy of itself, unless it is shorter than one frame)."""
    tiled = " (scored on a tiled copy)" if scored else ""
    return "; ".join(PROBLEM_TEXT.get(p, p) + (tiled if p == "too_short" else "") for p in problems)


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=HelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="audio files (WAV, FLAC, OGG, ...), folders of them, or quoted globs")
    parser.add_argument("--block-s", type=checked_type(float, lambda v: math.isfinite(v) and v > 0,
                                                       "a positive number of seconds"), default=BLOCK_S,
                        help=f"seconds of audio read from disk at a time (at most {MAX_BLOCK_SAMPLES} samples over all "
                             "channels)")
    _common(parser)
    return parser


Finish = Callable[[Stream, Sequence[WindowResult], AudioBlocks], Any]


def json_line(path: str, result: Any) -> Iterator[str]:
    """One JSON object per file: ``{"path": ..., **result.to_dict()}``."""
    yield json.dumps({"path": path, **result.to_dict()}, allow_nan=False) + "\n"


def screen_json_line(path: str, result: ScreenResult) -> Iterator[str]:
    """:func:`json_line` of a screening, text for text, in pieces: the windows one at a time, so the line of a
    long recording is never held whole (its windows are the last key of :meth:`ScreenResult.to_dict`)."""
    head = json.dumps({"path": path, **result.to_dict(with_windows=False)}, allow_nan=False)
    yield head[:-1] + ', "windows": ['
    for i, w in enumerate(result.windows):
        yield (", " if i else "") + json.dumps(w.to_dict(), allow_nan=False)
    yield "]}\n"


def _each_file(args: argparse.Namespace, what: str, finish: Callable[[Model], Finish],
               show: Callable[[str, Any], None], plot: Callable[[Model, str, Any, Any], bool] | None = None,
               sketch: Callable[[AudioBlocks], Any] | None = None,
               keep: Callable[[Model], Windows | WindowLog] = lambda model: [],
               to_json: Callable[[str, Any], Iterable[str]] = json_line) -> int:
    """Load the bundle, then stream every file; a file that cannot be read or scored is reported (a JSON error
    object with --json) and the others still run.  Exit status 1 when the bundle or any file failed.
    ``keep(model)`` makes the container a file's windows go to, ``to_json`` the pieces of its JSON line.

    Files are passed to the model at their own rate, so quality (clipping above all) is measured before
    resampling, and text and JSON report the same flags: the result's, plus ``truncated`` from the file."""
    model = _load(args)
    if model is None:
        return 1
    paths = list(expand_paths(args.paths))
    if not paths:  # folders with no audio file in them: nothing was done, which is not a success
        print(f"acula: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {', '.join(args.paths)}",
              file=sys.stderr)
        return 1
    progress = Progress(len(paths), what)
    done = finish(model)
    failed = 0
    for path in paths:
        progress.show(path)
        try:
            blocks = iter_audio_blocks(path, args.block_s, MAX_BLOCK_SAMPLES)
            drawing = sketch(blocks) if sketch is not None else None
            n_blocks = max(1, -(-blocks.n_frames // blocks.block_frames))

            def on_block(block: np.ndarray, blocks: AudioBlocks = blocks, drawing: Any = drawing,
                         path: str = path, n_blocks: int = n_blocks) -> None:
                progress.show(path, min(1.0, blocks.n_samples / blocks.block_frames / n_blocks))
                if drawing is not None:
                    drawing.add(block)

            result = done(*stream_file(model, blocks, on_block, keep(model)), blocks)
        except (AudioError, ValueError, OSError) as exc:
            failed += 1
            progress.advance()
            progress.close()
            print(json.dumps({"path": path, "error": type(exc).__name__, "message": str(exc)}) if args.json
                  else f"{path}: {type(exc).__name__}: {exc}", file=sys.stdout if args.json else sys.stderr)
            continue
        progress.advance()
        progress.close()
        if args.json:
            sys.stdout.writelines(to_json(path, result))
            sys.stdout.flush()
        else:
            show(path, result)
        if plot is not None and drawing is not None and not plot(model, path, result, drawing):
            failed += 1  # the file was screened, but the figure asked for is missing
    progress.close()
    return 1 if failed else 0


def _plot_path(out: str | None, path: str, n_files: int) -> Path:
    target = Path(out) if out else Path(".")
    if out and target.suffix.lower() == ".png" and n_files == 1:
        return target
    return target / f"{Path(path).stem}.screen.png"


def screen_main(argv: Sequence[str] | None = None) -> int:
    parser = _parser("acula screen", "Cough events and signal quality per file.")
    add_cough_threshold(parser)
    parser.add_argument("--plot", action="store_true",
                        help="draw each file (waveform, spectrogram, cough probability, threshold, events) to a PNG")
    parser.add_argument("--out", help="with --plot: a .png file (one input) or a folder; "
                                      "default: <name>.screen.png in the current folder")
    args = parser.parse_args(argv)
    if args.out and not args.plot:
        parser.error("--out names where --plot writes: add --plot")

    def show(path: str, result: ScreenResult) -> None:
        status = _describe(result.problems, scored=len(result.windows) > 0) or "ok"
        print(f"{path}: {result.duration_s:.1f} s, {status}, {len(result.events)} cough event(s)")
        for e in result.events:
            print(f"  cough {e.start_s:7.2f}-{e.end_s:7.2f} s  confidence {e.confidence:.2f}")

    n_files = len(list(expand_paths(args.paths)))

    def plot(model: Model, path: str, result: ScreenResult, drawing: Any) -> bool:
        from acula.sdk.figure import screening_figure

        target = _plot_path(args.out, path, n_files)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            screening_figure(drawing, result, model.screening.on, f"{Path(path).name}: cough screening").save(target)
        except OSError as exc:
            print(f"acula screen: cannot write {target}: {exc}", file=sys.stderr)
            return False
        print(f"wrote {target}", file=sys.stderr if args.json else sys.stdout)
        return True

    def sketch(blocks: AudioBlocks) -> Any:
        from acula.sdk.figure import SignalSketch

        return SignalSketch(blocks.sample_rate_hz, blocks.n_frames)

    def finish(model: Model) -> Finish:
        return lambda stream, windows, blocks: screen_result(model, stream, windows, blocks)

    return _each_file(args, "screening", finish, show, plot if args.plot else None, sketch if args.plot else None,
                      keep=lambda model: WindowLog(), to_json=screen_json_line)


def score_main(argv: Sequence[str] | None = None) -> int:
    parser = _parser("acula score", "Zero-shot clip probabilities for a label set.")
    parser.add_argument("--labels", default="lung", help="label set (heart, lung, sound, ...)")
    parser.add_argument("--prompt", action="append", metavar="TEXT", help="custom label, embedded on the device; "
                        "repeat (two or more), replaces --labels; needs a text bundle (acula export-text)")
    parser.add_argument("--text-bundle", help="text bundle for --prompt (default: $ACULA_TEXT_BUNDLE)")
    args = parser.parse_args(argv)
    if args.prompt and (problem := prompt_problem(args.prompt, args.text_bundle)):
        print(f"acula score: {problem}", file=sys.stderr)
        return 1
    custom = {p: [p] for p in args.prompt} if args.prompt else None

    def show(path: str, result: ScoreResult) -> None:
        if result.probabilities is None:
            print(f"{path}: not scored ({_describe(result.problems, scored=False)})")
        else:
            ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])
            note = f" ({_describe(result.problems)})" if result.problems else ""
            print(f"{path}: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked) + note)

    def finish(model: Model) -> Finish:
        if custom is None and args.labels not in model.label_sets:
            message = f"label set {args.labels!r} is not in this bundle; it offers {sorted(model.label_sets)}"
            if args.json:  # --json: the error is a JSON object on stdout too
                print(json.dumps({"error": "ValueError", "message": message}))
                raise SystemExit(1)
            raise SystemExit(f"acula score: {message}")
        # custom labels go in embedded once (by keep, before the first file's windows), for every file
        return lambda stream, windows, blocks: score_result(model, stream, windows, blocks, args.labels,
                                                            built[0] if built else None, args.text_bundle)

    built: list[CustomLabels] = []  # the custom labels, embedded on the first file

    def keep(model: Model) -> ScoreLog:
        """Per window, only the label logits the score pools (custom: from the embedding, as it arrives)."""
        if custom is None:
            return ScoreLog(args.labels, lambda w: w.label_logits[args.labels], len(model.label_sets[args.labels]))
        if not built:
            built.append(CustomLabels.build(custom, lambda t: model.embed_text(t, args.text_bundle)))
        labels = built[0]
        return ScoreLog("custom", lambda w: labels.logits(w.embedding[None], model.logit_scale)[0], len(labels.names))

    return _each_file(args, "scoring", finish, show, keep=keep)
