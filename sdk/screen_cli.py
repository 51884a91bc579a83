"""``acula screen FILE...`` and ``acula score FILE --labels SET``: run a bundle on recordings."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sdk.audio import AudioClip, AudioError, load_audio
from sdk.bundle import BundleError
from sdk.model import Model, ScoreResult, ScreenResult, load
from sdk.text import prompt_problem

#: What each result problem means, for the text output (the JSON carries the names).
PROBLEM_TEXT = {
    "silent": "digital silence",
    "clipped": "signal clipped",
    "low_level": "low level",
    "truncated": "file truncated (ends before its header says)",
    "too_short": "shorter than one analysis window (scored on a tiled copy)",
    "not_scored": "no window passed the quality gate",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", default="default", help="packaged bundle name, directory or zip")
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "tflite"],
                        help="runtime (tflite: ai-edge-litert or tflite-runtime)")
    parser.add_argument("--precision", default="int8", choices=["int8", "fp32"], help="model file precision")
    parser.add_argument("--json", action="store_true", help="one JSON object per file")


def _load(args: argparse.Namespace) -> Model | None:
    try:
        return load(args.bundle, args.backend, args.precision)
    except (BundleError, ImportError) as exc:
        print(f"acula: {exc}", file=sys.stderr)
        return None


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, ...)")
    _common(parser)
    return parser


def _each_file(args: argparse.Namespace, run: Callable[[Model, AudioClip], Any],
               show: Callable[[str, AudioClip, Any], None]) -> int:
    """Load the bundle, then run every file; a file that cannot be read or scored is reported (a JSON error
    object with --json) and the others still run.  Exit status 1 when the bundle or any file failed.

    Files are passed to the model at their own rate, so quality (clipping above all) is measured before
    resampling, and text and JSON report the same flags: the result's, plus ``truncated`` from the file."""
    model = _load(args)
    if model is None:
        return 1
    failed = 0
    for path in args.files:
        try:
            clip = load_audio(path, target_rate_hz=None)
            result = _with_file_flags(run(model, clip), clip)
            line = json.dumps({"path": path, **result.to_dict()}, allow_nan=False) if args.json else ""
        except (AudioError, ValueError) as exc:
            failed += 1
            print(json.dumps({"path": path, "error": type(exc).__name__, "message": str(exc)}) if args.json
                  else f"{path}: {type(exc).__name__}: {exc}", file=sys.stdout if args.json else sys.stderr)
            continue
        if args.json:
            print(line)
        else:
            show(path, clip, result)
    return 1 if failed else 0


def _with_file_flags(result: Any, clip: AudioClip) -> Any:
    """The result with the file's ``truncated`` flag, which only the file's header can tell."""
    if not clip.quality.truncated or result.quality is None:
        return result
    quality = dataclasses.replace(result.quality, truncated=True)
    if isinstance(result, ScoreResult):
        return dataclasses.replace(result, quality=quality, problems=("truncated", *result.problems))
    return dataclasses.replace(result, quality=quality)


def _describe(problems: Sequence[str]) -> str:
    return "; ".join(PROBLEM_TEXT.get(p, p) for p in problems)


def screen_main(argv: Sequence[str] | None = None) -> int:
    args = _parser("acula screen", "Cough events and signal quality per file.").parse_args(argv)

    def show(path: str, clip: AudioClip, result: ScreenResult) -> None:
        status = _describe(result.problems) or "ok"
        print(f"{path}: {result.duration_s:.1f} s, {status}, {len(result.events)} cough event(s)")
        for e in result.events:
            print(f"  cough {e.start_s:7.2f}-{e.end_s:7.2f} s  confidence {e.confidence:.2f}")

    return _each_file(args, lambda model, clip: model.screen(clip.samples, clip.sample_rate_hz), show)


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

    def show(path: str, clip: AudioClip, result: ScoreResult) -> None:
        if result.probabilities is None:
            print(f"{path}: not scored ({_describe(result.problems)})")
        else:
            ranked = sorted(result.probabilities.items(), key=lambda kv: -kv[1])
            note = f" ({_describe(result.problems)})" if result.problems else ""
            print(f"{path}: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked) + note)

    return _each_file(args, lambda model, clip: model.score(clip.samples, clip.sample_rate_hz, args.labels, custom,
                                                            args.text_bundle), show)
