"""The one exception hierarchy. `backend.http.pipeline.problem` maps it to RFC 9457 problem+json in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class VoicegateError(Exception):
    """Something went wrong in voicegate.

    A subclass names its stable `code` and, where it differs from its parent's, its HTTP `status` as class
    keywords: `class NotFound(ClientError, status=404, code="not_found")`.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, *, code: str, status: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = code
        if status is not None:
            cls.status = status

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)

    def extensions(self) -> dict[str, object]:
        """Extra RFC 9457 members this error adds to its problem body."""
        return {}


class ClientError(VoicegateError, status=400, code="bad_request"):
    """The request cannot be served as sent."""


class ValidationFailed(ClientError, code="validation_failed"):
    """The request body or parameters are invalid."""


class InvalidJson(ClientError, code="invalid_json"):
    """The body is not JSON this server reads: not UTF-8, malformed, or nested too deeply."""


class InvalidHost(ClientError, code="invalid_host"):
    """The Host header is not a host name or address with an optional port."""


class AmbiguousFraming(ClientError, code="ambiguous_framing"):
    """Both Content-Length and Transfer-Encoding, or two lengths: refused, and the connection closed."""


class BodyTooSlow(ClientError, status=408, code="body_too_slow"):
    """The request body arrived too slowly (VOICEGATE_BODY_MIN_RATE); the connection is closed."""


class ClientGone(ClientError, status=499, code="client_gone"):
    """The client closed its connection before its request's body had arrived; nothing was answered."""


class Unauthorized(ClientError, status=401, code="unauthorized"):
    """A valid access token is required."""


class AccountGone(Unauthorized, code="unauthorized"):
    """The account this token was issued for no longer exists."""


class Forbidden(ClientError, status=403, code="forbidden"):
    """You may not do this."""


class NotFound(ClientError, status=404, code="not_found"):
    """The resource does not exist."""


class Conflict(ClientError, status=409, code="conflict"):
    """The resource is not in a state that allows this."""


class StaleVersion(Conflict, code="stale_version"):
    """The resource changed since it was read; read it again."""


class LeaseLost(Conflict, code="lease_lost"):
    """This worker no longer holds the attempt's lease."""


class IllegalTransition(Conflict, code="illegal_transition"):
    """That state change is not allowed from the current state."""


class PayloadTooLarge(ClientError, status=413, code="payload_too_large"):
    """The upload is larger than allowed."""


class BodyTooLarge(PayloadTooLarge, code="body_too_large"):
    """The JSON body is larger than this route takes."""


class UnsupportedMediaType(ClientError, status=415, code="unsupported_media_type"):
    """The upload is not a supported audio format."""


class JsonRequired(UnsupportedMediaType, code="json_required"):
    """The body must be JSON: send it with `Content-Type: application/json`."""


