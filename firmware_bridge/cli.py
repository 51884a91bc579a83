"""``acula bridge simulate|listen|header``: a stethoscope on a port, the host decoder, the firmware header.

    acula bridge simulate rec.wav --port /dev/pts/5 [--codec adpcm] [--loss 0.01] [--corrupt 0.01]
    acula bridge simulate rec.wav --tcp 127.0.0.1:7000
    acula bridge listen --port /dev/pts/6 [--bundle default]       (or --tcp HOST:PORT, --udp PORT, --replay FILE)
    acula bridge header --bundle default -o acula_bridge.h
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from acula.firmware_bridge.codecs import AUDIO_CODECS
from acula.firmware_bridge.decoder import FrameDecoder
from acula.firmware_bridge.protocol import MAX_PAYLOAD, SAMPLE_RATES_HZ
from acula.sdk.cli import HelpFormatter, checked_type


class CommandError(Exception):
    """A user mistake found while running (a path, a port, a bundle): printed as one line, exit 1."""


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 1..65535, got {text!r}")
    return host or "127.0.0.1", number


def _port(text: str) -> int:
    try:
        return _hostport(f":{text}")[1]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {text!r}") from None


_positive_int = checked_type(int, lambda v: v > 0, "a positive whole number")
_fraction = checked_type(float, lambda v: 0.0 <= v <= 1.0, "a fraction between 0 and 1")
_seconds = checked_type(float, lambda v: v > 0, "a positive number of seconds")


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="recording to play (any audio file the SDK reads)")
    parser.add_argument("--port", help="serial port (e.g. a pty) to write to")
    parser.add_argument("--tcp", type=_hostport, help="HOST:PORT to connect to")
    parser.add_argument("--out", help="write the byte stream to a capture file")
    parser.add_argument("--codec", choices=sorted(AUDIO_CODECS), default="adpcm", help="audio codec of the frames")
    parser.add_argument("--frame-samples", type=_positive_int, default=256, help="samples per frame")
    parser.add_argument("--rate", type=int, choices=SAMPLE_RATES_HZ, default=16000, metavar="HZ",
                        help=f"device sample rate, one of {', '.join(map(str, SAMPLE_RATES_HZ))}")
    parser.add_argument("--loss", type=_fraction, default=0.0, help="fraction of frames dropped")
    parser.add_argument("--corrupt", type=_fraction, default=0.0, help="fraction of frames with a flipped byte")
    parser.add_argument("--realtime", action="store_true", help="pace frames at the audio rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated loss and corruption")


def simulate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Play a recording as a stethoscope."""
    codec = AUDIO_CODECS[args.codec]
    if args.frame_samples > codec.max_frame_samples:
        parser.error(f"--frame-samples {args.frame_samples} does not fit one {args.codec} frame "
                     f"(at most {codec.max_frame_samples} samples in MAX_PAYLOAD={MAX_PAYLOAD} bytes)")
    from acula.firmware_bridge.simulate import stethoscope_frames
    from acula.sdk.audio import AudioError, load_audio

    try:
        clip = load_audio(args.file, args.rate)
    except AudioError as exc:
        raise CommandError(str(exc)) from exc
    frames, stats = stethoscope_frames(clip.samples, args.rate, codec.codec, args.frame_samples, args.loss,
                                       args.corrupt, args.seed)
    data = b"".join(frames)
    if args.out:
        _write(args.out, data)
    sink: Any = None
    try:
        if args.port:
            from acula.firmware_bridge.transports import SerialTransport

            sink = SerialTransport(args.port)
        elif args.tcp:
            from acula.firmware_bridge.transports import TCPTransport

            sink = TCPTransport(*args.tcp)
        if sink is not None:
            for frame in frames:
                sink.write(frame)
                if args.realtime:
                    time.sleep(args.frame_samples / args.rate)
            sink.close()
    except OSError as exc:  # includes serial.SerialException and refused / reset connections
        raise CommandError(f"cannot send to {args.port or ':'.join(map(str, args.tcp))}: {exc}") from exc
    print(json.dumps({**stats, "bytes": len(data)}))
    return 0


