"""A TCP relay on 127.0.0.1 to a server, which a test can cut off: while cut, every connection to it is
reset as it arrives (as a host that is not there would refuse it) and those open are cut, so whoever reaches
the server only through the relay finds it unreachable; restored, it relays again, on the same port."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit


class Relay:
    """Relays 127.0.0.1:`port` to `upstream` (`http://host:port`); `url` is the upstream's, through it."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        # accept() wakes this often to see `stop`: closing a socket does not wake a thread blocked on it.
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._cut = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True, name="relay")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """From now on the server is out of reach through the relay; connections open now are cut."""
        with self._lock:
            self._cut = True
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes its pumps, which close it

    def restore(self) -> None:
        """Relay again."""
        with self._lock:
            self._cut = False

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            with self._lock:
                if self._cut:
                    _reset(client)
                    continue
                try:
                    server = socket.create_connection(self._upstream, timeout=5)
                except OSError:
                    _reset(client)
                    continue
                server.settimeout(None)  # relayed as slowly as the two ends talk
                self._open |= {client, server}
            pending = [2]  # pumps of this connection still running; the last one closes both ends
            for source, sink in ((client, server), (server, client)):
                pump = threading.Thread(target=self._pump, args=(source, sink, pending), daemon=True, name="relay-pump")
                self._threads.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket, pending: list[int]) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            pending[0] -= 1
            if pending[0] == 0:
                self._open -= {source, sink}
                source.close()
                sink.close()

    def start(self) -> None:
        self._accepting.start()

    def stop(self) -> None:
        self._stopping.set()
        self._accepting.join(5)
        self._listener.close()
        self.cut()
        for pump in self._threads:
            pump.join(5)


def _reset(sock: socket.socket) -> None:
    """Close with a reset (RST), as a refused or broken connection ends, not an orderly close."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


@contextlib.contextmanager
def relaying(upstream: str) -> Iterator[Relay]:
    """A running relay to `upstream`, stopped (with every thread it started) at the end."""
    relay = Relay(upstream)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
