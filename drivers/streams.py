"""Byte streams the device server talks over: a TCP socket or a pseudo-terminal, and the gentle
refusal of a connection the server cannot serve."""

from __future__ import annotations

import os
import select
import socket
import time

from hil import wire

REFUSE_DRAIN_S = 1.0  # at most this long spent reading what a refused peer still sends


class SocketStream:
    """``ByteStream`` over a connected socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def read_some(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            data = self.sock.recv(1 << 20)
        except OSError as exc:
            raise wire.LinkClosed(f"socket read failed: {exc}") from exc
        if not data:
            raise wire.LinkClosed("peer closed the connection")
        return data

    def write(self, data) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise wire.LinkClosed(f"socket write failed: {exc}") from exc


class FdStream:
    """``ByteStream`` over a file descriptor (the master side of a pseudo-terminal)."""

    def __init__(self, fd: int):
        self.fd = fd

    def read_some(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            return os.read(self.fd, 1 << 16)
        except OSError as exc:  # EIO: no process has the terminal open
            time.sleep(min(timeout, 0.05))
            if exc.errno == 5:
                return b""
            raise wire.LinkClosed(f"pty read failed: {exc}") from exc

    def write(self, data) -> None:
        view = memoryview(data)
        while len(view):
            select.select([], [self.fd], [], 1.0)
            n = os.write(self.fd, view)
            view = view[n:]


def refuse(conn: socket.socket, frame: bytes) -> None:
    """Send ``frame``, then close gently: drain what the peer sent (for at most ``REFUSE_DRAIN_S``)
    so the close is not a reset that would discard our frame before the peer reads it."""
    deadline = time.monotonic() + REFUSE_DRAIN_S
    try:
        conn.sendall(frame)
        conn.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if not conn.recv(65536):
                break
    except OSError:
        pass
    finally:
        conn.close()
