"""The ElevenLabs fake `bench/spend.py` speaks with, and a webhook receiver, served by a process of their own.

In the bench's own process the fake's thread would take turns for one interpreter lock with the bench's client,
which times every job; a provider runs on a machine of its own, here at least in a process of its own. The fake
records every request it is sent, with its body, whatever it answers (a fault included), so what it was sent is
counted here and nowhere else.

    python bench/spend_fake.py

prints one JSON line, ``{"elevenlabs": url, "receiver": url, "key": api_key}``, then reads commands on its standard
input, one a line, and answers each with one JSON line:

- ``voice ID``: the fake holds a voice ``ID`` from now on;
- ``latency SECONDS``: every answer waits that long first;
- ``faults P503 PTIMEOUT PDROPPED``: each text-to-speech request meets, at random, a 503 (with probability P503),
  no answer until the client gives up (PTIMEOUT), or its answer cut off after the fake has spoken (PDROPPED: the
  answer lost, the client told at once); ``faults 0 0 0`` ends them;
- ``sent ID``: the characters and requests the fake was sent to speak in voice ``ID``, and the wall-clock times
  (`time.time()`) at which each request arrived;
- ``hooks PATH``: the deliveries the receiver got at ``PATH``, each with its arrival time and its body's `type`.

The input's end stops both.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes import ElevenLabsFake, Fault, serve
from fakes.core import Receive, Scope, Send
from fakes.elevenlabs import ElevenVoice

#: The key the fake is given, and voicegate with it.
KEY = "sk_bench_spend_0123456789"
_TTS = "/v1/text-to-speech/"


@dataclass
class Arrivals:
    """When each text-to-speech request arrived, by voice (wall-clock seconds)."""

    by_voice: dict[str, list[float]] = field(default_factory=dict)


def timed(app: ElevenLabsFake, arrivals: Arrivals) -> Any:
    """`app`, noting when each text-to-speech request arrives, before its body is read or its latency waited."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(_TTS):
            voice = path[len(_TTS) :].split("/", 1)[0]
            arrivals.by_voice.setdefault(voice, []).append(time.time())
        await app(scope, receive, send)

    return asgi


@dataclass
class Receiver:
    """A webhook receiver answering 204 to everything, noting each delivery's arrival by path."""

    got: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        arrived = time.time()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            kind = json.loads(body).get("type")
        except ValueError:
            kind = None
        self.got.setdefault(scope["path"], []).append({"at": arrived, "type": kind})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def sent(fake: ElevenLabsFake, arrivals: Arrivals, voice: str) -> dict[str, Any]:
    requests = [r for r in fake.requests_to("POST", f"{_TTS}{voice}") if r.path == f"{_TTS}{voice}"]
    return {
        "characters": sum(len(r.json()["text"]) for r in requests),
        "requests": len(requests),
        "arrivals": arrivals.by_voice.get(voice, []),
    }


def main() -> None:
    # Ctrl-C in the bench's terminal reaches this process too: the bench ends it by closing its input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fake = ElevenLabsFake(KEY, max_voices=10_000)
    arrivals, receiver = Arrivals(), Receiver()
    tts = "POST"
    with serve(timed(fake, arrivals)) as url, serve(receiver) as hooks:
        # A dropped answer is the fake's server closing the connection under an app that failed on purpose (set
        # once the servers have set their loggers up).
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        print(json.dumps({"elevenlabs": url, "receiver": hooks, "key": KEY}), flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            answer: Any = "ok"
            if command == "voice":
                fake.voices[args[0]] = ElevenVoice(args[0], args[0], None, {}, [])
            elif command == "latency":
                fake.faults.latency_s = float(args[0])
            elif command == "faults":
                status, hold, drop = (float(a) for a in args)
                fake.faults.fail_at_rates(
                    [
                        (status, Fault("status", 503, method=tts, path_prefix=_TTS)),
                        (hold, Fault("timeout", method=tts, path_prefix=_TTS)),
                        (drop, Fault("dropped", method=tts, path_prefix=_TTS)),
                    ],
                    seed=7,
                )
            elif command == "sent":
                answer = sent(fake, arrivals, args[0])
            elif command == "hooks":
                answer = receiver.got.get(args[0], [])
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
