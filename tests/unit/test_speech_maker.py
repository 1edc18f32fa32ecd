"""The tests' speech maker: espeak-ng run as a program, at the rate asked, and a clear failure without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.speech_maker import MISSING, speak


def test_speech_comes_at_the_rate_asked() -> None:
    text = "Seven silver swans swam south."
    low, high = speak(text, 16000), speak(text, 48000)
    assert 1.0 < low.size / 16000 < 4.0
    assert abs(high.size - 3 * low.size) <= 3
    assert 0.02 < float(abs(high).max()) <= 1.0


def test_without_the_espeak_ng_executable_speech_fails_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as caught:
        speak("A sentence that no other test speaks, so nothing is cached.", 16000)
    message = str(caught.value)
    assert message == MISSING
    assert "make test" in message
    assert "Debian package espeak-ng" in message
