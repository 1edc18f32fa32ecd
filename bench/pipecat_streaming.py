"""Benchmark: the time to first byte Pipecat reports for `VoicegateTTSService` (its `TTFBMetricsData`, from the
moment the service opens a sentence's audio context to its first audio frame) beside the first byte of the
speech route it calls, `POST /v1/reflections/{id}/speech`, timed as bench/streaming.py times it, one sentence
at a time, the two taking turns, for `local`, the ElevenLabs fake and the vLLM-Omni fake (set up as
bench/streaming.py sets them up). Target: Pipecat's p50 within 10 ms of the route's.

    python bench/pipecat_streaming.py [--single 20] [--latency 0.2] [--render 0.04]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

import httpx
from pipecat.frames.frames import EndFrame, Frame, MetricsFrame, TTSSpeakFrame, TTSStoppedFrame
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.conversation.pipecat_tts import VoicegateTTSService  # noqa: E402 - after the path setup above
from bench.streaming import SENTENCE, arguments, served  # noqa: E402
from devkit.streaming import stream  # noqa: E402

#: How far Pipecat's p50 may be from the route's, ms.
TARGET_MS = 10.0
#: The longest one sentence may take, end to end.
SENTENCE_TIMEOUT_S = 60.0


class Timings(FrameProcessor):
    """The end of the pipeline: keeps the TTFB each sentence reports, and says when a sentence has ended."""

    def __init__(self) -> None:
        super().__init__()
        self.ttfb_s: list[float] = []
        self.stopped = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, MetricsFrame):
            self.ttfb_s += [data.value for data in frame.data if isinstance(data, TTFBMetricsData) and data.value]
        if isinstance(frame, TTSStoppedFrame):
            self.stopped.set()
        await self.push_frame(frame, direction)


async def compare(base_url: str, token: str, reflection_id: str, count: int) -> tuple[list[float], list[float]]:
    """`count` sentences through the route and through Pipecat, taking turns (after one of each to warm up):
    their first bytes, ms."""
    tts = VoicegateTTSService(api_url=base_url, access_token=token, reflection_id=reflection_id)
    timings = Timings()
    worker = PipelineWorker(
        Pipeline([tts, timings]), params=PipelineParams(enable_metrics=True), cancel_on_idle_timeout=False
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    route: list[float] = []

    async def turns() -> None:
        await asyncio.wait_for(started.wait(), SENTENCE_TIMEOUT_S)
        async with httpx.AsyncClient(timeout=SENTENCE_TIMEOUT_S) as client:
            for turn in range(count + 1):
                heard = await stream(
                    client, f"{base_url}/v1/reflections/{reflection_id}/speech", token, {"text": SENTENCE}
                )
                if heard.status != 200:
                    raise SystemExit(f"the route answered {heard.status}: {heard.body[:200]!r}")
                route.extend([heard.first_byte_s * 1000] if turn else [])
                timings.stopped.clear()
                await worker.queue_frame(TTSSpeakFrame(SENTENCE))
                await asyncio.wait_for(timings.stopped.wait(), SENTENCE_TIMEOUT_S)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), turns())
    if len(timings.ttfb_s) != count + 1:
        raise SystemExit(f"Pipecat reported {len(timings.ttfb_s)} first bytes for {count + 1} sentences")
    return route, [value * 1000 for value in timings.ttfb_s[1:]]


def main() -> None:
    args = arguments(__doc__).parse_args()
    with served(streams=1, latency=args.latency, render=args.render) as up:
        print(f"one sentence at a time x {args.single}, {SENTENCE!r}: first byte p50, ms")
        print(f"{'':44} {'the route':>10} {'Pipecat':>8} {'apart':>7}")
        for name, (rid, _) in up.reflections.items():
            route, pipecat = asyncio.run(compare(up.base_url, up.token, rid, args.single))
            apart = statistics.median(pipecat) - statistics.median(route)
            met = "met" if abs(apart) <= TARGET_MS else "NOT MET"
            print(
                f"{name:44} {statistics.median(route):10.0f} {statistics.median(pipecat):8.0f} {apart:+7.0f}"
                f"  (target within {TARGET_MS:.0f}: {met})"
            )


if __name__ == "__main__":
    main()
