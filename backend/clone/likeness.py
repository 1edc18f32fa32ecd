"""The likeness of a voice: how much what the provider speaks in the voice sounds like the samples
it was enrolled from, as the cosine between two voiceprints (`backend.voiceprint`), judged against the
published same-speaker threshold (`THRESHOLD`) and shown beside it.

* The samples' print: each sample the enrolment sent (the stored copy the provider got) gets its print (the one
  its check took of that copy, when it took one), and their mean, L2-normalised, is recorded on the attempt
  with the provider voice it made (`samples_print`, in the enrolment's own transaction), so nothing has to
  read the samples again.
* The voice's print: of a probe sentence (`PROBE_TEXT`) that the provider speaks in the new voice as the
  enrolment ends, in the clone step before the attempt is made ready (`probe`, whose judgement the step's
  completion records with the move to `ready`, in the same statement); with VOICEGATE_LIKENESS_PROBE=off, of
  its first preview or render instead (`judge_render`), no extra provider call.

A likeness is kept per attempt, once (`record_likeness`, and the completion likewise: the first judgement of
the attempt's provider voice stands, so a step repeated after a crash changes nothing); a re-enrolment is a
new attempt and is judged again. It never fails a voice: when the probe cannot be spoken, holds no speech, or
the attempt has no samples' print, the likeness stays null with a reason (`likeness_error`), and that is
logged.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from backend.audio.decode import decode_audio
from backend.audio.errors import AudioRejected
from backend.clone.types import LikenessSource, NoLikeness
from backend.context import WorkerContext
from backend.cpu import long_calls
from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.domain.attempts import AttemptRow
from backend.errors import QuotaExceeded, VoiceprintUnavailable
from backend.policy.speaker import enrolled_voice
from backend.providers.base import ProviderVoice, primary_language
from backend.providers.errors import ProviderError
from backend.providers.local.hibari_voice import HibariVoice
from backend.usage import ledger
from backend.voiceprint import THRESHOLD, Voiceprint, stored_print, voiceprint

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: What the provider speaks to be judged, by the voice's language (its primary subtag): the first sentence of
#: "The North Wind and the Sun", the phoneticians' fable, each under 80 characters (a probe costs one short
#: render at a provider that charges by the character). A voice in a language not here is judged on its first
#: preview or render instead, as with VOICEGATE_LIKENESS_PROBE=off: a voice is never made to speak a language
#: that is not its own.
PROBE_TEXTS: Final = {
    "en": "The north wind and the sun were disputing which was the stronger.",
    "de": "Der Nordwind und die Sonne stritten sich, wer von ihnen der Stärkere wäre.",
    "es": "El viento norte y el sol discutían sobre cuál de ellos era el más fuerte.",
    "fr": "La bise et le soleil se disputaient, chacun assurant qu'il était le plus fort.",
    "it": "Il vento di tramontana e il sole si contendevano il primato della forza.",
    "pt": "O vento norte e o sol discutiam qual dos dois era o mais forte.",
    "ja": "北風と太陽が、どちらが強いかで言い争っていました。",
    "zh": "北风和太阳正在争论谁的本领更大。",
}
PROBE_TEXT: Final = PROBE_TEXTS["en"]


def probe_text(language: str | None) -> str | None:
    """The probe sentence for a voice in `language` (a BCP 47 tag; none means English), or None when there is
    none in that language."""
    primary = (language or "en").split("-", 1)[0].lower()
    return PROBE_TEXTS.get(primary)


def samples_print(recordings: Sequence[bytes], prints: Sequence[bytes | None] = ()) -> Voiceprint | None:
    """The mean voiceprint of ``recordings`` (audio files voicegate can decode), L2-normalised: None when none
    holds enough speech for one. ``prints``, where given and not None, is the recording's voiceprint as already
    taken (`Voiceprint.to_bytes`, the sample check's): it is not taken again. CPU work for the fair executor;
    raises `AudioRejected` on a file that does not decode and `VoiceprintUnavailable` without the encoder's
    weights."""
    known = list(prints) + [None] * (len(recordings) - len(prints))
    vectors = []
    for data, taken in zip(recordings, known, strict=True):
        if (made := stored_print(taken)) is not None:
            vectors.append(made.vector)
            continue
        decoded = decode_audio(data)
        found = voiceprint(decoded.samples, decoded.sample_rate)
        if found is not None:
            vectors.append(found.vector)
    if not vectors:
        return None
    mean = np.mean(vectors, axis=0)
    return Voiceprint(mean / np.linalg.norm(mean))


@functools.cache
def stock_print() -> Voiceprint | None:
    """The print of the bundled `local` voice as it ships (hibari's `heart`, unadapted) speaking the English probe
    sentence: made once per process (one short render), the same every time. CPU work."""
    voice = HibariVoice.shared()
    return voiceprint(voice.speak(PROBE_TEXT), voice.sample_rate)


def stock_likeness(samples: Voiceprint, language: str | None) -> float | None:
    """What the stock voice (`stock_print`) scores against `samples`, rounded as a likeness: a voice that is not the
    speaker's, and for the `local` engine its voice before it was adapted to them. None for a voice that is not
    English (the stock voice speaks English only). CPU work."""
    if primary_language(language or "en") != "en":  # a voice with no language named is English
        return None
    stock = stock_print()
    return None if stock is None else round(samples.similarity(stock), 3)


def similarity(samples: Voiceprint, spoken: Sequence[bytes]) -> float | None:
    """The cosine between ``samples`` and the print of ``spoken`` (what a provider spoke: audio files, the pieces
    of one render), rounded to 3 places; None when it holds too little speech. CPU work, raising as
    `samples_print`."""
    found = samples_print(spoken)
    return None if found is None else round(samples.similarity(found), 3)


async def measure_samples(
    ctx: WorkerContext, attempt: AttemptRow, recordings: Sequence[bytes], prints: Sequence[bytes | None] = ()
) -> bytes | None:
    """The samples' print (`samples_print`, with the `prints` their checks took) on the fair CPU executor, as
    stored. One that cannot be made is logged and None: the likeness then says `no_sample`, and the voice goes
    on."""
    try:
        with long_calls(queued=True):  # a voiceprint of every sample whose check took none: seconds of CPU in one call
            found = await ctx.cpu.run(attempt.owner_id, samples_print, recordings, prints)
    except (AudioRejected, VoiceprintUnavailable, ValueError):
        log.exception("attempt %s: no voiceprint of its samples", attempt.id)
        return None
    return None if found is None else found.to_bytes()


async def record_samples_print(conn: Connection, attempt_id: uuid.UUID, data: bytes | None) -> None:
    """Record `measure_samples`'s print on the attempt, on `conn` (the transaction recording its provider voice)."""
    if data is not None:
        await conn.execute(_Q["record_sample_print"], {"attempt_id": attempt_id, "print": data})


class _Judged(msgspec.Struct, frozen=True):
    """Which attempt is judged, for which of its provider voices, on whose share of the CPU, and the language its
    voice was enrolled in."""

    attempt_id: uuid.UUID
    owner_id: uuid.UUID
    provider_voice_id: str
    language: str | None


class ProbeInputs(msgspec.Struct, frozen=True):
    """What the probe reads of an attempt: the language its voice was enrolled in (its first sample's, else the
    voice's) and its samples' print, if it has one."""

    language: str | None
    samples_print: bytes | None


def leased_probe_inputs(leased: dict[str, Any]) -> ProbeInputs | None:
    """The probe's inputs as the clone queue's leasing read handed them with the attempt it leased (None when it
    did not): `probe` needs no read of its own then, unless the run records a new print meanwhile."""
    found = leased.get("likeness_probe")
    if found is None:
        return None
    hex_print: str | None = found["samples_print"]
    return ProbeInputs(found["language"], None if hex_print is None else bytes.fromhex(hex_print))


async def probe(ctx: WorkerContext, attempt: AttemptRow, inputs: ProbeInputs | None = None) -> dict[str, Any] | None:
    """Judge the attempt's provider voice on its language's probe sentence (`PROBE_TEXTS`) spoken by its
    provider: the judgement as changes of the attempt (`judgement`), which the clone step's completion records
    (`attempts.complete`), so the voice is published with it. A provider that cannot speak it gives a null
    likeness with `probe_failed` (logged); the voice goes on. None for a voice in a language without a probe
    sentence: it is left to its first preview or render. `inputs`: the attempt's `ProbeInputs` as committed
    (else they are read here)."""
    voice = enrolled_voice(attempt)
    if voice is None:
        return None
    if inputs is None:
        async with ctx.db.service_statement() as conn:
            row = await fetch_optional(conn, _Q["sample_print"], {"attempt_id": attempt.id})
        inputs = ProbeInputs(None, None) if row is None else ProbeInputs(row["language"], row["sample_voiceprint"])
    text = probe_text(inputs.language)
    if text is None:
        return None
    data = inputs.samples_print
    if data is None:
        return judgement(LikenessSource.PROBE, error=NoLikeness.NO_SAMPLE)
    samples = Voiceprint.from_bytes(data)
    call = ledger.Call(
        owner_id=attempt.owner_id,
        provider=attempt.provider,
        model=voice.target_model,
        kind=ledger.UsageKind.PROBE,
        work_id=attempt.id,
        call_key=uuid.uuid4().hex,
        characters=len(text),
    )
    try:
        # Committed before the call, as every call that sends text is (`backend.usage.charge`).
        async with ctx.db.service_transaction() as conn:
            await ctx.ledger.reserve(conn, call)
        provider = ctx.providers.get(attempt.provider, owner=attempt.owner_id)
        async with ctx.ledger.charge(call) as charge:
            spoken = await provider.synthesize(voice, text, meter=charge)
    except QuotaExceeded:
        log.info("attempt %s: the likeness probe would pass its owner's quota: likeness left null", attempt.id)
        return judgement(LikenessSource.PROBE, error=NoLikeness.PROBE_FAILED)
    except ProviderError as exc:
        log.warning("attempt %s: the likeness probe was not spoken (%s): likeness left null", attempt.id, exc)
        return judgement(LikenessSource.PROBE, error=NoLikeness.PROBE_FAILED)
    return await _judge(
        ctx,
        _Judged(attempt.id, attempt.owner_id, voice.voice_id, inputs.language),
        samples,
        [spoken.audio],
        LikenessSource.PROBE,
    )


def judgement(
    source: LikenessSource,
    *,
    score: float | None = None,
    error: NoLikeness | None = None,
    baseline: float | None = None,
) -> dict[str, Any]:
    """A likeness judged on `source` (`score`, or why there is none; the stock voice's `baseline`) as the
    attempt's columns name it."""
    return {
        "likeness": score,
        "likeness_threshold": THRESHOLD,
        "likeness_source": source,
        "likeness_error": error,
        "likeness_baseline": baseline,
    }


async def judge_render(
    ctx: WorkerContext,
    *,
    owner_id: uuid.UUID,
    voice_id: uuid.UUID,
    voice: ProviderVoice,
    spoken: Sequence[bytes],
    source: LikenessSource,
) -> None:
    """Judge the attempt that made `voice` (the voice's current provider voice) on `spoken`, a preview or render as
    its provider spoke it (before the watermark, which is voicegate's, not the voice's), unless it was judged
    already: with VOICEGATE_LIKENESS_PROBE=off, or a voice in a language without a probe sentence."""
    async with ctx.db.service_transaction() as conn:
        params = {"voice_id": voice_id, "provider": voice.provider, "provider_voice_id": voice.voice_id}
        found = await fetch_optional(conn, _Q["unjudged_for_render"], params)
    if found is None:
        return
    judged = _Judged(found["id"], owner_id, voice.voice_id, found["language"])
    data: bytes | None = found["sample_voiceprint"]
    if data is None:
        verdict = judgement(source, error=NoLikeness.NO_SAMPLE)
    else:
        verdict = await _judge(ctx, judged, Voiceprint.from_bytes(data), spoken, source)
    params = {"attempt_id": judged.attempt_id, "provider_voice_id": judged.provider_voice_id, **verdict}
    async with ctx.db.service_statement() as conn:
        await fetch_optional(conn, _Q["record_likeness"], params)


async def _judge(
    ctx: WorkerContext, judged: _Judged, samples: Voiceprint, spoken: Sequence[bytes], source: LikenessSource
) -> dict[str, Any]:
    """The `judgement` of what the provider spoke against the samples' print, with the stock voice's beside it."""
    try:
        with long_calls(
            queued=True
        ):  # voiceprints of what was spoken and of the stock voice: seconds of CPU in one call
            score, baseline = await ctx.cpu.run(judged.owner_id, _scores, samples, spoken, judged.language)
    except (AudioRejected, VoiceprintUnavailable, ValueError):
        log.exception("attempt %s: no voiceprint of what its provider spoke", judged.attempt_id)
        score, baseline = None, None
    if score is None:
        log.warning("attempt %s: no likeness, what the provider spoke holds too little speech", judged.attempt_id)
        return judgement(source, error=NoLikeness.NO_SPEECH)
    log.info(
        "attempt %s: likeness %.3f (%s; the stock voice %s; same speaker from %.2f)",
        judged.attempt_id,
        score,
        source,
        "-" if baseline is None else f"{baseline:.3f}",
        THRESHOLD,
    )
    return judgement(source, score=score, baseline=baseline)


def _scores(samples: Voiceprint, spoken: Sequence[bytes], language: str | None) -> tuple[float | None, float | None]:
    """`similarity` of what was spoken, and `stock_likeness` (CPU work)."""
    return similarity(samples, spoken), stock_likeness(samples, language)


async def forget_judged_prints(conn: Connection, *, limit: int) -> int:
    """Erase the samples' voiceprint of up to `limit` attempts that need it no more (their likeness judged, or they
    ended without being ready): biometric data is kept no longer than its use. How many were erased."""
    erased = await conn.execute(_Q["forget_judged_prints"], {"limit": limit})
    return erased.rowcount
