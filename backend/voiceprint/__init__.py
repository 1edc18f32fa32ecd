"""Voiceprints: the speaker embedding of a recording, to tell whether two recordings are of one speaker.

The GE2E speaker encoder (Wan et al., arXiv:1710.10467) with Resemble AI's weights, `resemblyzer/pretrained.pt`
of the resemblyzer 0.1.4 wheel (Apache-2.0), read without torch (`weights`), written as an ONNX graph (`graph`)
and run by onnxruntime on one thread (`encoder`), after the encoder's own preprocessing (`features`): 16 kHz
mono raised to -30 dBFS, pauses over 180 ms cut by WebRTC VAD, 40-band power mel frames, partial utterances of
1.6 s at 1.3 a second; the 256-value embedding of each, their mean, L2-normalised. Two prints are compared by
cosine (`Voiceprint.similarity`). `speech_prints` keeps each partial's embedding with the seconds of the
recording it stands for, and `windows` judges them 3.1 s at a time: another voice spliced into a sample, which
its mean print hides, is found and named in seconds (issue 56).

`voiceprint` is pure CPU work, thread-safe, for the fair CPU executor: 3.4 ms of CPU per second of audio on one
core, 18 ms for a 6 s recording (bench/voiceprint.py; 7.9 ms per second with the same network in numpy); the
weights are read on first use (~60 ms).

`THRESHOLD` = 0.74: from this cosine two prints are taken for the same speaker. Set on the shared LibriSpeech
test-other clips (6 speakers x 10 utterances, CC BY 4.0; 2026-11-26), one print per clip, every pair scored:
chosen at the equal-error point of utterances 0-4 of each speaker (60 same-speaker pairs, 375 different;
there the two sets do not overlap, highest different 0.733, lowest same 0.751: midpoint 0.742, rounded to
0.74), and judged on utterances 5-9, held out (60 same, 375 different pairs):

- same speaker mean 0.855, different speakers mean 0.547;
- at 0.74: 3 of 60 same-speaker pairs refused (5.0 %; each pairs two clips shorter than 4 s, scores
  0.702-0.729), 0 of 375 different-speaker pairs accepted (highest 0.738, two women);
- equal-error rate 1.7 % (at 0.709).

On all 60 clips: means 0.869 and 0.539, EER 0.74 % (at 0.723); at 0.74, 5 of 270 same-speaker pairs refused
and 1 of 1500 different-speaker pairs accepted. Thresholds do not carry across speakers or recordings: each
3-speaker subset of these clips puts its own equal-error point between 0.66 and 0.76, and the measurement in
issue 46 (100 clips of 10 test-other speakers) put it at 0.718 (EER 0.4 %). Prints of 2-3 s clips scatter
more than of longer ones. docs/voiceprint.md has the figures and how to make them again.
"""

from backend.voiceprint.embedding import (
    DIMENSIONS,
    THRESHOLD,
    SpeechPrints,
    Voiceprint,
    speech_prints,
    speech_seconds,
    voiceprint,
)

__all__ = ["DIMENSIONS", "THRESHOLD", "SpeechPrints", "Voiceprint", "speech_prints", "speech_seconds", "voiceprint"]
