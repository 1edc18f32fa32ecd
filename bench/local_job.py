"""Benchmark: a 150-word synthesis job end to end on a real `voicegate up`, the whole stack on one core.

    python bench/local_job.py [--repeat 3]

The bench pins itself to the first core it may use before it starts anything, so `voicegate up` (API,
consumers, embedded Postgres, Storage stand-in) and this client share that one core, as
`taskset -c 0 voicegate up` would. A voice is cloned from `docs/quickstart-sample.wav` with the `local`
provider; then each of `--repeat` jobs asks `POST /api/v1/clone` for a 150-word text in that voice and
is timed from the request to the status `succeeded` (polled every 50 ms), against the seconds of speech
its result holds. Beside it, in the same run and on the same core, the bare equivalent: hibari alone (the
stock voice, no adaptation, no HTTP, database, queue, storage or signing) rendering the same text in this
process. Target: the job at <= 0.1x its duration.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.providers.local.hibari_voice import HibariVoice  # noqa: E402
from devkit.up import dev_token, running_up, wait_for  # noqa: E402

TEXT = (
    "Thank you for calling the support line today. I am sorry to hear that your order arrived late, and I "
    "understand how frustrating that can be when you were counting on it for the weekend. Let me look up the "
    "details for you now. I can see that the parcel left our warehouse on Monday morning, but it was held at "
    "the regional depot because of the storm that closed several roads in your area. It was delivered on "
    "Thursday afternoon, two days after the date we promised. As an apology, I have refunded the shipping "
    "charge to your card, and you should see it within three to five working days. Is there anything else I "
    "can help you with while I have you on the line? If not, thank you again for your patience, and have a "
    "lovely evening. We value your custom, and we very much hope to be of service to you again soon."
)
TARGET = 0.1


def bare(repeat: int) -> float:
    """Seconds of wall clock per second of speech for hibari alone on TEXT (the median of `repeat`)."""
    voice = HibariVoice.shared()
    voice.speak("Warm up.")
    ratios = []
    for _ in range(repeat):
        started = time.monotonic()
        audio = voice.speak(TEXT)
        ratios.append((time.monotonic() - started) / (audio.size / voice.sample_rate))
    return statistics.median(ratios)


def through_voicegate(repeat: int) -> list[tuple[float, float]]:
    """(seconds the job took, seconds of speech) for `repeat` jobs on a fresh `voicegate up`."""
    runs = []
    with running_up(Path(tempfile.mkdtemp(prefix="voicegate-local-job-"))) as up:
        token = dev_token(up, "bench@example.test")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=up.base_url, headers=headers, timeout=60) as api:
            sample_wav = (REPO / "docs" / "quickstart-sample.wav").read_bytes()
            uploaded = api.post(
                "/api/v1/voice-samples", data={"consent": "true"}, files={"file": ("s.wav", sample_wav, "audio/wav")}
            )
            sample = uploaded.raise_for_status().json()["sampleId"]
            first = api.post("/api/v1/clone", json={"sampleId": sample, "text": "Hello there."}).raise_for_status()
            cloned = first.json()

            def succeeded() -> bool:
                return bool(api.get(f"/api/v1/clone/{cloned['jobId']}/status").json()["status"] == "succeeded")

            wait_for(succeeded, 300, "the voice's first job")
            for _ in range(repeat):
                started = time.monotonic()
                asked = api.post("/api/v1/clone", json={"voiceId": cloned["voiceId"], "text": TEXT})
                job = asked.raise_for_status().json()["jobId"]
                deadline = started + 300
                while (state := api.get(f"/api/v1/clone/{job}/status").json())["status"] not in {"succeeded", "failed"}:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"job {job} still {state['status']} after 300 s")
                    time.sleep(0.05)
                took = time.monotonic() - started
                if state["status"] != "succeeded":
                    raise RuntimeError(f"job {job} failed: {state}")
                seconds = api.get(f"/api/v1/clone/{job}/result").json()["durationMs"] / 1000
                runs.append((took, seconds))
    return runs


def main() -> None:
    """Pin to one core, time the jobs and the bare render, print both with the target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    core = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {core})
    print(f"{len(TEXT.split())} words; everything on core {core} of {os.cpu_count()}")
    runs = through_voicegate(args.repeat)
    baseline = bare(args.repeat)
    for took, seconds in runs:
        print(f"  job: {took:.2f} s for {seconds:.1f} s of speech = {took / seconds:.3f}x")
    job = statistics.median(took / seconds for took, seconds in runs)
    print(f"{'':34}{'x its duration':>16}")
    print(f"{'voicegate job, end to end':34}{job:>16.3f}   target <= {TARGET}")
    print(f"{'hibari alone (baseline)':34}{baseline:>16.3f}")


if __name__ == "__main__":
    main()
