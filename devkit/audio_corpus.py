"""A generated audio corpus for the audio pipeline's tests and benchmark (nothing is committed).

Speech comes from the espeak-ng executable (``devkit/speech_maker.py``); the other files are tones,
noise, silence, damaged bytes and lying headers; encodings are made by ffmpeg. ``build_corpus``
makes every file once; the tests cache it per session.
"""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from backend.audio.ffmpeg import find_ffmpeg
from devkit.speech_maker import speak

F32 = npt.NDArray[np.float32]
RATE = 48000
#: Silence around the speech in every speech file, to be trimmed.
LEAD_S = 1.0
#: Room tone under everything "recorded": white noise at -70 dBFS RMS.
ROOM_TONE_RMS = 10 ** (-70 / 20)

SENTENCES = (
    "Hello, this is my voice, recorded for a short reference sample today.",
    "The quick brown fox jumps over the lazy dog while seven happy children sing.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and a snack for her brother Bob.",
    "We also need a small plastic snake and a big toy frog for the kids.",
)


def speech_mono(seconds: float, rate: int = RATE, *, seed: int = 0) -> F32:
    """At least ``seconds`` of espeak-ng speech at ``rate`` (whole sentences), peak about -1.5 dBFS."""
    parts: list[F32] = []
    total = 0.0
    index = seed
    while total < seconds:
        parts.append(speak(SENTENCES[index % len(SENTENCES)], rate, pitch=40 + 5 * (index % 4)))
        parts.append(np.zeros(int(rate * 0.3), dtype=np.float32))
        total += parts[-2].size / rate + 0.3
        index += 1
    return np.concatenate(parts[:-1])


def recording(voice: F32, rate: int = RATE, *, lead_s: float = LEAD_S, seed: int = 1) -> F32:
    """``voice`` with ``lead_s`` of silence either side and room tone under it all."""
    pad = np.zeros(int(lead_s * rate), dtype=np.float32)
    signal = np.concatenate([pad, voice, pad])
    return signal + noise(signal.size / rate, ROOM_TONE_RMS, rate, seed=seed)


@functools.cache
def speech_wav(seconds: float = 6.0, seed: int = 0) -> bytes:
    """A mono 48 kHz WAV of espeak-ng speech with silence and room tone around it; another `seed`
    gives other sentences (ElevenLabs refuses a file it has already been sent)."""
    return wav_bytes(recording(speech_mono(seconds, seed=seed), seed=seed + 1))


def noise(seconds: float, rms: float, rate: int = RATE, *, seed: int = 2) -> F32:
    """White noise at ``rms``."""
    return (np.random.default_rng(seed).standard_normal(round(seconds * rate)) * rms).astype(np.float32)


def tone(seconds: float, hz: float, peak: float, rate: int = RATE) -> F32:
    """A steady sine tone."""
    return (peak * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def rms(signal: F32) -> float:
    """Root mean square of ``signal``."""
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))


def wav_bytes(signal: F32, rate: int = RATE, *, width: int = 2) -> bytes:
    """PCM WAV of mono (n,) or multi-channel (channels, n) float samples in [-1, 1]."""
    planar = signal[np.newaxis, :] if signal.ndim == 1 else signal
    scale = float(2 ** (8 * width - 1) - 1)
    dtype = {2: "<i2", 4: "<i4"}[width]
    frames = (np.clip(planar, -1.0, 1.0).T * scale).astype(dtype)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(planar.shape[0])
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames.tobytes())
    return buffer.getvalue()


def encode(
    signal: F32,
    rate: int,
    container: str,
    codec: str,
    *,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
    sample_format: str | None = None,
) -> bytes:
    """``signal`` (mono (n,) or (channels, n)) encoded by the ffmpeg executable into ``container`` (an FFmpeg
    muxer name), written to a file as a recorder would (MP4 indexed at its end, FLAC and WebM with their length)."""
    settings = [
        *("-c:a", codec),
        *(("-b:a", str(bit_rate)) if bit_rate is not None else ()),
        *(("-sample_fmt", sample_format) if sample_format is not None else ()),
        *(arg for name, value in (options or {}).items() for arg in (f"-{name}", value)),
    ]
    return _ffmpeg(signal, rate, settings, container)


def webm_with_video(signal: F32, rate: int = RATE) -> bytes:
    """A WebM holding a small VP8 video track beside the Opus speech: a video, not an audio sample."""
    video = ["-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-map", "0:a", "-map", "1:v", "-shortest"]
    return _ffmpeg(signal, rate, [*video, "-c:a", "libopus", "-c:v", "libvpx"], "webm")


