"""Real speech from the shared LibriSpeech clips VOICEGATE_SPEECH_CLIPS points to (test-other, CC BY 4.0: 6 speakers
x 10 utterances, FLAC at 16 kHz, a folder per speaker), made into upload-sized samples: for a benchmark that needs
many samples of speech and neither espeak-ng nor the tests' copy of the clips."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from devkit.audio_corpus import F32, RATE, recording, wav_bytes

#: Where the clips are: one folder of FLAC files per speaker. VOICEGATE_SPEECH_CLIPS names another.
LIBRISPEECH = Path(os.environ.get("VOICEGATE_SPEECH_CLIPS", "/work/shared/speech/librispeech"))
#: The pause between two clips joined into one sample.
PAUSE_S = 0.3


def speakers(directory: Path = LIBRISPEECH) -> list[list[Path]]:
    """Each speaker's clips, in order (speakers by folder name)."""
    found = [sorted(folder.glob("*.flac")) for folder in sorted(directory.iterdir()) if folder.is_dir()]
    found = [clips for clips in found if clips]
    if not found:
        raise FileNotFoundError(
            f"no LibriSpeech speaker folders of FLAC clips in {directory}: set VOICEGATE_SPEECH_CLIPS to the shared"
            " clips (speech/librispeech)"
        )
    return found


@functools.cache
def _clip(path: Path, rate: int) -> F32:
    """A clip's mono samples at `rate`."""
    samples, native = soundfile.read(path, dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    common = math.gcd(native, rate)
    resampled: F32 = resample_poly(mono, rate // common, native // common).astype(np.float32)
    return resampled


def speech_sample(n: int, seconds: float = 6.0, *, directory: Path = LIBRISPEECH, rate: int = RATE) -> bytes:
    """Sample `n`: `seconds` of one speaker's clips (the speakers in turn) joined with short pauses, from a clip
    that moves on with `n` (the last one cut short); as a mono WAV at `rate` with a second of silence either side
    and room tone under it all, seeded by `n`, so that no two samples are the same file (a provider refuses a file
    it has already been sent)."""
    voices = speakers(directory)
    clips = voices[n % len(voices)]
    start = (n // len(voices)) % len(clips)
    parts: list[F32] = []
    total = 0.0
    for path in clips[start:] + clips[:start]:
        parts += [_clip(path, rate), np.zeros(round(PAUSE_S * rate), dtype=np.float32)]
        total += parts[-2].size / rate
        if total >= seconds:
            break
        total += PAUSE_S
    speech = np.concatenate(parts[:-1])[: round(seconds * rate)]
    return wav_bytes(recording(speech, rate, seed=n), rate)
