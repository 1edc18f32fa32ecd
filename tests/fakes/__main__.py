"""Run one fake provider in the foreground: ``python -m tests.fakes qwen --port 8801``."""

from __future__ import annotations

import argparse
import contextlib
import threading

from tests.fakes import CartesiaFake, ElevenLabsFake, FakeProvider, QwenFake, SelfhostedFake, serve

FAKES: dict[str, type[FakeProvider]] = {
    "qwen": QwenFake,
    "elevenlabs": ElevenLabsFake,
    "cartesia": CartesiaFake,
    "selfhosted": SelfhostedFake,
}


def main() -> None:
    """Serve the named fake on 127.0.0.1 until interrupted; its default API key is printed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("provider", choices=sorted(FAKES))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-voices", type=int, help="the account's voice limit (elevenlabs, qwen)")
    args = parser.parse_args()
    options = {} if args.max_voices is None else {"max_voices": args.max_voices}
    fake = FAKES[args.provider](**options)
    with serve(fake, port=args.port) as url:
        print(f"fake {args.provider} at {url} (api key: {getattr(fake, 'api_key', '')})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
