"""What the page says of spoken consent (issue 46), run by Node as the browser runs the page's modules: a rejected
reading's reason, a sample whose speaker is not the consent's with its score beside the threshold, or with the
seconds where someone else speaks in it (issue 56), the consent refusals answered at once
(`consent_recording_required`, `consent_not_verified`, `consent_expired`), and a voice's likeness."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

STATIC = Path(__file__).resolve().parents[2] / "backend" / "http" / "static"


def run(module: str, expression: str) -> Any:
    """`expression`, with the exports of the page's `module` in scope, evaluated by Node; its JSON value."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (the machine's Node.js runs the page's module here)")
    url = json.dumps((STATIC / module).as_uri())
    script = f"const m = await import({url}); console.log(JSON.stringify({expression}));"
    ran = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, timeout=60, check=True)
    return json.loads(ran.stdout)


def test_each_rejected_reading_is_said_with_what_to_do() -> None:
    reasons = '["phrase_mismatch", "too_short", "not_speech", "expired", "too_noisy", "synthetic_speech"]'
    words = run("words.js", f"{reasons}.map(m.rejectionWords)")
    assert words[0] == "We did not hear the phrase as written; read it again, the four numbers at the end too."
    assert "too little speech" in words[1]
    assert "no speech" in words[2]
    assert "expired" in words[3]
    assert "new one" in words[3]
    assert "minutes" not in words[3], "the phrase's lifetime is the server's (VOICEGATE_CONSENT_PHRASE_SECONDS)"
    assert "too noisy" in words[4]
    assert "quieter" in words[4]
    assert "close to the microphone" in words[4]
    assert words[5].startswith("That recording is synthesized speech")
    assert "Read the phrase yourself." in words[5]
    assert len(set(words)) == 6


def test_a_speaker_mismatch_is_said_with_its_score_and_the_threshold_and_other_failures_as_they_are() -> None:
    mismatch = {
        "failureReason": "speaker_mismatch: the speaker matches the consent's at 0.52, below 0.74",
        "speakerMatch": 0.5249,
    }
    said = run(
        "words.js",
        f"[m.sampleFailureWords({json.dumps(mismatch)}, 0.74),"
        " m.sampleFailureWords({failureReason: 'sample too short'}, 0.74),"
        " m.sampleFailureWords({failureReason: 'synthetic_speech: the sample carries the watermark (score 1.00)'},"
        " 0.74)]",
    )
    assert said == [
        "This sample's voice does not match the voice that read the consent (0.52; the same speaker from 0.74)."
        " Record it yourself.",
        "This sample was refused: sample too short.",
        "This sample is synthesized speech (it carries the watermark of voices like the ones made here): a voice"
        " is not cloned from a clone. Record the speaker themself.",
    ]


def test_someone_else_in_part_of_a_sample_is_said_with_the_seconds_where_they_speak() -> None:
    spliced = {
        "failureReason": "speaker_mismatch: the speech from 4.6 s to 21.7 s is not the consent's speaker (matching"
        " it at 0.42; the same speaker from 0.71; the whole sample at 0.76, from 0.74)",
        "speakerMatch": 0.7561,
    }
    twice = {
        "failureReason": "speaker_mismatch: the speech from 0.5 s to 3.9 s and from 20.1 s to 24.0 s are not the"
        " consent's speaker (matching it at 0.51; the same speaker from 0.71; the whole sample at 0.81, from 0.74)",
        "speakerMatch": 0.81,
    }
    mixed = {
        "failureReason": "mixed_speakers: the speech from 8.0 s to 11.4 s is not the voice of the rest of the sample"
        " (matching it at 0.49; the same voice from 0.69)",
    }
    said = run(
        "words.js",
        f"[{json.dumps(spliced)}, {json.dumps(twice)}, {json.dumps(mixed)}].map((s) => m.sampleFailureWords(s, 0.74))",
    )
    assert said == [
        "From 4.6 s to 21.7 s, this sample is not the voice that read the consent: someone else is speaking there."
        " Record the sample yourself, with no one else speaking.",
        "From 0.5 s to 3.9 s and from 20.1 s to 24.0 s, this sample is not the voice that read the consent: someone"
        " else is speaking there. Record the sample yourself, with no one else speaking.",
        "This sample holds two voices: from 8.0 s to 11.4 s it is not the voice of the rest. A sample is one"
        " person's voice: record it again, with no one else speaking.",
    ]
    assert not any("0.76" in words or "_" in words for words in said), "no score that passed, no code"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("consent_recording_required", "only under a spoken consent: read your consent phrase first"),
        ("consent_not_verified", "has not been verified yet: read it aloud first"),
        ("consent_expired", "can no longer be used"),
    ],
)
def test_consent_refusals_are_put_in_words(code: str, words: str) -> None:
    problem = {"code": code, "detail": "the server's own words", "status": 422}
    said = run("api.js", f"m.describe(422, {json.dumps(problem)}, null)")
    assert words in said, said


