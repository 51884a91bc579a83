"""Byte transports for the bridge: serial (pyserial), TCP, UDP, and replay from a capture file.

Each transport is an iterator of ``bytes`` pieces (``read_chunks``) and has
``write``; the decoder takes whatever pieces arrive.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class SerialTransport:
    def __init__(self, port: str, baudrate: int = 921600, timeout_s: float = 0.2) -> None:
        try:
            import serial
        except ImportError as exc:
            raise ImportError("the serial transport needs: pip install 'acula-edge[serial]'") from exc
        self.port = serial.Serial(port, baudrate=baudrate, timeout=timeout_s)

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read_chunks(self, idle_timeouts: int = 5) -> Iterator[bytes]:
        """Yield pieces until ``idle_timeouts`` reads in a row return nothing."""
        idle = 0
        while idle < idle_timeouts:
            data = self.port.read(4096)
            if data:
                idle = 0
                yield data
            else:
                idle += 1

    def close(self) -> None:
        self.port.close()


class TCPTransport:
    def __init__(self, host: str, port: int, timeout_s: float = 2.0, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.create_connection((host, port), timeout=timeout_s)
        self.sock.settimeout(timeout_s)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_chunks(self) -> Iterator[bytes]:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return
            if not data:
                return
            yield data

    def close(self) -> None:
        self.sock.close()


class UDPTransport:
    """One datagram per frame (what Wi-Fi stethoscopes send); loss and reordering are the decoder's job."""

    def __init__(self, bind: tuple[str, int] = ("127.0.0.1", 0), timeout_s: float = 1.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.sock.settimeout(timeout_s)
        self.address = self.sock.getsockname()

    def write(self, data: bytes, to: Any) -> None:
        self.sock.sendto(data, to)

    def read_chunks(self) -> Iterator[bytes]:
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                return
            yield data

    def close(self) -> None:
        self.sock.close()


class ReplayTransport:
    """Replays a capture file (the raw byte stream) in pieces of ``piece`` bytes."""

    def __init__(self, path: str | Path, piece: int = 997) -> None:
        self.data, self.piece = Path(path).read_bytes(), piece

    def read_chunks(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), self.piece):
            yield self.data[i : i + self.piece]

    def close(self) -> None:
        pass