def _open_source(args: argparse.Namespace) -> Any:
    try:
        if args.port:
            from acula.firmware_bridge.transports import SerialTransport

            return SerialTransport(args.port, idle_timeout_s=args.idle_timeout)
        if args.tcp:
            import socket

            from acula.firmware_bridge.transports import TCPTransport

            with socket.create_server(args.tcp) as server:
                server.settimeout(args.idle_timeout)
                try:
                    conn, _ = server.accept()
                except TimeoutError as exc:
                    raise CommandError(f"no device connected to {':'.join(map(str, args.tcp))} "
                                       f"within --idle-timeout {args.idle_timeout} s") from exc
            return TCPTransport("", 0, timeout_s=args.idle_timeout, sock=conn)
        if args.udp is not None:
            from acula.firmware_bridge.transports import UDPTransport

            return UDPTransport(("127.0.0.1", args.udp), timeout_s=args.idle_timeout)
        from acula.firmware_bridge.transports import ReplayTransport

        return ReplayTransport(args.replay)
    except OSError as exc:
        source = args.port or args.replay or (f"UDP port {args.udp}" if args.udp is not None else args.tcp)
        raise CommandError(f"cannot open {source}: {exc}") from exc


class _Screening:
    """One SDK stream per decoder segment: a restart, a long gap or a new sample rate starts a new stream,
    so windows never straddle a break in the timeline.  A segment's frames (a few ms of audio each) are held
    until the next window can complete (``Stream.samples_until_window`` / ``frames_until_window``) and fed in one
    call: the same windows, a window's work in one call rather than one per frame."""

    def __init__(self, model: Any) -> None:
        self.model, self.stream, self.segment = model, None, -1
        self.n_windows, self.events = 0, []
        self._held: Any = None  # sdk.stream.HeldBlocks: the segment's samples (int16) or feature frames not fed yet
        self._rate = 0

    def accept(self, chunk: Any) -> None:
        if chunk.segment != self.segment:  # one rate and one mode a segment
            from acula.sdk.stream import HeldBlocks

            self.close()
            self.stream, self.segment = self.model.stream(), chunk.segment
            self._held, self._rate = HeldBlocks(features=chunk.features is not None), chunk.sample_rate_hz
        part = chunk.features if chunk.features is not None else chunk.samples
        if part.shape[0]:
            self._feed(self._held.add(part, self.stream))

    def _feed(self, held: Any) -> None:
        if held is None:
            return
        if self._held.features:
            self.n_windows += len(self.stream.accept_features(held))
        else:
            self.n_windows += len(self.stream.accept(held, self._rate))

    def close(self) -> None:
        if self.stream is not None:
            self._feed(self._held.take())
            self.n_windows += len(self.stream.flush())
            self.events += [{**e.to_dict(), "segment": self.segment} for e in self.stream.events]
            self.stream = None


def _listen_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="serial port")
    src.add_argument("--tcp", type=_hostport, help="HOST:PORT to listen on (accepts one device)")
    src.add_argument("--udp", type=_port, help="UDP port on 127.0.0.1")
    src.add_argument("--replay", help="capture file written by 'acula bridge simulate --out'")
    parser.add_argument("--bundle", default="default", help="packaged bundle name, directory or zip")
    parser.add_argument("--threads", type=_positive_int, default=1, help="inference threads")
    parser.add_argument("--no-screen", action="store_true", help="decode only")
    parser.add_argument("--idle-timeout", type=_seconds, default=None, metavar="S",
                        help="live sources: stop after S seconds without data (default: wait for the device's END "
                             "frame or Ctrl-C)")


