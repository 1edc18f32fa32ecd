"""Faithful local fakes of the Qwen, ElevenLabs and Cartesia HTTP APIs and of a self-hosted
OpenAI-shaped speech server (plain, without a registry, or behind Modal), plus a server runner.

Each fake is a plain ASGI app: stateful, recording every request, with switches for latency and
fault injection. ``serve(app)`` runs one on 127.0.0.1 on a free port in a background thread.
"""

from tests.fakes.cartesia import CartesiaFake
from tests.fakes.core import FakeProvider, Fault, RecordedRequest
from tests.fakes.elevenlabs import ElevenLabsFake
from tests.fakes.qwen import QwenFake
from tests.fakes.selfhosted import SelfhostedFake
from tests.fakes.server import serve

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
