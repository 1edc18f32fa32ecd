"""espeak-ng from the ``espeakng-loader`` wheel, driven through ctypes (no executable, no network).

The local engine uses it as a phonemizer (IPA for the Piper voice); its own synthesis stays for test
speech and the benchmark's baselines.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Final

import espeakng_loader
import numpy as np
import numpy.typing as npt

# espeak-ng's C enums (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_DONT_EXIT: Final = 0x8000
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_PARAM_RATE: Final = 1
_PARAM_PITCH: Final = 3
_PARAM_RANGE: Final = 4
_EE_OK: Final = 0
_PHONEMES_IPA: Final = 0x02
#: Clause-ending punctuation that Piper keeps as a "phoneme" (espeak-ng drops it from the IPA).
_CLAUSE_TERMINATORS: Final = frozenset(".?!,:;")

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or refused a request."""


class Espeak:
    """One process-wide espeak-ng instance; the C library is not thread-safe, so calls are serialised."""

    _instance: Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EspeakError("espeak-ng failed to initialise")
        self.sample_rate: int = rate
        self._chunks: list[npt.NDArray[np.int16]] = []
        # Kept on self: ctypes must not garbage-collect a callback C still holds.
        self._callback = _SynthCallback(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> Espeak:
        """The process-wide instance, created on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def _set_voice(self, voice: str, fallback: str) -> None:
        # Unknown language: fall back rather than fail the request.
        if (
            self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK
            and self._lib.espeak_SetVoiceByName(fallback.encode()) != _EE_OK
        ):
            raise EspeakError("espeak-ng has no usable voice")

    def phonemize(self, text: str, *, voice: str, fallback: str = "en") -> list[tuple[str, str]]:
        """IPA phonemes of each clause of ``text``, with the punctuation that ended it (``""`` for none).

        Words are separated by spaces and carry espeak-ng's stress marks; language-switch flags such as
        ``(fr)`` are left in for the caller to handle.
        """
        encoded = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(encoded)
        start = ctypes.addressof(buffer)
        cursor = ctypes.c_void_p(start)
        clauses: list[tuple[str, str]] = []
        with self._lock:
            self._set_voice(voice, fallback)
            while cursor.value is not None:
                phonemes = self._lib.espeak_TextToPhonemes(ctypes.byref(cursor), _CHARS_UTF8, _PHONEMES_IPA)
                read = None if cursor.value is None else cursor.value - start
                clauses.append(((phonemes or b"").decode("utf-8", errors="replace"), _terminator(encoded, read)))
        return clauses

    def synthesize(
        self, text: str, *, voice: str = "en", rate_wpm: int = 175, pitch: int = 50
    ) -> npt.NDArray[np.int16]:
        """Speak ``text``; returns 16-bit mono samples at ``self.sample_rate``."""
        encoded = text.encode("utf-8")
        with self._lock:
            self._set_voice(voice, "en")
            self._lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._lib.espeak_SetParameter(_PARAM_RANGE, 50, 0)
            self._chunks = []
            status = self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != _EE_OK:
                raise EspeakError(f"espeak-ng synthesis failed with status {status}")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks)


def _terminator(encoded: bytes, read: int | None) -> str:
    """The punctuation that ended the clause espeak-ng has just read up to byte ``read`` (``None``: the end).

    This library's ``espeak_TextToPhonemes`` does not report it (the call that does is in Piper's fork of
    espeak-ng), so, as Piper's phonemizer did with the plain call, look back from where espeak-ng
    stopped: it has already consumed the first character of the next clause, which is dropped before
    skipping spaces.
    """
    if read is None:
        consumed = encoded.decode("utf-8", errors="ignore")
    else:
        consumed = encoded[:read].decode("utf-8", errors="ignore")[:-1]
    tail = consumed.rstrip()
    return tail[-1] if tail and tail[-1] in _CLAUSE_TERMINATORS else ""
