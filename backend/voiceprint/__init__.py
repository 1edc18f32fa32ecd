"""Voiceprints: the speaker embedding of a recording, to tell whether two recordings are of one speaker.

The GE2E speaker encoder (Wan et al., arXiv:1710.10467) with Resemble AI's weights, `resemblyzer/pretrained.pt`
of the resemblyzer 0.1.4 wheel (Apache-2.0), read without torch (`weights`), written as an ONNX graph (`graph`)
and run by onnxruntime on one thread (`encoder`), after the encoder's own preprocessing (`features`): 16 kHz
mono raised to -30 dBFS, pauses over 180 ms cut by WebRTC VAD, 40-band power mel frames, partial utterances of
1.6 s at 1.3 a second; the 256-value embedding of each, their mean, L2-normalised. Two prints are compared by
cosine (`Voiceprint.similarity`). `speech_prints` keeps each partial's embedding with the seconds of the
recording it stands for, and `windows` judges them 3.1 s at a time: another voice spliced into a sample, which
its mean print hides, is found and named in seconds.

`voiceprint` is pure CPU work, thread-safe, for the fair CPU executor; the weights are read on first use.

`THRESHOLD` = 0.74: from this cosine two prints are taken for the same speaker. It was set at the equal-error
point of half the shared LibriSpeech test-other clips and judged on the other half; thresholds do not carry
across speakers or recordings, and prints of 2-3 s clips scatter more than of longer ones. docs/voiceprint.md
has the figures, the cost, and how to make them again (`python bench/voiceprint.py`).

`OWNERSHIP_THRESHOLD` = 0.80: from this cosine a new consent reading or sample is taken for the voice of another
account, and `SAME_VOICE_THRESHOLD` = 0.89 for that very voice, which no reading settles (docs/ownership.md;
`python bench/ownership.py`).
"""

from backend.voiceprint.embedding import (
    DIMENSIONS,
    OWNERSHIP_THRESHOLD,
    SAME_VOICE_THRESHOLD,
    THRESHOLD,
    SpeechPrints,
    Voiceprint,
    speech_prints,
    speech_seconds,
    voiceprint,
)

__all__ = [
    "DIMENSIONS",
    "OWNERSHIP_THRESHOLD",
    "SAME_VOICE_THRESHOLD",
    "THRESHOLD",
    "SpeechPrints",
    "Voiceprint",
    "speech_prints",
    "speech_seconds",
    "voiceprint",
]
