"""The providers `bench/streaming.py` streams from, served by a process of their own: the ElevenLabs fake answering
after ``--latency`` seconds and the vLLM-Omni fake making 0.1 s of audio every ``--render`` seconds, each with a
voice ``v1``.

In the bench's own process the fakes' threads would take turns for one interpreter lock with the bench's client,
which times every first byte: a fake's answer would wait for the client's work and the client's reading for the
fakes'. A provider runs on a machine of its own; here it at least runs in a process of its own.

    python bench/stream_fakes.py [--latency 0.2] [--render 0.04]

prints one JSON line, ``{"elevenlabs": url, "vllm-omni": url}``, then reads commands on its standard input, one
a line: ``espeak`` has the ElevenLabs fake speak espeak-ng's speech from then on (the fakes' tone carries no mark,
and the mark is looked for in speech); the input's end stops the fakes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devkit.speech_maker import SENTENCES, speak
from fakes import ElevenLabsFake, SelfhostedFake, serve
from fakes.audio import tone_wav
from fakes.elevenlabs import ElevenVoice
from fakes.selfhosted import SelfhostedVoice

#: The key the ElevenLabs fake is given, and voicegate with it.
ELEVEN_KEY = "sk_bench_eleven_0123456789"


def espeak_pcm(seconds: float, rate: int) -> bytes:
    """What the ElevenLabs fake speaks for the mark: espeak-ng speaking one of the sentences (picked by the
    length asked for), as long as asked."""
    samples = speak(SENTENCES[round(seconds * 20) % len(SENTENCES)], rate, pitch=40)
    return (np.resize(samples, max(rate // 10, int(seconds * rate))) * 32767).astype("<i2").tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--render", type=float, default=0.04)
    args = parser.parse_args()
    # Ctrl-C in the bench's terminal reaches this process too: the bench ends it by closing its input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    eleven = ElevenLabsFake(ELEVEN_KEY)
    eleven.voices["v1"] = ElevenVoice("v1", "Ada", None, {}, [], created_at_unix=int(datetime.now(UTC).timestamp()))
    eleven.faults.latency_s = args.latency
    vllm_omni = SelfhostedFake("registry")
    vllm_omni.voices["v1"] = SelfhostedVoice("v1", "consent", tone_wav(5.0, 24000), "audio/wav", "Hello there.")
    vllm_omni.stream_interval_s = args.render
    with serve(eleven) as eleven_url, serve(vllm_omni) as vllm_omni_url:
        print(json.dumps({"elevenlabs": eleven_url, "vllm-omni": vllm_omni_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "espeak":
                eleven.speech = espeak_pcm
                print("ok", flush=True)


if __name__ == "__main__":
    main()
