"""Pipecat against a real `voicegate up` (the `local` provider): a pipeline with `VoicegateTTSService` started
from a session id gets the reflection's voice as audio frames, follows the voice when the reflection's active
attempt changes, and refuses to start for a reflection whose launch gate is closed; the example bot speaks
standard input into a WAV file."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test
from pipecat.workers.runner import WorkerRunner

from backend.conversation.pipecat_tts import VoicegateTTSService
from devkit.audio_corpus import speech_wav
from devkit.up import REPO, Running, dev_token, is_ready, start_up, wait_for
from tests.conftest import server_dir

pytestmark = pytest.mark.timeout(300)


@dataclass
class Bot:
    """A running `voicegate up`, a user's token and a launch-ready reflection with a session."""

    up: Running
    token: str
    reflection_id: str
    session_id: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.up.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


def voice_state(client: httpx.Client, rid: str) -> dict[str, Any]:
    state: dict[str, Any] = client.get(f"/v1/reflections/{rid}/voice").raise_for_status().json()
    assert state["voice"]["cloneStatus"] != "failed", state["voice"]["lastError"]
    return state


@pytest.fixture(scope="module")
def bot() -> Iterator[Bot]:
    with server_dir("pipecat") as root:
        up = start_up(root)
        try:
            wait_for(lambda: is_ready(up.base_url), 90, "/readyz 200", up)
            # The docs' user: the documented snippet clones the docs' sample again, as the same account.
            token = dev_token(up, "you@voicegate.local")
            with httpx.Client(base_url=up.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                rid = api.post("/v1/reflections", json={"name": "Ada"}).raise_for_status().json()["id"]
                api.post(
                    f"/v1/reflections/{rid}/voice/clone",
                    data={"consent": "true", "language": "en"},
                    files={"file": ("me.wav", speech_wav(), "audio/wav")},
                ).raise_for_status()
                wait_for(lambda: voice_state(api, rid)["voice"]["previewStatus"] == "ready", 120, "the preview")
                api.post(f"/v1/reflections/{rid}/voice/preview/complete").raise_for_status()
                session = api.post(f"/v1/reflections/{rid}/sessions").raise_for_status().json()
            yield Bot(up, token, rid, session["id"])
        finally:
            if up.process.poll() is None:
                up.process.terminate()
                up.process.wait(timeout=30)
            up.pg.stop(mode="immediate")


class Collector(FrameProcessor):
    """The end of a test pipeline: keeps what reaches it, and says when a TTS context has ended."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.stopped = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        if isinstance(frame, TTSStoppedFrame):
            self.stopped.set()
        await self.push_frame(frame, direction)

    def audio_seconds(self) -> float:
        audio = [f for f in self.frames if isinstance(f, TTSAudioRawFrame)]
        assert {(f.sample_rate, f.num_channels) for f in audio} == {(24000, 1)}
        return sum(len(f.audio) for f in audio) / 2 / 24000


async def test_a_pipeline_speaks_in_the_reflections_voice_and_follows_a_new_attempt(bot: Bot) -> None:
    tts = VoicegateTTSService(api_url=bot.up.base_url, access_token=bot.token, session_id=bot.session_id)
    changes: list[dict[str, Any]] = []

    @tts.event_handler("on_voice_changed")
    async def on_voice_changed(_tts: VoicegateTTSService, voice: dict[str, Any]) -> None:
        changes.append(voice)

    collector = Collector()
    worker = PipelineWorker(Pipeline([tts, collector]), cancel_on_idle_timeout=False)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    async def converse() -> None:
        await asyncio.wait_for(started.wait(), 30)
        assert tts.reflection_id == bot.reflection_id  # found from the session
        first_attempt = tts.attempt_id
        await worker.queue_frame(TTSSpeakFrame("Hello there. I speak in my reflection's voice."))
        await asyncio.wait_for(collector.stopped.wait(), 60)
        first_seconds = collector.audio_seconds()
        assert 1.0 < first_seconds < 8.0, first_seconds

        # A new active attempt (the same provider voice, attached again): the mirror changes.
        with bot.client() as api:
            voice_id = voice_state(api, bot.reflection_id)["voice"]["providerVoiceId"]
            attached = api.patch(
                f"/v1/reflections/{bot.reflection_id}/voice", json={"provider": "local", "voice_id": voice_id}
            )
            new_attempt = attached.raise_for_status().json()["id"]
            deadline = time.monotonic() + 60
            while not (state := voice_state(api, bot.reflection_id))["launchReady"]:
                assert time.monotonic() < deadline, state
                await asyncio.sleep(0.1)
        assert new_attempt != first_attempt
        collector.stopped.clear()
        await worker.queue_frame(TTSSpeakFrame("And now with the new attempt."))
        await asyncio.wait_for(collector.stopped.wait(), 60)
        assert collector.audio_seconds() > first_seconds + 0.8
        assert tts.attempt_id == new_attempt
        assert [change["attemptId"] for change in changes] == [new_attempt]
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), converse())
    kinds = [type(f) for f in collector.frames if isinstance(f, TTSStartedFrame | TTSStoppedFrame)]
    assert kinds == [TTSStartedFrame, TTSStoppedFrame, TTSStartedFrame, TTSStoppedFrame]


async def test_the_service_refuses_to_start_for_a_reflection_that_is_not_launch_ready(bot: Bot) -> None:
    with bot.client() as api:
        rid = api.post("/v1/reflections", json={"name": "Mute"}).raise_for_status().json()["id"]
    tts = VoicegateTTSService(api_url=bot.up.base_url, access_token=bot.token, reflection_id=rid)
    down, up = await run_test(tts, frames_to_send=[TTSSpeakFrame("Hello.")])
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert any(f"reflection {rid} is not ready to launch: no_voice" in error for error in errors), errors
    assert not [f for f in down if isinstance(f, TTSAudioRawFrame)]


def test_the_example_bot_speaks_standard_input_into_a_wav(bot: Bot, tmp_path: Path) -> None:
    out = tmp_path / "bot.wav"
    command = [sys.executable, "examples/pipecat_bot.py", "--api", bot.up.base_url, "--token", bot.token]
    spoken = subprocess.run(
        [*command, "--session", bot.session_id, "--out", str(out)],
        input=b"Hello there, I am a bot.\n\nI read standard input and write a file.\n",
        capture_output=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert spoken.returncode == 0, spoken.stderr.decode()[-2000:]
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert 2.0 < wav.getnframes() / 24000 < 15.0

    with bot.client() as api:
        rid = api.post("/v1/reflections", json={"name": "Silent"}).raise_for_status().json()["id"]
    refused = subprocess.run(
        [*command, "--reflection", rid, "--out", str(tmp_path / "none.wav")],
        input=b"Hello.\n",
        capture_output=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert refused.returncode == 1
    assert b"not ready to launch: no_voice" in refused.stderr


def test_the_documented_bot_runs_as_written_on_a_fresh_up(bot: Bot, tmp_path: Path) -> None:
    """docs/api/streaming.md's "Against `voicegate up`" snippet, as printed, from a directory laid out like the
    checkout (its `make pipecat` finds pipecat installed): it clones a voice from the docs' sample, launches a session
    and has the bot speak two lines into bot.wav. Before, `make up` had not installed pipecat (the install line was only
    in the bot's docstring), and the bot read neither the snippet's `API` nor wrote nothing when it failed."""
    page = (REPO / "docs" / "api" / "streaming.md").read_text()
    match = re.search(r"<!-- pipecat-bot -->\n```sh\n(.*?)```", page, re.S)
    assert match is not None, "docs/api/streaming.md has no pipecat-bot block"
    # The copy shares the checkout's .venv: were it older than its lock files, the copy's `make pipecat` would install
    # voicegate into it again, editable from the copy, and leave every later test a `voicegate` that is gone.
    stale = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO, capture_output=True, check=False)
    assert stale.returncode == 0, "the checkout's .venv is older than its lock files: run make .venv/.installed"
    for name in (".venv", "docs", "examples", "Makefile", "pyproject.toml", "requirements", "tools"):
        (tmp_path / name).symlink_to(REPO / name)
    # `voicegate token` finds the server's database by the data directory, as in the checkout it would be .voicegate.
    env = {**os.environ, "API": bot.up.base_url, "VOICEGATE_DATA_DIR": str(bot.up.pg.data_dir.parent)}
    env["VOICEGATE_PG_PORT"] = str(bot.up.pg.port)
    ran = subprocess.run(
        ["bash", "-e", "-c", match[1]], cwd=tmp_path, env=env, capture_output=True, timeout=240, check=False
    )
    assert ran.returncode == 0, (ran.stdout.decode()[-2000:], ran.stderr.decode()[-2000:])
    assert re.search(r"wrote \d+\.\d\d s of audio to bot\.wav", ran.stdout.decode()), ran.stdout.decode()
    with wave.open(str(tmp_path / "bot.wav")) as wav:
        assert wav.getnframes() / wav.getframerate() > 1.0


def test_the_bot_that_fails_writes_nothing_and_says_why(bot: Bot, tmp_path: Path) -> None:
    out = tmp_path / "bot.wav"
    refused = subprocess.run(
        [sys.executable, "examples/pipecat_bot.py", "--token", "not-a-token", "--session", bot.session_id],
        input=b"Hello.\n",
        capture_output=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "API": bot.up.base_url, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert refused.returncode == 1
    assert b"wrote" not in refused.stdout
    assert refused.stderr.strip(), "the reason is said"
    assert not out.exists()
    assert not (REPO / "bot.wav").exists()
