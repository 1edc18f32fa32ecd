"""The hibari voice ``heart`` (the ``hibari-tts`` wheel: Apache-2.0 code and weights) run with onnxruntime.

hibari's model does not output a waveform: for each 12.5 ms frame of each sentence it predicts a spectrum in
five parts (log harmonic magnitudes and their phase turn, log noise, and a free-phase residual's log
magnitude and phase, 601 bins each to 12 kHz) and an F0, and ``hibari.dsp.synth`` makes them audio with one
inverse STFT. ``frames`` stops before that step, so the engine can move the voice in those parameters.

Only the voice bundled in the wheel is used: hibari downloads its other voices from the internet on first
use, so the model path is the bundled one, asked for with ``download_missing=False``.
"""

from __future__ import annotations

import threading
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from hibari import SAMPLE_RATE, Hibari, dsp
from hibari.voices import voice_path

#: The voice inside the wheel (American English, female): the only one that needs no download.
VOICE: Final = "heart"
#: The API and the workers share the cores, so one synthesis keeps to one.
DEFAULT_THREADS: Final = 1
#: The noise branch is drawn from a generator seeded alike for every sentence, so a text always sounds the
#: same (the branch is about 40 dB under the harmonics: its repeats are not heard).
NOISE_SEED: Final = 0

Array = npt.NDArray[np.float32]


class Frames(NamedTuple):
    """The model's output for one sentence: ``[601, frames]`` arrays, F0 one value a frame (Hz; under
    ``dsp.synth``'s 40 Hz threshold an unvoiced frame)."""

    lh: Array
    th: Array
    ln: Array
    lr: Array
    phi: Array
    f0: Array


class HibariVoice:
    """The bundled voice and its onnxruntime session; ``shared()`` loads it once per process.

    ``InferenceSession.run`` may be called from several threads at once; the G2P is built here, not on first
    use, so two threads never race to build it.
    """

    sample_rate: Final = SAMPLE_RATE
    _instance: HibariVoice | None = None
    _instance_lock = threading.Lock()

    def __init__(self, *, threads: int = DEFAULT_THREADS) -> None:
        self.model_path: str = voice_path(VOICE, download_missing=False)
        self._tts = Hibari(VOICE, model=self.model_path, threads=threads)
        _ = self._tts.g2p.oov  # the G2P's lexicons and its out-of-vocabulary model, loaded now

    @classmethod
    def shared(cls) -> HibariVoice:
        """The process's voice, loaded on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def phonemes(self, text: str) -> list[str]:
        """``text`` as the model's phoneme strings, one per sentence; a sentence of punctuation alone is
        dropped (there is nothing in it to say)."""
        return [p for p in self._tts.phonemize(text) if any(symbol.isalpha() for symbol in p)]

    def frames(self, text: str, speed: float = 1.0) -> list[Frames]:
        """The model's parameters for each sentence of ``text``; ``ValueError`` when there is nothing to say.

        ``speed`` scales the model's own phoneme durations (2.0: twice as fast).
        """
        sentences = self.phonemes(text)
        if not sentences:
            raise ValueError("nothing to say")
        feed_speed = np.asarray([speed], np.float32)
        out = []
        for phonemes in sentences:
            ids = np.asarray([self._tts.ids(phonemes)], np.int64)
            lh, th, ln, lr, phi, f0 = (o[0] for o in self._tts.sess.run(None, {"ids": ids, "speed": feed_speed}))
            out.append(Frames(lh, th, ln, lr, phi, f0))
        return out

    def synthesize(self, frames: Frames) -> Array:
        """One sentence's parameters as float32 samples at ``sample_rate``."""
        audio: Array = dsp.synth(*frames, np.random.default_rng(NOISE_SEED))
        return audio

    def speak(self, text: str, speed: float = 1.0) -> Array:
        """``text`` in the voice as it is, unadapted."""
        return np.concatenate([self.synthesize(f) for f in self.frames(text, speed)])
