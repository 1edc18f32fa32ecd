"""Faithful local fakes of the Qwen, ElevenLabs and Cartesia HTTP APIs and of a self-hosted
OpenAI-shaped speech server (plain, without a registry, or behind Modal), plus a server runner.

Each fake is a plain ASGI app: stateful, recording every request, with switches for latency and
fault injection. ``serve(app)`` runs one on 127.0.0.1 on a free port in a background thread.

A development aid of the checkout, beside `backend/` and not in it: the tests and the benchmarks import it,
`voicegate up --fake-providers` runs it as a program of its own (``python -m fakes all``), and no module that
ships imports it (tests/unit/test_layers.py), nor does the wheel or the image hold it.
"""

from fakes.cartesia import CartesiaFake
from fakes.core import FakeProvider, Fault, RecordedRequest
from fakes.elevenlabs import ElevenLabsFake
from fakes.qwen import QwenFake
from fakes.selfhosted import SelfhostedFake
from fakes.server import serve

__all__ = [
    "CartesiaFake",
    "ElevenLabsFake",
    "FakeProvider",
    "Fault",
    "QwenFake",
    "RecordedRequest",
    "SelfhostedFake",
    "serve",
]
