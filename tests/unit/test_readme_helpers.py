"""The README quickstart's `json` helper, run by bash as a reader pastes it: a member of an answer is printed, and a
refusal is said in voicegate's own words (status, code, detail) on stderr, failing, instead of a Python traceback."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def run_json(answer: dict[str, object], member: str) -> subprocess.CompletedProcess[str]:
    helper = next(line for line in README.read_text().splitlines() if re.match(r"json\(\) \{", line))
    return subprocess.run(
        ["bash", "-c", f'{helper}\njson "$1"', "bash", member],
        input=json.dumps(answer),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_member_of_the_answer_is_printed() -> None:
    done = run_json({"sampleId": "6bcc", "status": "pending"}, "sampleId")
    assert (done.returncode, done.stdout, done.stderr) == (0, "6bcc\n", "")


def test_a_refusal_is_said_in_voicegates_words_and_fails() -> None:
    refusal = {"status": 422, "code": "provider_not_configured", "detail": "Voice provider 'cartesia' is not set up."}
    done = run_json(refusal, "sampleId")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "voicegate: 422 provider_not_configured: Voice provider 'cartesia' is not set up.\n"