def test_a_ready_voice_says_its_likeness_beside_the_threshold_and_what_the_offline_voice_is() -> None:
    said = run(
        "words.js",
        "[m.likenessWords({ready: true, likeness: 0.634, threshold: 0.74, provider: 'local'}),"
        " m.likenessWords({ready: true, likeness: 0.82, threshold: 0.74, provider: 'elevenlabs'}),"
        " m.likenessWords({ready: true, error: 'probe_failed', provider: 'qwen'}),"
        " m.likenessWords({ready: false, likeness: 0.9, threshold: 0.74})]",
    )
    assert said[0] == (
        "Not the sample's speaker. The offline voice is a stand-in, not a clone: it follows the sample's pitch and pace"
        " in a voice of its own."
    )
    assert said[1] == "Sounds like the sample's speaker."
    assert said[2] == "How close it sounds was not measured: the provider could not speak the test sentence."
    assert said[3] == ""
    assert "hibari" not in " ".join(said), "the page does not name the engine's parts"


def test_a_refused_launch_is_said_in_words_never_by_its_codes() -> None:
    said = run(
        "words.js",
        "[m.launchBlockedWords(['no_voice']), m.launchBlockedWords(['clone_not_ready', 'preview_required']),"
        " m.launchBlockedWords(['something_new']), m.launchBlockedWords([])]",
    )
    assert said == [
        "Not ready to launch yet. No voice yet: record or choose a sample to clone it from.",
        "Not ready to launch yet. The voice is not cloned yet. Listen to the preview and confirm it sounds right.",
        "Not ready to launch yet. The voice is not ready yet.",
        "Not ready to launch yet.",
    ]
    assert not any("_" in words for words in said)


def test_a_new_name_is_the_files_and_one_already_taken_gets_a_number() -> None:
    said = run(
        "words.js",
        "[m.nameFromFile('Porch light.wav'), m.nameFromFile('recording.webm'), m.nameFromFile('take.2.flac'),"
        " m.unusedName('Garden', ['Porch']), m.unusedName('Garden', ['garden ', 'Garden (2)', null]),"
        " m.unusedName('Recording', ['Recording', 'Recording (2)', 'Recording (3)'])]",
    )
    assert said == ["Porch light", "Recording", "take.2", "Garden", "Garden (3)", "Recording (4)"]


def test_a_failed_job_is_said_in_a_sentence_never_its_bare_code() -> None:
    said = run(
        "words.js",
        "[m.jobFailureWords({code: 'inference_failed', message: 'inference failed: the provider refused the text'}),"
        " m.jobFailureWords({code: 'voice_lost', message: 'The voice is gone at its provider.'}),"
        " m.jobFailureWords({code: 'inference_failed'}), m.jobFailureWords(null)]",
    )
    assert said[:2] == [
        "Speaking failed: the provider refused the text.",
        "Speaking failed: the voice is gone at its provider.",
    ]
    assert said[2] == said[3] == "Speaking failed, and voicegate kept no reason. Try again, or use another voice."


def test_a_deleted_voice_is_a_launch_reason_in_words() -> None:
    said = run("words.js", "m.launchBlockedWords(['voice_deleted'])")
    assert said == "Not ready to launch yet. The voice was deleted: record or choose a sample to clone a new one."


def test_the_likeness_says_what_the_stock_voice_scored_so_what_the_clone_added_shows() -> None:
    # Issue 56: an offline voice at 0.76 read as a clone, where the bundled voice alone scored 0.71.
    said = run(
        "words.js",
        "[m.likenessWords({ready: true, likeness: 0.76, threshold: 0.74, provider: 'local', baseline: 0.71}),"
        " m.likenessWords({ready: true, likeness: 0.86, threshold: 0.74, provider: 'elevenlabs', baseline: 0.52}),"
        " m.likenessWords({ready: true, likeness: 0.86, threshold: 0.74, provider: 'qwen', baseline: null})]",
    )
    assert said[0].startswith("Sounds like the sample's speaker. The offline voice is a stand-in")
    assert said[1] == "Sounds like the sample's speaker."
    assert said[2] == "Sounds like the sample's speaker."
    numbers = run(
        "words.js",
        "[m.likenessNumbers({ready: true, likeness: 0.76, threshold: 0.74, provider: 'local', baseline: 0.71}),"
        " m.likenessNumbers({ready: true, likeness: 0.86, threshold: 0.74, provider: 'elevenlabs', baseline: 0.52}),"
        " m.likenessNumbers({ready: true, likeness: 0.86, threshold: 0.74, provider: 'qwen', baseline: null}),"
        " m.likenessNumbers({ready: true, error: 'probe_failed', provider: 'qwen'})]",
    )
    assert numbers == [
        "Likeness 0.76; the same speaker from 0.74; before it was adapted: 0.71.",
        "Likeness 0.86; the same speaker from 0.74; a stock voice: 0.52.",
        "Likeness 0.86; the same speaker from 0.74.",
        "",
    ]


