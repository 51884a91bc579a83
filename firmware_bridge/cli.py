"""``acula bridge simulate|listen|header``: a stethoscope on a port, the host decoder, the firmware header.

    acula bridge simulate rec.wav --port /dev/pts/5 [--codec adpcm] [--loss 0.01] [--corrupt 0.01]
    acula bridge simulate rec.wav --tcp 127.0.0.1:7000
    acula bridge listen --port /dev/pts/6 [--bundle default]       (or --tcp HOST:PORT, --udp PORT, --replay FILE)
    acula bridge header --bundle default -o acula_bridge.h
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence

from firmware_bridge.decoder import FrameDecoder
from firmware_bridge.protocol import Codec

CODECS = {"pcm16": Codec.PCM16, "mulaw": Codec.MU_LAW, "adpcm": Codec.IMA_ADPCM}


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def simulate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="acula bridge simulate", description="Play a recording as a stethoscope.")
    parser.add_argument("file")
    parser.add_argument("--port", help="serial port (e.g. a pty) to write to")
    parser.add_argument("--tcp", help="HOST:PORT to connect to")
    parser.add_argument("--out", help="write the byte stream to a capture file")
    parser.add_argument("--codec", choices=sorted(CODECS), default="adpcm")
    parser.add_argument("--frame-samples", type=int, default=256)
    parser.add_argument("--rate", type=int, default=16000, help="device sample rate")
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of frames dropped")
    parser.add_argument("--corrupt", type=float, default=0.0, help="fraction of frames with a flipped byte")
    parser.add_argument("--realtime", action="store_true", help="pace frames at the audio rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from firmware_bridge.simulate import stethoscope_frames
    from sdk.audio import load_audio

    clip = load_audio(args.file, args.rate)
    frames, stats = stethoscope_frames(clip.samples, args.rate, CODECS[args.codec], args.frame_samples, args.loss,
                                       args.corrupt, args.seed)
    sink = None
    if args.port:
        from firmware_bridge.transports import SerialTransport

        sink = SerialTransport(args.port)
    elif args.tcp:
        from firmware_bridge.transports import TCPTransport

        sink = TCPTransport(*_hostport(args.tcp))
    data = b"".join(frames)
    if args.out:
        with open(args.out, "wb") as f:
            f.write(data)
    if sink is not None:
        for frame in frames:
            sink.write(frame)
            if args.realtime:
                time.sleep(args.frame_samples / args.rate)
        sink.close()
    print(json.dumps({**stats, "bytes": len(data)}))
    return 0


def listen(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="acula bridge listen", description="Decode a stethoscope stream, screen it.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="serial port")
    src.add_argument("--tcp", help="HOST:PORT to listen on (accepts one device)")
    src.add_argument("--udp", type=int, help="UDP port on 127.0.0.1")
    src.add_argument("--replay", help="capture file")
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--no-screen", action="store_true", help="decode only")
    args = parser.parse_args(argv)
    if args.port:
        from firmware_bridge.transports import SerialTransport

        transport = SerialTransport(args.port)
    elif args.tcp:
        from firmware_bridge.transports import TCPTransport

        server = socket.create_server(_hostport(args.tcp))
        server.settimeout(30)
        conn, _ = server.accept()
        transport = TCPTransport("", 0, sock=conn)
    elif args.udp is not None:
        from firmware_bridge.transports import UDPTransport

        transport = UDPTransport(("127.0.0.1", args.udp))
    else:
        from firmware_bridge.transports import ReplayTransport

        transport = ReplayTransport(args.replay)
    stream = None
    if not args.no_screen:
        import sdk

        stream = sdk.load(args.bundle).stream()
    decoder = FrameDecoder()
    n_samples = n_windows = 0
    rate = None
    for piece in transport.read_chunks():
        for chunk in decoder.feed(piece):
            rate = chunk.sample_rate_hz
            n_samples += chunk.samples.size
            if stream is not None:
                n_windows += len(stream.accept(chunk.samples, rate))
    for chunk in decoder.flush():
        n_samples += chunk.samples.size
        if stream is not None and rate is not None:
            n_windows += len(stream.accept(chunk.samples, rate))
    if stream is not None:
        n_windows += len(stream.flush())
    transport.close()
    result = {"samples": n_samples, "sample_rate_hz": rate, **decoder.counters.__dict__}
    if stream is not None:
        result |= {"windows": n_windows, "cough_events": [e.to_dict() for e in stream.events]}
    print(json.dumps(result))
    return 0


def header(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="acula bridge header", description="Write the firmware C header.")
    parser.add_argument("--bundle", help="take the front end from this bundle (default: FrontendConfig defaults)")
    parser.add_argument("-o", "--out", default="acula_bridge.h")
    args = parser.parse_args(argv)
    from firmware_bridge.header import render_header
    from sdk.frontend_config import FrontendConfig

    cfg, source = FrontendConfig(), "default FrontendConfig"
    if args.bundle:
        from sdk.bundle import BundleError, read_bundle
        from sdk.model import _resolve

        try:
            b = read_bundle(_resolve(args.bundle))
        except BundleError as exc:
            print(f"acula bridge header: {exc}", file=sys.stderr)
            return 1
        cfg, source = b.frontend, f"bundle {b.source}"
    with open(args.out, "w") as f:
        f.write(render_header(cfg, source))
    print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"simulate": simulate, "listen": listen, "header": header}
    if not args or args[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 1
    return commands[args[0]](args[1:])