def listen(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Decode a stethoscope stream, screen it."""
    screening = None
    n_mels = 64
    if not args.no_screen:
        from acula.sdk.bundle import BundleError

        from acula import sdk

        try:
            model = sdk.load(args.bundle, n_threads=args.threads)
        except BundleError as exc:
            raise CommandError(str(exc)) from exc
        screening = _Screening(model)
        n_mels = model.frontend.config.n_mels
    transport = _open_source(args)
    decoder = FrameDecoder(n_mels=n_mels)
    n_samples = 0
    rates: list[int] = []
    live = not args.replay
    from acula.sdk.audio import AudioError

    def consume(chunks: list[Any]) -> bool:
        nonlocal n_samples
        for chunk in chunks:
            if not rates or rates[-1] != chunk.sample_rate_hz:
                rates.append(chunk.sample_rate_hz)
            n_samples += chunk.samples.size
            if screening is not None:
                screening.accept(chunk)
        return live and any(c.end for c in chunks)

    broken = None
    try:
        try:
            for piece in transport.read_chunks():
                if consume(decoder.feed(piece)):
                    break
        except KeyboardInterrupt:  # the way to end a session without an END frame or --idle-timeout
            print("acula bridge listen: interrupted, summarising what arrived", file=sys.stderr)
        except OSError as exc:  # a device unplugged, a peer that reset: what arrived is still decoded and summarised
            broken = f"reading the stream failed: {exc}"
            print(f"acula bridge listen: {broken}; summarising what arrived", file=sys.stderr)
        consume(decoder.flush())
        if screening is not None:
            screening.close()
    except AudioError as exc:
        raise CommandError(f"cannot screen the decoded stream: {exc}") from exc
    finally:
        transport.close()
    c = decoder.counters
    result: dict[str, Any] = {"samples": n_samples, "sample_rate_hz": rates[-1] if rates else None,
                              "sample_rates_hz": rates, "segments": decoder.n_segments,
                              **c.__dict__}
    if c.feature_frames:
        result["mode"] = "features" if not n_samples else "audio+features"
    if screening is not None:
        result |= {"windows": screening.n_windows, "cough_events": screening.events}
    elif c.feature_frames:
        result["note"] = (f"{c.feature_frames} feature-mode frames (device-computed log-mel) decoded; "
                          "they carry no samples: drop --no-screen to score them")
    if broken is not None:
        result["error"] = broken
    print(json.dumps(result))
    return 1 if broken is not None else 0


def _write(path: str, data: bytes | str) -> None:
    try:
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _header_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", help="take the front end from this bundle (default: FrontendConfig defaults)")
    parser.add_argument("-o", "--out", default="acula_bridge.h", help="C header to write")


def header(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Write the firmware C header."""
    from acula.firmware_bridge.header import render_header
    from acula.sdk.frontend_config import FrontendConfig

    cfg, source = FrontendConfig(), "default FrontendConfig"
    if args.bundle:
        from acula.sdk.bundle import BundleError, read_bundle
        from acula.sdk.model import _resolve

        try:
            b = read_bundle(_resolve(args.bundle))
        except BundleError as exc:
            raise CommandError(str(exc)) from exc
        cfg, source = b.frontend, f"bundle {b.source}"
    _write(args.out, render_header(cfg, source))
    print(f"wrote {args.out}")
    return 0


#: subcommand -> (add its arguments, run it, one-line help)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace, argparse.ArgumentParser], int], str]] = {
    "simulate": (_simulate_arguments, simulate, "play a recording as a stethoscope (port, TCP or capture file)"),
    "listen": (_listen_arguments, listen, "decode a stethoscope stream (port, TCP, UDP or capture file), screen it"),
    "header": (_header_arguments, header, "write the firmware C header of the front end"),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="acula bridge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    parsers = {}
    for name, (add_arguments, run, help_) in COMMANDS.items():
        parsers[name] = sub.add_parser(name, help=help_, description=run.__doc__,
                                       formatter_class=HelpFormatter)
        add_arguments(parsers[name])
    return parser, parsers


def main(argv: Sequence[str] | None = None) -> int:
    parser, parsers = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command][1](args, parsers[args.command])
    except CommandError as exc:
        print(f"acula bridge {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (`acula bridge ... | head -c 10`): say so once, and keep the interpreter's
        # final flush of stdout from raising again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"acula bridge {args.command}: output pipe closed before the result was written", file=sys.stderr)
        return 1
