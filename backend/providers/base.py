"""The adapter interface every voice provider implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from backend.providers.errors import PermanentProviderError, UnsupportedLanguageError

#: What ``VoiceProvider.stream`` yields: 16-bit little-endian mono PCM at this rate. Every provider streams it
#: natively (ElevenLabs ``pcm_24000``, Cartesia raw ``pcm_s16le``, DashScope's SSE chunks, OpenAI-shaped
#: servers' ``pcm``); the speech routes build WAV and MP3 from it.
STREAM_SAMPLE_RATE: Final = 24000

#: Below this speech-to-noise ratio (dB) a sample has background noise: the quality report advises "background
#: noise" (its verdict drops from good), and an adapter whose provider can take noise out of a sample asks for
#: that, since a clone copies the noise it hears. At or above it the report calls the sample clean, and a
#: denoiser run on a clean sample only costs the voice detail (the ElevenLabs SDK warns of exactly that).
BACKGROUND_NOISE_SNR_DB: Final = 25.0


class SampleRef(msgspec.Struct, frozen=True, kw_only=True):
    """One prepared reference sample, ready to send.

    ``public_url`` is a short-lived URL the provider can fetch without credentials (Qwen prefers it);
    adapters that upload the bytes ignore it. ``duration_s``, ``sample_rate`` and ``channels`` come from
    the audio pipeline's measurement and let the rules be checked before a provider call is spent.
    ``snr_db`` is the quality report's speech-to-noise ratio (None when it could not be measured).
    ``consent_id`` names the speaker's consent record, for providers that ask which consent covers a voice.
    """

    data: bytes
    mime_type: str
    filename: str = "sample.wav"
    public_url: str | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    snr_db: float | None = None
    consent_id: str | None = None

    @property
    def noisy(self) -> bool:
        """Whether the sample was measured to have background noise (an unmeasured one is not)."""
        return self.snr_db is not None and self.snr_db < BACKGROUND_NOISE_SNR_DB


class SampleRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider accepts as reference audio; ``None`` means the provider documents no limit."""

    formats: frozenset[str]
    min_duration_s: float
    max_duration_s: float | None
    recommended_duration_s: tuple[float, float]
    min_sample_rate: int | None
    preferred_sample_rate: int
    max_bytes: int | None
    max_files: int
    mono: bool
    languages: frozenset[str] | None = None

    def violations(self, samples: Sequence[SampleRef], language: str | None = None) -> list[str]:
        """Return user-safe descriptions of every rule the samples break (empty when all fit)."""
        problems: list[str] = []
        if not samples:
            problems.append("at least one sample is required")
        if len(samples) > self.max_files:
            problems.append(f"at most {self.max_files} sample(s) can be sent")
        for sample in samples:
            problems.extend(self._sample_violations(sample))
        if self.languages is not None and not self.speaks(language):
            problems.append(f"language {language!r} is not supported (only {', '.join(sorted(self.languages))})")
        return problems

    def speaks(self, language: str | None) -> bool:
        """Whether a voice in ``language`` (a BCP 47 tag, any region: ``en-GB`` is ``en``) can be made; a
        sample with no language named always can."""
        return language is None or self.languages is None or primary_language(language) in self.languages

    def language_refusal(self, provider: str, language: str | None) -> UnsupportedLanguageError | None:
        """Why ``provider`` cannot make a voice in ``language``, naming the languages it speaks; None if it can."""
        if self.languages is None or self.speaks(language):
            return None
        return UnsupportedLanguageError.naming(provider, f"Language {language!r} is not supported", self.languages)

    def _sample_violations(self, sample: SampleRef) -> list[str]:
        problems: list[str] = []
        if sample.mime_type not in self.formats:
            problems.append("unsupported audio format")
        if self.max_bytes is not None and len(sample.data) > self.max_bytes:
            problems.append(f"sample too large (max {self.max_bytes // (1024 * 1024)} MB)")
        if sample.duration_s is not None:
            if sample.duration_s < self.min_duration_s:
                problems.append("sample too short")
            if self.max_duration_s is not None and sample.duration_s > self.max_duration_s:
                problems.append(f"sample too long (max {self.max_duration_s:g} s)")
        if (
            sample.sample_rate is not None
            and self.min_sample_rate is not None
            and sample.sample_rate < self.min_sample_rate
        ):
            problems.append(f"sample rate too low (min {self.min_sample_rate} Hz)")
        if self.mono and sample.channels is not None and sample.channels != 1:
            problems.append("sample must be mono")
        return problems

    def check(self, provider: str, samples: Sequence[SampleRef], language: str | None = None) -> None:
        """Raise a permanent error naming every broken rule, before any provider call is made."""
        if problems := self.violations(samples, language):
            raise PermanentProviderError(provider, "; ".join(problems), provider_code="sample_rules", http_status=None)


