"""The ``acula`` command line: one console script, subcommands loaded lazily.

Each subcommand lives in its own module with a ``main(argv=None) -> int``, so
tests call it directly and ``acula X`` imports only what X needs.  Server-side
subcommands (corpus, align, distill, export) are named here as strings and
imported on demand; the SDK itself never imports them.

A user's mistake ends in one line on stderr and exit status 1, never a
traceback: subcommands refuse what they can name, and :func:`main` catches the
path errors that slip through (set ``ACULA_DEBUG=1`` to see the traceback) and a
closed stdout (``acula screen ... | head``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

#: name -> (module holding main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("acula.sdk.demo", "synthesise a recording, screen and score it with the packaged model, plot it"),
    "check": ("acula.sdk.check", "load audio files and report rate, length and quality flags"),
    "info": ("acula.sdk.info", "verify a model bundle and describe it"),
    "bench": ("acula.sdk.bench", "latency, real-time factor, cold start, memory on this device; 'bench compare A B'"),
    "screen": ("acula.sdk.screen_cli:screen_main", "cough events and signal quality for audio files"),
    "score": ("acula.sdk.screen_cli:score_main", "zero-shot clip probabilities for a label set (heart, lung, sound)"),
    "listen": ("acula.sdk.listen_cli:listen_main", "screen live audio from the default input into an event store"),
    "report": ("acula.sdk.listen_cli:report_main", "draw stored events over time and counts per hour to a PNG"),
    "index": ("acula.sdk.index_cli", "build a similar-case index from a folder of recordings"),
    "search": ("acula.sdk.index_cli:search_main", "find the most similar reference recordings to a file"),
    "bridge": ("acula.firmware_bridge.cli",
               "stethoscope bridge: simulate a device, decode and screen, write the C header"),
    "corpus": ("acula.aligner.corpus_cli", "build or inspect a training corpus (needs [train])"),
    "align": ("acula.aligner.train", "post-train an audio encoder against the text teacher (needs [train])"),
    "distill": ("acula.distill.train", "distil an aligned teacher into the streaming student (needs [train])"),
    "export": ("acula.export.cli", "write the student as ONNX/TFLite fp32+int8 into a hashed bundle (needs [export])"),
    "export-text": ("acula.export.text", "the text teacher as an ONNX text bundle, for custom prompts on the device"),
    "export-mcu": ("acula.export.mcu",
                   "firmware kit: C99 front end + int8 model for TFLite Micro (needs [tflite], [mcu])"),
    "eval": ("acula.aligner.evaluate", "linear-probe and zero-shot AUROC on the task table (needs [train])"),
    "eval-primary": ("acula.aligner.primary",
                     "primary evaluation: paired CIs, worst groups, invariance (needs [train])"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every subcommand's help formatter: adds "(default: X)" once, and only where there is a default to tell
    (not None or False) and the help text does not already say what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action) or text


def checked_type(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type`` that converts a value and refuses one outside its range with a sentence naming what
    it expected ("expected a positive number, got 'x'") instead of argparse's bare "invalid value"."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: acula [--version] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'acula COMMAND --help' for a command's options."]
    return "\n".join(lines)


def version() -> str:
    from acula.sdk import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = args[0] if args and args[0] in COMMANDS else ""
    prog = f"acula {name}" if name else "acula"
    try:
        status = _dispatch(args)
        sys.stdout.flush()  # a write that fails (a full disk) fails here, inside the handlers below
        return status
    except SystemExit as exc:  # argparse's --help and usage errors: a status for in-process callers too
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (acula ... | head): stop quietly; point stdout at /dev/null so the interpreter's
        # final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a process killed by the signal would report
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a missing or forbidden path, or output that cannot be written (a full disk)
        if os.environ.get("ACULA_DEBUG"):
            raise
        try:
            sys.stdout.flush()
        except OSError:  # stdout itself failed: drop what it holds, so the interpreter's last flush cannot raise
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"acula {version()}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"acula: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 1
    module_name, _, func = COMMANDS[name][0].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"acula {name}: {exc}. Install the extra it needs, e.g. pip install 'acula-edge[train]'", file=sys.stderr)
        return 1
    return int(getattr(module, func or "main")(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
