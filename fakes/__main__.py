"""Run the providers' fakes in the foreground.

``python -m fakes qwen --port 8801`` serves one fake until interrupted. ``python -m fakes all``
serves every fake on a free loopback port, prints one JSON line, ``{"urls": {provider: url}, "env":
{variable: value}}`` (the environment that makes them voicegate's providers), and serves until its standard
input closes: `voicegate up --fake-providers` runs it as a program of its own, so no product module
imports the fakes, and the fakes end with the `up` that started them, however it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading

from fakes import CartesiaFake, ElevenLabsFake, FakeProvider, QwenFake, SelfhostedFake, serve

FAKES: dict[str, type[FakeProvider]] = {
    "qwen": QwenFake,
    "elevenlabs": ElevenLabsFake,
    "cartesia": CartesiaFake,
    "selfhosted": SelfhostedFake,
}


def serve_all() -> None:
    """Serve every fake; print their URLs and the provider environment; serve until stdin closes."""
    # Ctrl-C in `up`'s terminal reaches this process too; `up` may still need the fakes as it drains.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    qwen, eleven, cartesia, selfhosted = QwenFake(), ElevenLabsFake(), CartesiaFake(), SelfhostedFake()
    fakes: dict[str, FakeProvider] = {
        "qwen": qwen,
        "elevenlabs": eleven,
        "cartesia": cartesia,
        "selfhosted": selfhosted,
    }
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(serve(fake)) for name, fake in fakes.items()}
        env = {
            "DASHSCOPE_API_KEY": qwen.api_key,
            "DASHSCOPE_BASE_URL": urls["qwen"],
            "ELEVENLABS_API_KEY": eleven.api_key,
            "ELEVENLABS_BASE_URL": urls["elevenlabs"],
            "CARTESIA_API_KEY": cartesia.api_key,
            "CARTESIA_BASE_URL": urls["cartesia"],
            "SELFHOSTED_BASE_URL": urls["selfhosted"],
            "SELFHOSTED_MODEL": selfhosted.model,
        }
        print(json.dumps({"urls": urls, "env": env}), flush=True)
        sys.stdin.read()  # until the parent closes it, or dies


def main() -> None:
    """Serve the named fake on 127.0.0.1 until interrupted (its default API key printed), or all of them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("provider", choices=[*sorted(FAKES), "all"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-voices", type=int, help="the account's voice limit (elevenlabs, qwen)")
    args = parser.parse_args()
    if args.provider == "all":
        serve_all()
        return
    options = {} if args.max_voices is None else {"max_voices": args.max_voices}
    fake = FAKES[args.provider](**options)
    with serve(fake, port=args.port) as url:
        print(f"fake {args.provider} at {url} (api key: {getattr(fake, 'api_key', '')})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
