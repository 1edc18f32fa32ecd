"""Benchmark: the likeness of the `local` provider's voices (backend/clone/likeness) on real speech, beside what the
same voiceprints say of real people in the same run.

    python bench/likeness.py [--speech DIR] [--enrol 2]

For each speaker of the LibriSpeech test-other clips (CC BY 4.0; 6 speakers x 10 utterances; `--speech`, by default the
clips VOICEGATE_SPEECH_CLIPS points to, devkit/clips.py): the `local` provider enrols a voice from the speaker's first
``--enrol`` utterances (joined into one sample, as an enrolment joins a set for a provider that takes one file) and
speaks the likeness probe and two more sentences in it. Printed, per speaker and as means:

* likeness: what voicegate shows, the probe's print against the mean print of the enrolled clips;
* clone vs held-out: each rendering's print against each of the speaker's other utterances (held out);
* and, measured in the same run on the same held-out clips: the same speaker's real clips against each other
  (what a perfect clone would reach), different speakers' clips against each other (a stranger), and the
  unadapted bundled voice (hibari as it ships) against the speaker.

How many clones pass the published `THRESHOLD` as their speaker, and how often the clone's nearest speaker (by
mean cosine to each speaker's held-out clips) is its own, are printed too. The engine is not tuned here: this
measures what the offline voice is (the speaker's pitch and formants, hibari's timbre), it does not aim at the
judge.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402 - after the path setup above
import soundfile  # noqa: E402

from backend.clone.likeness import PROBE_TEXT, samples_print  # noqa: E402
from backend.cpu import CpuExecutor  # noqa: E402
from backend.providers.base import SampleRef  # noqa: E402
from backend.providers.local.hibari_voice import HibariVoice  # noqa: E402
from backend.providers.local.provider import InMemoryProfileStore, LocalProvider  # noqa: E402
from backend.voiceprint import THRESHOLD, Voiceprint, voiceprint  # noqa: E402
from devkit.clips import LIBRISPEECH  # noqa: E402

SPEECH = LIBRISPEECH  # VOICEGATE_SPEECH_CLIPS names another folder
#: What each clone speaks besides the probe: plain sentences, none of them a LibriSpeech transcript.
SENTENCES = (
    PROBE_TEXT,
    "Please call Stella and ask her to bring these things with her from the store.",
    "We also need a small plastic snake and a big toy frog for the kids.",
)
#: Silence between joined enrolment clips (seconds).
GAP_S = 0.3


def wav(samples: np.ndarray, rate: int) -> bytes:
    """Float samples as 16-bit WAV bytes."""
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def print_of(samples: np.ndarray, rate: int) -> Voiceprint:
    """The voiceprint of real speech or a rendering (the bench's clips all hold enough speech for one)."""
    found = voiceprint(samples, rate)
    if found is None:
        raise SystemExit("a clip or rendering holds too little speech for a voiceprint")
    return found


def mean_cosine(prints: Sequence[Voiceprint], others: Sequence[Voiceprint]) -> float:
    """The mean cosine of every print of ``prints`` against every one of ``others``."""
    return statistics.fmean(a.similarity(b) for a in prints for b in others)


async def clone(provider: LocalProvider, speaker: str, clips: Sequence[tuple[np.ndarray, int]]) -> list[bytes]:
    """The local provider's voice enrolled from ``clips`` (joined), speaking `SENTENCES`: WAV bytes each."""
    rate = clips[0][1]
    gap = np.zeros(round(GAP_S * rate), dtype=np.float32)
    joined = np.concatenate([part for samples, _ in clips for part in (samples, gap)])
    sample = SampleRef(data=wav(joined, rate), mime_type="audio/wav", duration_s=joined.size / rate, sample_rate=rate)
    voice = await provider.enrol([sample], name=speaker, language="en", transcript=None, key=f"bench-{speaker}")
    return [(await provider.synthesize(voice, text)).audio for text in SENTENCES]


def hibari_as_is(text: str) -> tuple[np.ndarray, int]:
    """``text`` in the bundled voice with no adaptation at all: the baseline the engine adapts from."""
    voice = HibariVoice.shared()
    return np.concatenate([voice.synthesize(frames) for frames in voice.frames(text)]), voice.sample_rate


def decoded(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech", type=Path, default=SPEECH, help="speaker folders of LibriSpeech FLAC clips")
    parser.add_argument("--enrol", type=int, default=2, help="utterances each voice is enrolled from")
    args = parser.parse_args()

    speakers: dict[str, list[tuple[np.ndarray, int]]] = {}
    for path in sorted(args.speech.glob("*/*.flac"), key=lambda p: (p.parent.name, int(p.stem.split("-")[-1]))):
        speakers.setdefault(path.parent.name, []).append(soundfile.read(path, dtype="float32"))
    if len(speakers) < 2:
        raise SystemExit(f"{args.speech}: needs the clips of at least two speakers")
    held_out = {s: [print_of(*clip) for clip in clips[args.enrol :]] for s, clips in speakers.items()}
    hibari = [print_of(*hibari_as_is(text)) for text in SENTENCES]

    cpu = CpuExecutor(1)
    provider = LocalProvider(InMemoryProfileStore(), cpu=cpu)
    rows = []
    try:
        for speaker, clips in speakers.items():
            renders = await clone(provider, speaker, clips[: args.enrol])
            enrolled = samples_print([wav(*clip) for clip in clips[: args.enrol]])
            if enrolled is None:
                raise SystemExit(f"speaker {speaker}: too little speech to enrol")
            spoken = [print_of(*decoded(audio)) for audio in renders]
            nearest = max(held_out, key=lambda other: mean_cosine(spoken, held_out[other]))
            same = [a.similarity(b) for a, b in itertools.combinations(held_out[speaker], 2)]
            strangers = [
                a.similarity(b) for o in held_out if o != speaker for a in held_out[speaker] for b in held_out[o]
            ]
            rows.append(
                {
                    "speaker": speaker,
                    "likeness": enrolled.similarity(spoken[0]),
                    "clone": mean_cosine(spoken, held_out[speaker]),
                    "same": statistics.fmean(same),
                    "different": statistics.fmean(strangers),
                    "hibari": mean_cosine(hibari, held_out[speaker]),
                    "nearest": nearest == speaker,
                }
            )
    finally:
        await cpu.aclose()

    print(f"local voices enrolled on {args.enrol} clips, judged against the held-out clips; threshold {THRESHOLD}")
    header = ("speaker", "likeness", "clone", "same person", "different", "hibari as is", "nearest is self")
    print("".join(f"{h:>16}" for h in header))
    for row in rows:
        values = [row[k] for k in ("likeness", "clone", "same", "different", "hibari")]
        print(
            f"{row['speaker']:>16}" + "".join(f"{v:16.3f}" for v in values) + f"{'yes' if row['nearest'] else 'no':>16}"
        )
    means = [statistics.fmean(row[k] for row in rows) for k in ("likeness", "clone", "same", "different", "hibari")]
    print(f"{'mean':>16}" + "".join(f"{v:16.3f}" for v in means) + f"{sum(r['nearest'] for r in rows):>13}/{len(rows)}")
    passing = sum(row["likeness"] >= THRESHOLD for row in rows)
    print(f"likeness at or above {THRESHOLD}: {passing} of {len(rows)} local voices")


if __name__ == "__main__":
    asyncio.run(main())
