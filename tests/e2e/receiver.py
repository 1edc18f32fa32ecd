"""A webhook receiver on 127.0.0.1, as an app would run one: it verifies every delivery with the Standard
Webhooks reference implementation (`standardwebhooks`) against the secret of the path it came to,
records it, and answers 500 to as many deliveries as it is told to fail, 204 to the rest. It can be
stopped (connections are refused) and started again on the same port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Delivery:
    """One request as it arrived, what verifying it gave, and what the receiver answered."""

    path: str
    webhook_id: str
    timestamp: int
    body: bytes
    payload: dict[str, Any] | None
    """The verified payload; None when the signature did not verify."""
    answered: int


@dataclass
class Receiver:
    """Deliveries by path; `secrets[path]` verifies them; `failing[path]` deliveries get a 500 first."""

    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == path]

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            payload = Webhook(self.secrets[path]).verify(body, headers)
        except (KeyError, WebhookVerificationError):
            payload = None
        with self._lock:
            failing = self.failing.get(path, 0)
            self.failing[path] = max(0, failing - 1)
            answered = 500 if failing or payload is None else 204
            self.deliveries.append(
                Delivery(
                    path=path,
                    webhook_id=headers.get("webhook-id", ""),
                    timestamp=int(headers.get("webhook-timestamp", "0")),
                    body=body,
                    payload=payload,
                    answered=answered,
                )
            )
        return answered

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.send_response(receiver._answer(self.path, headers, body))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        """Stop listening: deliveries now find the port closed."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A running receiver, stopped at the end."""
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
