"""espeak-ng from the ``espeakng-loader`` wheel, driven through ctypes (no executable, no network)."""

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

    def synthesize(
        self, text: str, *, voice: str = "en", rate_wpm: int = 175, pitch: int = 50
    ) -> npt.NDArray[np.int16]:
        """Speak ``text``; returns 16-bit mono samples at ``self.sample_rate``."""
        encoded = text.encode("utf-8")
        with self._lock:
            # Unknown language: fall back to English rather than fail the request.
            if (
                self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK
                and self._lib.espeak_SetVoiceByName(b"en") != _EE_OK
            ):
                raise EspeakError("espeak-ng has no usable voice")
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