class _AsksToWait(Exception):
    """What a refusal that says when to ask again (`Retry-After`) adds to its error: the seconds."""

    #: Seconds until a retry may succeed (`Retry-After`): the class's, unless the refusal knows better.
    retry_after: int = 1

    def __init__(
        self, detail: str | None = None, *, retry_after: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        if retry_after is not None:
            self.retry_after = retry_after
        #: Response headers the refusal adds besides `Retry-After` (a quota's `RateLimit` fields).
        self.headers = headers or {}


class TooManyRequests(_AsksToWait, ClientError, status=429, code="too_many_requests"):
    """Too many requests at once; retry after `Retry-After` seconds."""


class ConcurrencyLimited(TooManyRequests, code="concurrency_limited"):
    """You have too many requests in flight at once; retry after `Retry-After` seconds."""


class StreamsLimited(TooManyRequests, code="streams_limited"):
    """You have too many speech streams open at once; let one end, or retry after `Retry-After` seconds."""


class ServerBusy(TooManyRequests, code="server_busy"):
    """Busy with other requests; retry after `Retry-After` seconds."""


class CreatesLimited(TooManyRequests, code="creates_limited"):
    """You have created too many of these lately; retry after `Retry-After` seconds."""


class OpenConsentsLimited(TooManyRequests, code="open_consents_limited"):
    """Too many of your spoken consents await their recording: record one, or retry once the oldest lapses."""


class DraftVoicesLimited(TooManyRequests, code="draft_voices_limited"):
    """You have too many draft voices: finalize one (POST /api/clone/finalize) or delete one first."""

    # A draft never lapses: waiting frees nothing, so a client is not asked back sooner than its owner could act.
    retry_after = 60


class QuotaExceeded(TooManyRequests, code="quota_exceeded"):
    """You have used your characters for this window; retry after `Retry-After` seconds, when it resets."""


class JobsLimited(TooManyRequests, code="jobs_limited"):
    """You have too many synthesis jobs queued or running; retry once one has ended."""

    # A job takes seconds: a client asked back sooner would only be refused again.
    retry_after = 5


class ServiceUnavailable(_AsksToWait, VoicegateError, status=503, code="service_unavailable"):
    """A dependency is unreachable; retry shortly."""

    retry_after = 2


class BacklogFull(ServiceUnavailable, code="backlog_full"):
    """More work is waiting to be checked than this server takes on; retry after `Retry-After` seconds."""


class DatabaseUnavailable(ServiceUnavailable, code="database_unavailable"):
    """The database is unreachable; retry shortly."""


class StorageUnavailable(ServiceUnavailable, code="storage_unavailable"):
    """Object storage is unreachable; retry shortly."""


class ConsentRequired(ValidationFailed, code="consent_required"):
    """consent required: a voice sample can only be stored with the speaker's consent (consent=true)."""


class ConsentRecordingRequired(ClientError, status=422, code="consent_recording_required"):
    """Samples are taken only under a verified spoken consent here: record one and send its `consentId`."""


class ConsentNotVerified(ClientError, status=422, code="consent_not_verified"):
    """The consent has no verified recording of its phrase: record it (POST /api/v1/consents/{id}/recording)."""


class ConsentExpired(ClientError, status=422, code="consent_expired"):
    """The consent can no longer be used: its phrase was not recorded in time, or its evidence was purged."""


class ConsentPhraseSpoken(ClientError, status=422, code="consent_phrase"):
    """voicegate does not speak consent phrases: this text reads as one (or as one of yours). Speak other words."""


class SampleNotUploaded(ClientError, status=422, code="sample_not_uploaded"):
    """No sample was uploaded for this voice; PUT the file to the signed upload URL first."""


class SampleTooLarge(PayloadTooLarge, code="sample_too_large"):
    """The sample is larger than allowed."""


class UnsupportedAudio(UnsupportedMediaType, code="unsupported_audio_format"):
    """unsupported audio format: the file is not WAV, MP3, FLAC, OGG/Opus, WebM/Opus or M4A/AAC."""


class ProviderNotConfigured(ClientError, status=422, code="provider_not_configured"):
    """That voice provider is not configured on this server."""


class InvalidIdempotencyKey(ClientError, code="invalid_idempotency_key"):
    """Idempotency-Key must be 1 to 255 printable ASCII characters."""


class IdempotencyKeyReused(ClientError, status=422, code="idempotency_key_reused"):
    """This Idempotency-Key was used with a different request; send a new key for a new request."""


class LaunchBlocked(Conflict, code="launch_blocked"):
    """The reflection's voice is not ready to launch."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"The voice is not ready to launch: {', '.join(reasons)}.")
        self.reasons = reasons

    def extensions(self) -> dict[str, object]:
        """Clients show each reason; see `voice_launch_readiness`."""
        return {"blockingReasons": self.reasons}


class IdempotencyKeyInFlight(Conflict, code="idempotency_key_in_flight"):
    """A request with this Idempotency-Key is still being processed; retry once it has finished."""


class ProviderVoiceNotFound(ClientError, status=422, code="provider_voice_not_found"):
    """The voice provider does not know this voice id."""


class ProviderVoiceTaken(Conflict, code="provider_voice_taken"):
    """This provider voice is attached to another voice; it can only be used by its owner."""


class ProviderRejected(ClientError, status=422, code="provider_rejected"):
    """The voice provider refused the request."""


class ProviderUnavailable(ServiceUnavailable, code="provider_unavailable"):
    """The voice provider is unreachable or overloaded; retry shortly."""

    retry_after = 5


class LanguageNotSupported(ClientError, status=422, code="language_not_supported"):
    """The voice provider cannot speak this language, or read the letters of this text."""

    def __init__(
        self, detail: str | None = None, *, provider: str | None = None, languages: Sequence[str] = ()
    ) -> None:
        super().__init__(detail)
        self.provider = provider
        self.languages = list(languages)

    def extensions(self) -> dict[str, object]:
        """`provider` and the `languages` it speaks (language tags such as `en`), when known."""
        return {} if self.provider is None else {"provider": self.provider, "languages": self.languages}


class SampleRejected(ClientError, status=422, code="sample_rejected"):
    """The sample was refused when it was checked; upload a new one."""


class SampleNotReady(Conflict, code="sample_not_ready"):
    """The sample is still being checked, or was refused; a voice is made from ready samples only."""


class ReadingRequired(Conflict, code="reading_required"):
    """Before this sample is used, its speaker reads a short phrase aloud (POST /api/v1/voice-samples/{id}/reading)."""


class SamplesMixed(ClientError, status=422, code="samples_mixed_providers"):
    """The samples were checked for different providers; one voice is made at one provider."""


class MixedSpeakers(ClientError, status=422, code="mixed_speakers"):
    """The samples are not all of one speaker; one voice is made from one person's samples."""


class VoiceNameTaken(Conflict, code="voice_name_taken"):
    """You have a voice of that name already (names are compared without case or outer spaces); choose another."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(None if name is None else f"You have a voice named “{name}” already: choose another name.")


class VoiceNotReady(Conflict, code="voice_not_ready"):
    """The voice has not been cloned; clone it from a sample first."""


class SynthesisNotFinished(Conflict, code="synthesis_not_finished"):
    """The job has not finished yet; poll its status."""


class SynthesisFailed(Conflict, code="synthesis_failed"):
    """The job failed; its status says why."""


class SynthesisEnded(Conflict, code="synthesis_ended"):
    """The job has already ended; there is nothing to cancel."""


class StoredObjectAltered(Conflict, code="stored_object_altered"):
    """A file voicegate stored has changed since voicegate wrote it, so it is not used or served."""


class WebhookUrlRefused(ClientError, status=422, code="webhook_url_refused"):
    """Webhooks cannot be delivered to this URL."""


class ProvenanceFailed(VoicegateError, code="provenance_failed"):
    """The audio could not be signed with its C2PA manifest, so it was not stored."""


class ProvenanceUnreadable(ClientError, status=422, code="provenance_unreadable"):
    """The file cannot be read as WAV or MP3 audio, so its C2PA manifest cannot be checked."""


class VoiceprintUnavailable(VoicegateError, code="voiceprint_unavailable"):
    """The speaker encoder's weights cannot be read on this server, so no voiceprint can be made."""


class WatermarkUnavailable(VoicegateError, code="watermark_unavailable"):
    """The watermark's weights cannot be read on this server, so audio can be neither marked nor checked."""


class WorkPutOff(Exception):
    """Queued work that cannot start here now through no fault of its own (the webhook consumer's slots for a
    user whose receivers hang are in use): the consumer makes its message visible again after `seconds`, and
    the delivery counts toward nothing. Not an HTTP error: it never reaches a client."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.seconds = seconds


class WorkFailed(Exception):
    """One try at queued work failed for a reason its message states in full (a receiver's HTTP status, a
    refused connection): the consumer retries it like any failure and logs that one line, no traceback.
    Not an HTTP error: it never reaches a client."""


class SettingsError(ValueError):
    """The environment does not describe a runnable voicegate; the message says which variable."""