def _ffmpeg(signal: F32, rate: int, args: list[str], container: str) -> bytes:
    """What ffmpeg makes of ``signal`` (given on stdin) with ``args``, as a ``container`` file."""
    planar = signal[np.newaxis, :] if signal.ndim == 1 else signal
    pcm = ["-f", "f32le", "-ar", str(rate), "-ac", str(planar.shape[0]), "-i", "pipe:0"]
    with tempfile.TemporaryDirectory() as workdir:
        out = Path(workdir) / "out"
        subprocess.run(
            [str(find_ffmpeg()), "-hide_banner", "-loglevel", "error", *pcm, *args, "-f", container, str(out)],
            input=np.ascontiguousarray(planar.T, dtype="<f4").tobytes(),
            check=True,
            timeout=120,
        )
        return out.read_bytes()


def wav_claiming(data: bytes, claimed_seconds: float) -> bytes:
    """``data`` (a PCM WAV) with its data chunk's size rewritten to claim ``claimed_seconds``."""
    with wave.open(io.BytesIO(data), "rb") as src:
        byte_rate = src.getframerate() * src.getnchannels() * src.getsampwidth()
    at = data.index(b"data") + 4
    return data[:at] + struct.pack("<I", int(claimed_seconds * byte_rate)) + data[at + 4 :]


def flac_bomb(seconds: float, *, rate: int = 8000, claim_length: bool = True) -> bytes:
    """A tiny FLAC of ``seconds`` of digital silence in 65535-sample frames (~30 bit/s).

    Without ``claim_length`` the STREAMINFO sample count is zeroed ("unknown", as the format allows),
    so only counting decoded samples can stop it.
    """
    silence = np.zeros(int(seconds * rate), dtype=np.float32)
    data = bytearray(encode(silence, rate, "flac", "flac", options={"frame_size": "65535"}, sample_format="s16"))
    if not claim_length:
        # STREAMINFO starts at byte 8; its bytes 10-17 hold rate(20) channels(3) bits(5) samples(36).
        packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)
        data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


def _speech_files() -> dict[str, bytes]:
    voice = speech_mono(10.0)
    take = recording(voice)
    stereo_voice = speech_mono(10.0, 44100, seed=2)
    stereo = np.stack([recording(stereo_voice, 44100, seed=3), recording(stereo_voice, 44100, seed=4) * 0.9])
    speech_wav = wav_bytes(take)
    return {
        "speech.wav": speech_wav,
        "speech_44k_stereo_24bit.wav": wav_bytes(stereo, 44100, width=4),
        "speech.flac": encode(take, RATE, "flac", "flac", sample_format="s16"),
        "speech.mp3": encode(take, RATE, "mp3", "libmp3lame", bit_rate=96000),
        "speech.ogg": encode(take, RATE, "ogg", "libopus", bit_rate=32000),
        "speech.webm": encode(take, RATE, "webm", "libopus", bit_rate=32000),
        "speech.m4a": encode(take, RATE, "ipod", "aac", bit_rate=96000),
        "speech_noisy.wav": wav_bytes(take + noise(take.size / RATE, rms(voice) / 10 ** (8 / 20), seed=5)),
        "speech_quiet.wav": wav_bytes(take * 10 ** (-40 / 20)),
        "speech_clipped.wav": wav_bytes(np.clip(take * 8.0, -1.0, 1.0)),
        "speech_short.wav": wav_bytes(recording(voice[: int(1.6 * RATE)], lead_s=0.2)),
        "speech_truncated.wav": speech_wav[: len(speech_wav) // 2],
    }


def _other_files() -> dict[str, bytes]:
    short_take = recording(speech_mono(4.0))
    speech_m4a = encode(short_take, RATE, "ipod", "aac", bit_rate=64000)
    rng = np.random.default_rng(7)
    return {
        "tone.wav": wav_bytes(tone(5.0, 440.0, 0.5)),
        "white_noise.wav": wav_bytes(noise(5.0, 0.1)),
        "silence.wav": wav_bytes(np.zeros(5 * RATE, dtype=np.float32)),
        "digital_silence.flac": encode(np.zeros(5 * RATE, dtype=np.float32), RATE, "flac", "flac", sample_format="s16"),
        "truncated.m4a": speech_m4a[: len(speech_m4a) * 2 // 3],
        "video.webm": webm_with_video(short_take),
        "corrupt.ogg": b"OggS" + rng.bytes(20000),
        "corrupt.mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + rng.bytes(20000),
        "text.wav": b"hello, this is a plain text file that someone renamed to .wav\n" * 50,
        "claims_hours.wav": wav_claiming(wav_bytes(speech_mono(3.0)), 3 * 3600),
        "bomb.flac": flac_bomb(3600),
        "bomb_unknown_length.flac": flac_bomb(3600, claim_length=False),
    }


def build_corpus() -> dict[str, bytes]:
    """Every corpus file by name (the name's extension is only a label: the pipeline never reads it)."""
    return _speech_files() | _other_files()