def primary_language(language: str) -> str:
    """Reduce a BCP 47 tag such as ``en-US`` to the lower-case primary subtag ``en``."""
    return language.replace("_", "-").split("-", 1)[0].lower()


class ProviderVoice(msgspec.Struct, frozen=True, kw_only=True):
    """A voice as a provider reports it; ``metadata`` is JSON-able and meant for persistence."""

    provider: str
    voice_id: str
    name: str | None = None
    target_model: str | None = None
    enrolment_key: str | None = None
    request_id: str | None = None
    language: str | None = None
    created_at: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


def stored_voice(
    provider: str | None,
    voice_id: str | None,
    target_model: str | None = None,
    metadata: dict[str, Any] | None = None,
    language: str | None = None,
) -> ProviderVoice | None:
    """The provider voice a row keeps in its columns (an attempt's, a voice's, a job's), None when it keeps none:
    the one way a stored voice becomes a `ProviderVoice` again."""
    if provider is None or voice_id is None:
        return None
    return ProviderVoice(
        provider=provider, voice_id=voice_id, target_model=target_model, language=language, metadata=metadata or {}
    )


class SendMeter(Protocol):
    """What charges a call's text send by send (`backend.usage.charge.Charge`): every request that carries the text to
    the provider, resends included, is announced before it is made, and a request that never left this process is
    taken back."""

    async def before_send(self) -> None:
        """Called before each send of the text; raises (QuotaExceeded, DatabaseUnavailable, ...) to stop it unsent."""
        ...

    def not_sent(self) -> None:
        """The send announced last never reached the provider (no connection, no slot)."""
        ...


class SynthesisResult(msgspec.Struct, frozen=True, kw_only=True):
    """Audio produced for a text."""

    audio: bytes
    mime_type: str
    sample_rate: int | None = None
    request_id: str | None = None
    #: The provider's model that spoke, as the C2PA manifest of the stored file names it.
    model: str | None = None


@runtime_checkable
class VoiceProvider(Protocol):
    """One voice provider: enrol a voice from samples, look it up, use it, delete it."""

    name: str
    sample_rules: SampleRules

    async def enrol(
        self,
        samples: Sequence[SampleRef],
        *,
        name: str,
        language: str | None,
        transcript: str | None,
        key: str,
    ) -> ProviderVoice:
        """Create (or adopt, if ``key`` already made one) a voice; never creates two for one key."""
        ...

    async def find(self, key: str) -> ProviderVoice | None:
        """Return the voice created with enrolment ``key``, or ``None``."""
        ...

    async def get(self, voice_id: str) -> ProviderVoice:
        """Return one voice; raises ``VoiceNotFoundError`` when the provider does not know it."""
        ...

    async def list(self) -> Sequence[ProviderVoice]:
        """Return every voice this account owns at the provider."""
        ...

    async def delete(self, voice_id: str) -> None:
        """Delete a voice; raises ``VoiceNotFoundError`` when it is already gone."""
        ...

    async def synthesize(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> SynthesisResult:
        """Speak ``text`` in ``voice``; every send of ``text`` to the provider is announced to ``meter``."""
        ...

    def stream(self, voice: ProviderVoice, text: str, *, meter: SendMeter | None = None) -> AsyncGenerator[bytes, None]:
        """Speak ``text`` in ``voice`` as the provider makes it: ``STREAM_SAMPLE_RATE`` 16-bit little-endian
        mono PCM, in chunks of any size (a chunk may end inside a sample); every send of ``text`` to the provider is
        announced to ``meter``.

        Failures before the first chunk are the provider's classified errors, as for ``synthesize``.
        Closing the iterator early (``aclose``, or cancelling the task awaiting it) ends the provider
        request: the connection is closed, so the provider stops generating.
        """
        ...
