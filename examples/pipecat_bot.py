"""A Pipecat bot that speaks in a voicegate reflection's voice, with no microphone and no speaker: each line
of standard input is spoken, and the audio is written to a WAV file.

    make pipecat            # in the voicegate checkout: pipecat-ai into .venv, from the lock
    echo "Hello! I speak in my reflection's voice." | \\
        .venv/bin/python examples/pipecat_bot.py --token "$TOKEN" --session "$SESSION" --out hello.wav

`--session` is the id `POST /v1/reflections/{id}/sessions` answered with (or give `--reflection`); the token is
the user's access token (`voicegate token --user you@voicegate.local` against `voicegate up`); voicegate's address is
`--api`, else `VOICEGATE_API`, else `API` (as the docs' snippets set it), else http://127.0.0.1:8000. It exits 1,
saying why and writing no file, if voicegate refuses (a reflection whose launch gate is closed, a token it does not
accept) or nothing was spoken.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import wave
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import EndFrame, ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker, ProcessorUnusablePolicy
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from backend.conversation.pipecat_tts import VoicegateTTSService
from backend.providers.base import STREAM_SAMPLE_RATE


class WavWriter(FrameProcessor):
    """Writes the TTS audio frames that reach it to a 16-bit mono WAV (the bot's "speaker"): opened with the first
    audio, so that a bot that spoke nothing leaves no file."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        super().__init__()
        self._path = path
        self._rate = sample_rate
        self._wav: wave.Wave_write | None = None
        self.seconds = 0.0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            if self._wav is None:
                self._wav = wave.open(str(self._path), "wb")  # noqa: SIM115 - closed by close(), once the pipeline ends
                self._wav.setnchannels(1)
                self._wav.setsampwidth(2)
                self._wav.setframerate(self._rate)
            self._wav.writeframes(frame.audio)
            self.seconds += len(frame.audio) / 2 / frame.sample_rate
        await self.push_frame(frame, direction)

    def close(self, *, keep: bool) -> None:
        """Close the file, and remove it unless `keep` (the bot failed: what it wrote is no answer)."""
        if self._wav is not None:
            self._wav.close()
            if not keep:
                self._path.unlink(missing_ok=True)


async def run(args: argparse.Namespace) -> int:
    tts = VoicegateTTSService(
        api_url=args.api, access_token=args.token, session_id=args.session, reflection_id=args.reflection
    )
    speaker = WavWriter(args.out, STREAM_SAMPLE_RATE)
    # A TTS service that cannot work (the gate is closed) ends the bot instead of leaving it mute.
    worker = PipelineWorker(
        Pipeline([tts, speaker]),
        cancel_on_idle_timeout=False,
        processor_unusable_policy=ProcessorUnusablePolicy.END,
    )
    errors: list[str] = []
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    @worker.event_handler("on_pipeline_error")
    async def on_error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
        errors.append(frame.error)

    async def speak_stdin() -> None:
        await started.wait()
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip():
                await worker.queue_frame(TTSSpeakFrame(line.strip()))
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    feeder = asyncio.create_task(speak_stdin())
    await runner.run()
    feeder.cancel()
    if not errors and speaker.seconds == 0:
        errors.append("voicegate spoke nothing: give the bot some text on its standard input")
    speaker.close(keep=not errors)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return 1
    print(f"wrote {speaker.seconds:.2f} s of audio to {args.out}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_api = os.environ.get("VOICEGATE_API") or os.environ.get("API") or "http://127.0.0.1:8000"
    parser.add_argument("--api", default=default_api, help="voicegate's address")
    parser.add_argument("--token", default=os.environ.get("VOICEGATE_TOKEN"), help="the user's access token")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--session", help="a launched session's id")
    who.add_argument("--reflection", help="a reflection's id")
    parser.add_argument("--out", type=Path, default=Path("bot.wav"))
    args = parser.parse_args()
    # Pipecat logs every frame's journey at DEBUG through loguru; the bot's own lines are enough.
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if not args.token:
        parser.error("--token (or VOICEGATE_TOKEN) is required")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
