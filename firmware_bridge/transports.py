"""Byte transports for the bridge: serial (pyserial), TCP, UDP, and replay from a capture file.

Each transport is an iterator of ``bytes`` pieces (``read_chunks``) and has
``write``; the decoder takes whatever pieces arrive.  Live transports stop after
``idle_timeout_s`` seconds without data; ``None`` waits until the caller stops
(Ctrl-C), which the socket transports notice within ``_POLL_S``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_POLL_S = 0.2  # socket timeout between idle checks


class SerialTransport:
    def __init__(self, port: str, baudrate: int = 921600, timeout_s: float = 0.2,
                 idle_timeout_s: float | None = None) -> None:
        """``timeout_s``: one read's wait; ``idle_timeout_s``: ``read_chunks`` stops after this many seconds
        without data (``None``: it waits for the caller to stop, as ``acula bridge listen`` does until the
        device's END frame or Ctrl-C)."""
        try:
            import serial
        except ImportError as exc:
            raise ImportError("the serial transport needs: pip install 'acula-edge[serial]'") from exc
        self.port = serial.Serial(port, baudrate=baudrate, timeout=timeout_s)
        self.idle_timeout_s = idle_timeout_s

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read_chunks(self, idle_timeouts: int | None = None) -> Iterator[bytes]:
        """Yield pieces until ``idle_timeout_s`` seconds pass without data (``None``: never), or, when given,
        ``idle_timeouts`` reads in a row return nothing."""
        idle, last_data = 0, time.monotonic()
        while idle_timeouts is None or idle < idle_timeouts:
            data = self.port.read(4096)
            if data:
                idle, last_data = 0, time.monotonic()
                yield data
                continue
            idle += 1
            if self.idle_timeout_s is not None and time.monotonic() - last_data >= self.idle_timeout_s:
                return

    def close(self) -> None:
        self.port.close()


def _recv_chunks(recv: Any, idle_timeout_s: float | None, empty_ends: bool = True) -> Iterator[bytes]:
    """Yield what ``recv()`` returns until nothing came for ``idle_timeout_s`` or, with ``empty_ends``
    (TCP: the peer closed), it returns b"".  An empty UDP datagram ends nothing."""
    last_data = time.monotonic()
    while True:
        try:
            data = recv()
        except TimeoutError:
            if idle_timeout_s is not None and time.monotonic() - last_data >= idle_timeout_s:
                return
            continue
        if not data and empty_ends:
            return
        last_data = time.monotonic()
        if data:
            yield data


class TCPTransport:
    def __init__(self, host: str, port: int, timeout_s: float | None = 2.0, sock: socket.socket | None = None
                 ) -> None:
        """``timeout_s``: connect timeout and idle timeout of ``read_chunks`` (``None``: wait for the peer)."""
        self.sock = sock or socket.create_connection((host, port), timeout=timeout_s)
        self.timeout_s = timeout_s
        self.sock.settimeout(_POLL_S if timeout_s is None else min(_POLL_S, timeout_s))

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_chunks(self) -> Iterator[bytes]:
        return _recv_chunks(lambda: self.sock.recv(4096), self.timeout_s)

    def close(self) -> None:
        self.sock.close()


class UDPTransport:
    """One datagram per frame (what Wi-Fi stethoscopes send); loss and reordering are the decoder's job."""

    def __init__(self, bind: tuple[str, int] = ("127.0.0.1", 0), timeout_s: float | None = 1.0) -> None:
        """``timeout_s``: ``read_chunks`` stops after this many seconds without a datagram (``None``: never)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.timeout_s = timeout_s
        self.sock.settimeout(_POLL_S if timeout_s is None else min(_POLL_S, timeout_s))
        self.address = self.sock.getsockname()

    def write(self, data: bytes, to: Any) -> None:
        self.sock.sendto(data, to)

    def read_chunks(self) -> Iterator[bytes]:
        return _recv_chunks(lambda: self.sock.recvfrom(65536)[0], self.timeout_s, empty_ends=False)

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
