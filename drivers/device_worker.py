"""``DeviceWorker``: the device server's calls into its device, on a thread of their own.

While a call runs, the worker keeps serving the link: it sends WORKING frames every
``keepalive`` seconds, acknowledges repeats of the running request, keeps other frames for
later (at most ``later_bytes`` of payload; beyond that they are dropped and the host sends
them again) and notices a client that disconnects. Then it asks the device to stop
(``hil.device.cancel``, for devices that can) and waits for the call to end. It does the
same when the server is stopping.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor

from hil import wire
from hil.device import cancel
from hil.logging import get_logger
from hil.wire import MsgType

log = get_logger(__name__)


class DeviceWorker:
    """Runs ``device`` calls on one worker thread; ``stopping`` is the server's stop event."""

    def __init__(self, device, stopping: threading.Event, *, keepalive: float = 0.25, later_bytes: int = 4 << 20):
        self.device = device
        self.stopping = stopping
        self.keepalive = keepalive  # s between WORKING frames; the host's HELLO sets it
        self.later_bytes = later_bytes
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hil-device")

    def call(self, fn, *args):
        """``fn(*args)`` on the device thread (quick calls such as ``info``)."""
        return self._executor.submit(fn, *args).result()

    def call_serving(self, ch: wire.Channel, seq: int, fn, *args):
        """``fn(*args)`` on the device thread while serving ``ch`` for request ``seq``.

        A client that disconnects meanwhile gets the call cancelled (if the device can); if the
        call still completes, its result is returned (the server caches the reply, so the same
        host repeating ``seq`` after reconnecting gets it), else ``wire.LinkClosed`` is raised."""
        future = self._executor.submit(fn, *args)
        later, held = [], 0
        next_working = time.monotonic() + self.keepalive
        cancelled = False
        try:
            while not future.done():
                if self.stopping.is_set() and not cancelled:
                    cancelled = True
                    log.warning("cancel_on_stop", seq=seq, cancel_requested=cancel(self.device))
                futures.wait([future], timeout=0.005)
                frame = ch.next_frame(time.monotonic() + 0.0005)
                if frame is not None:
                    held += self._meanwhile(ch, seq, frame, later, held)
                if time.monotonic() >= next_working:
                    ch.send_frame(MsgType.WORKING, seq)
                    next_working = time.monotonic() + self.keepalive
        except wire.LinkClosed as exc:
            return self._after_disconnect(future, seq, exc)
        for frame in reversed(later):
            ch.unread(frame)
        return future.result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    def _meanwhile(self, ch: wire.Channel, seq: int, frame: wire.Frame, later: list, held: int) -> int:
        """Handle a frame that arrived during request ``seq``; returns the payload bytes kept."""
        if frame.seq == seq and frame.type in wire.REQUEST_TYPES:
            if frame.n_chunks > 1:  # a repeat of the running request: stop the host sending it
                ch.send_frame(MsgType.ACK, seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks)
            return 0
        size = len(frame.payload)
        if held + size > self.later_bytes:
            return 0  # dropped: the host repeats what it does not get an answer to
        later.append(frame)
        return size

    def _after_disconnect(self, future, seq: int, exc: wire.LinkClosed):
        asked = cancel(self.device)
        log.warning("client_gone_during_request", seq=seq, cancel_requested=asked, reason=str(exc))
        try:
            return future.result()
        except Exception as failure:
            raise wire.LinkClosed(
                f"client gone during request {seq}; the device call ended with {type(failure).__name__}: {failure}"
            ) from failure
