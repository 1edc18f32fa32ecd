"""Benchmark: what C2PA signing adds to each synthesized file, beside the unsigned path, in the same run.

    python bench/provenance.py [--repeat 20]

For a ~5 s and a ~30 s render (24 kHz mono, as the providers' renders are stored) as WAV, and the
same audio as MP3, the unsigned path produces the file as the worker does today and writes it out: WAV
is encoded from the samples (16-bit PCM) and written; MP3 arrives encoded from a provider and is
written. The signed path is the same with `ProvenanceSigner.sign_audio` before the write. The two run
alternately, `--repeat` times each after a warm-up; printed are their medians and the median of the
pairwise differences: the milliseconds signing adds per file. Signing runs with the embedded
development signer (ES256) and with a PS256 (RSA 2048) chain; `verify` is timed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.provenance import ProvenanceSigner, SynthesisClaim  # noqa: E402 - after the path setup above
from backend.settings import settings_from_env  # noqa: E402
from backend.wav import float_to_wav  # noqa: E402
from devkit.audio_corpus import encode, noise, tone  # noqa: E402
from devkit.certs import make_chain  # noqa: E402

RATE = 24000
CLAIM = SynthesisClaim(
    voice_id=uuid.uuid4(), provider="local", model="voicegate-local-1", consent_id=uuid.uuid4(), consent_version="1"
)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall-clock milliseconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def paired(unsigned: Callable[[], object], signed: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Medians of the two paths and of their pairwise difference, run alternately (after one warm-up each) so
    machine drift hits both alike."""
    unsigned(), signed()
    first: list[float] = []
    second: list[float] = []
    for _ in range(repeat):
        for fn, times in ((unsigned, first), (signed, second)):
            started = time.perf_counter()
            fn()
            times.append((time.perf_counter() - started) * 1000)
    added = statistics.median(b - a for a, b in zip(first, second, strict=True))
    return statistics.median(first), statistics.median(second), added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each path (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        signers = {
            "ES256 (dev CA)": ProvenanceSigner.from_settings(settings_from_env({"VOICEGATE_DATA_DIR": scratch})),
            "PS256 (RSA 2048)": ProvenanceSigner.from_settings(
                settings_from_env(make_chain("rsa").write(Path(scratch) / "rsa"))
            ),
        }
        print(f"median of {args.repeat} runs per path, milliseconds per file; 24 kHz mono")
        header = (
            f"{'file':<10}{'signer':<18}{'bytes':>9}{'+bytes':>8}{'unsigned':>10}{'signed':>9}{'added':>8}{'verify':>8}"
        )
        print(header)
        out = Path(scratch) / "render"
        for seconds in (5.0, 30.0):
            samples = tone(seconds, 220.0, 0.4, RATE) + noise(seconds, 0.02, RATE)
            mp3 = encode(samples, RATE, "mp3", "libmp3lame", bit_rate=64000)
            cases: dict[str, tuple[str, Callable[[], bytes]]] = {
                "wav": ("audio/wav", lambda s=samples: float_to_wav(s.astype("float64"), RATE)),
                "mp3": ("audio/mpeg", lambda m=mp3: m),
            }
            for kind, (mime, produce) in cases.items():
                data = produce()
                for name, signer in signers.items():

                    def unsigned_path(produce: Callable[[], bytes] = produce) -> int:
                        return out.write_bytes(produce())

                    def signed_path(
                        produce: Callable[[], bytes] = produce, signer: ProvenanceSigner = signer, mime: str = mime
                    ) -> int:
                        return out.write_bytes(signer.sign_audio(produce(), mime, CLAIM))

                    unsigned_ms, signed_ms, added_ms = paired(unsigned_path, signed_path, args.repeat)
                    signed = signer.sign_audio(data, mime, CLAIM)
                    verify_ms = median_ms(lambda d=signed, s=signer: s.verify(d), args.repeat)
                    label = f"{seconds:.0f} s {kind}"
                    print(
                        f"{label:<10}{name:<18}{len(data):>9}{len(signed) - len(data):>8}{unsigned_ms:>10.2f}"
                        f"{signed_ms:>9.2f}{added_ms:>8.2f}{verify_ms:>8.2f}"
                    )
        for signer in signers.values():
            signer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
