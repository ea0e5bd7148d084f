"""A fault-injecting TCP proxy between a host driver and a ``drivers.server.Server``.

It parses the byte stream into frames (``hil.wire.FrameDecoder``) and, per frame and
direction, with a seeded generator: flips bytes (``corrupt``: probability a frame gets 1-3
bytes flipped), drops it (``drop``), sends it twice (``duplicate``), cuts it short
(``truncate``), inserts garbage (``garbage``) or holds the link for ``stall_s`` seconds
(``stall``). ``.address`` is the ``socket://`` URL to open; ``.counts`` says what it did.
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from collections import Counter

from hil import wire


class FaultyProxy:
    def __init__(
        self,
        target: str,
        *,
        seed: int = 0,
        corrupt=0.0,
        drop=0.0,
        duplicate=0.0,
        truncate=0.0,
        garbage=0.0,
        stall=0.0,
        stall_s=0.0,
    ):
        host, port = target.removeprefix("socket://").rsplit(":", 1)
        self.target = (host, int(port))
        self.rates = dict(
            corrupt=corrupt, drop=drop, duplicate=duplicate, truncate=truncate, garbage=garbage, stall=stall
        )
        self.stall_s = stall_s
        self.rng = random.Random(seed)
        self.counts: Counter = Counter()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self):
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            upstream = socket.create_connection(self.target)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pump(client, upstream)
            client.close()
            upstream.close()

    def _pump(self, client, upstream):
        decoders = {client: wire.FrameDecoder(), upstream: wire.FrameDecoder()}
        peer = {client: upstream, upstream: client}
        while not self._stop.is_set():
            ready, _, _ = select.select([client, upstream], [], [], 0.1)
            for s in ready:
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                for item in decoders[s].feed(data):
                    if isinstance(item, wire.Frame):
                        try:
                            self._forward(
                                peer[s],
                                wire.encode_frame(
                                    item.type, item.seq, item.payload, chunk=item.chunk, n_chunks=item.n_chunks
                                ),
                            )
                        except OSError:
                            return

    def _forward(self, sock, frame: bytes):
        r, rates = self.rng.random, self.rates
        if r() < rates["stall"]:
            self.counts["stall"] += 1
            time.sleep(self.stall_s)
        if r() < rates["drop"]:
            self.counts["drop"] += 1
            return
        data = bytearray(frame)
        if r() < rates["corrupt"]:
            self.counts["corrupt"] += 1
            for _ in range(self.rng.randint(1, 3)):
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        if r() < rates["truncate"]:
            self.counts["truncate"] += 1
            data = data[: self.rng.randrange(len(data))]
        if r() < rates["garbage"]:
            self.counts["garbage"] += 1
            sock.sendall(bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 40))))
        sock.sendall(data)
        if r() < rates["duplicate"]:
            self.counts["duplicate"] += 1
            sock.sendall(frame)
