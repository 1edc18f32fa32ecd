"""The shared parts of the scripts that need no database: arguments, progress, key tags, ages."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from backend.providers.base import ProviderVoice
from backend.providers.enrolment import key_digest, key_marker, key_tag
from backend.providers.enrolment import qwen_preferred_name as preferred_name
from scripts import recover_stale_attempts
from scripts._common import ProgressBar, duration
from scripts.reconcile_provider_voices import created_at


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400), ("2d", 172800), ("0.5h", 1800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("argv", [["--stale-after", "soon"], ["--batch-size", "0"], ["--batch-size", "100000"]])
def test_bad_arguments_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        recover_stale_attempts.main(argv)
    assert exit_info.value.code == 2


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = io.StringIO()
    with ProgressBar(True, Console(file=terminal, force_terminal=True, width=80)).task("attempts", 4) as advance:
        advance(2)
    assert "attempts" in terminal.getvalue()

    pipe = io.StringIO()
    with ProgressBar(True, Console(file=pipe, force_terminal=False)).task("attempts", 4) as advance:
        advance(2)
    assert pipe.getvalue() == ""


def test_key_tags_of_every_adapter_match_only_their_key() -> None:
    key = "vg-3b9e"
    shapes = [
        ProviderVoice(provider="elevenlabs", voice_id="abc", enrolment_key=key),
        ProviderVoice(
            provider="cartesia", voice_id="c1", metadata={"description": f"voicegate voice {key_marker(key)}"}
        ),
        ProviderVoice(provider="qwen", voice_id=f"qwen-tts-vc-{preferred_name(key)}-voice-20261121-ab12"),
    ]
    for voice in shapes:
        tag = key_tag(voice)
        assert tag is not None, voice
        assert tag.matches(key)
        assert not tag.matches("vg-other")
        assert tag.prefix == key_digest(key, 14)
    assert key_tag(ProviderVoice(provider="cartesia", voice_id="c2", metadata={"description": "my voice"})) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-20T10:00:00.5Z", datetime(2026, 11, 20, 10, 0, 0, 500000, tzinfo=UTC)),
        ("1795000000", datetime.fromtimestamp(1795000000, UTC)),
        ("2026-11-20 10:00:00", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_provider_creation_times(raw: str | None, expected: datetime | None) -> None:
    assert created_at(ProviderVoice(provider="x", voice_id="v", created_at=raw)) == expected