def test_the_likeness_is_said_in_words_before_its_numbers() -> None:
    # The quickstart's voice read "0.70 (before it was adapted: 0.57; same speaker from 0.74)", and another "0.91
    # (before it was adapted: 0.92)", with nothing to say what a visitor should make of either.
    said = run(
        "words.js",
        "[m.likenessWords({ready: true, likeness: 0.70, threshold: 0.74, provider: 'local', baseline: 0.57}),"
        " m.likenessWords({ready: true, likeness: 0.91, threshold: 0.74, provider: 'local', baseline: 0.92}),"
        " m.likenessWords({ready: true, likeness: 0.60, threshold: 0.74, provider: 'cartesia', baseline: 0.58})]",
    )
    assert said[0].startswith("Closer to the sample than the voice before it was adapted, but not yet its speaker.")
    assert said[1].startswith("Sounds like the sample's speaker, as the voice before it was adapted already did.")
    assert said[2] == "No closer to the sample than a stock voice: not its speaker."
    assert not any(char.isdigit() for char in "".join(said)), "the numbers are behind a toggle"


def test_each_piece_of_advice_says_what_to_do() -> None:
    advice = [
        "too quiet",
        "background noise",
        "clipping",
        "mostly silence",
        "low sample rate",
        "too short for best results",
        "something new",
    ]
    said = run("words.js", f"{json.dumps(advice)}.map(m.adviceWords)")
    assert said[-1] == "something new", "advice the page does not know is said as it comes"
    for words, short in zip(said[:-1], advice[:-1], strict=True):
        assert words != short
        assert ":" in words, f"{short!r} says what it is, then what to do: {words!r}"


def test_waits_and_a_cut_stream_are_said_in_hours_and_minutes() -> None:
    said = run("words.js", "[42, 60, 61, 3600, 66616].map(m.durationWords)")
    assert said == ["42 s", "1 min", "2 min", "1 h", "18 h 31 min"]
    cut = run(
        "reflection.js",
        """[m.quotaCutWords('1/4', '"characters";r=0;t=66616'), m.quotaCutWords(null, null)]""",
    )
    assert cut == [
        "Your quota left room for 1 of its 4 sentences: the rest was not spoken. It resets in 18 h 31 min.",
        None,
    ]


@pytest.mark.parametrize(
    ("code", "retry_after", "lasting"),
    [
        ("quota_exceeded", 66400, True),
        ("jobs_limited", 90, True),
        ("jobs_limited", 5, False),
        ("streams_limited", 2, False),
    ],
)
def test_a_refusal_waiting_cannot_cure_is_not_retried_and_one_it_can_is(
    code: str, retry_after: int, lasting: bool
) -> None:
    detail = "12 characters would pass your quota of 40 per 24 h (0 left); it resets in 18 h 27 min."
    problem = {"code": code, "detail": detail, "status": 429}
    said = run(
        "api.js",
        f"(() => {{ const e = new m.ApiError(m.describe(429, {json.dumps(problem)}, {retry_after}),"
        f" {{status: 429, code: {json.dumps(code)}, retryAfter: {retry_after}, problem: {json.dumps(problem)}}});"
        " return [m.lasting(e), m.passing(e), e.message]; })()",
    )
    assert said[0] is lasting
    assert said[1] is (not lasting), "a lasting refusal offers no Try again"
    if lasting:
        assert said[2] == detail, "said in the server's own words"


def test_a_rejected_reading_is_said_in_the_language_of_its_phrase() -> None:
    reasons = ["phrase_mismatch", "too_short", "not_speech", "expired", "too_noisy", "synthetic_speech"]
    said = run(
        "words.js",
        "Object.fromEntries(['en', 'zh', 'es', 'de', 'fr', 'ja', 'pt', 'it', 'nl'].map((language) => [language,"
        f" {json.dumps(reasons)}.map((reason) => m.rejectionWords(reason, language))]))",
    )
    english = said.pop("en")
    # A language the page has no words in is said in English.
    assert said.pop("nl") == english
    for language, words in said.items():
        assert len(set(words)) == len(reasons), language
        assert not set(words) & set(english), language
    assert said["de"][0].startswith("Wir haben den Satz nicht")
    assert "四个数字" in said["zh"][0]
    assert "cuatro números" in said["es"][0]
    names = run("words.js", "m.LANGUAGE_NAMES")
    assert set(names) == {"en", "zh", "es", "de", "fr", "ja", "pt", "it"}
