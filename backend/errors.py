"""The one exception hierarchy. `backend.problem` maps it to RFC 9457 problem+json in one place."""

from __future__ import annotations

from typing import ClassVar


class VoicegateError(Exception):
    """Something went wrong in voicegate."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)

    def extensions(self) -> dict[str, object]:
        """Extra RFC 9457 members this error adds to its problem body."""
        return {}


class ClientError(VoicegateError):
    """The request cannot be served as sent."""

    status = 400
    code = "bad_request"


class ValidationFailed(ClientError):
    """The request body or parameters are invalid."""

    status = 400
    code = "validation_failed"


class Unauthorized(ClientError):
    """A valid access token is required."""

    status = 401
    code = "unauthorized"


class Forbidden(ClientError):
    """You may not do this."""

    status = 403
    code = "forbidden"


class NotFound(ClientError):
    """The resource does not exist."""

    status = 404
    code = "not_found"


class Conflict(ClientError):
    """The resource is not in a state that allows this."""

    status = 409
    code = "conflict"


class StaleVersion(Conflict):
    """The resource changed since it was read; read it again."""

    code = "stale_version"


class LeaseLost(Conflict):
    """This worker no longer holds the attempt's lease."""

    code = "lease_lost"


class IllegalTransition(Conflict):
    """That state change is not allowed from the current state."""

    code = "illegal_transition"


class PayloadTooLarge(ClientError):
    """The upload is larger than allowed."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    """The upload is not a supported audio format."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(ClientError):
    """Too many requests at once; retry after `Retry-After` seconds."""

    status = 429
    code = "too_many_requests"
    retry_after: ClassVar[int] = 1


class ConcurrencyLimited(TooManyRequests):
    """You have too many requests in flight at once; retry after `Retry-After` seconds."""

    code = "concurrency_limited"


class ServerBusy(TooManyRequests):
    """Busy with other requests; retry after `Retry-After` seconds."""

    code = "server_busy"


class ServiceUnavailable(VoicegateError):
    """A dependency is unreachable; retry shortly."""

    status = 503
    code = "service_unavailable"
    retry_after: ClassVar[int] = 2


class DatabaseUnavailable(ServiceUnavailable):
    """The database is unreachable; retry shortly."""

    code = "database_unavailable"


class StorageUnavailable(ServiceUnavailable):
    """Object storage is unreachable; retry shortly."""

    code = "storage_unavailable"


class ConsentRequired(ValidationFailed):
    """consent required: a voice sample can only be stored with the speaker's consent (consent=true)."""

    code = "consent_required"


class SampleNotUploaded(ClientError):
    """No sample was uploaded for this voice; PUT the file to the signed upload URL first."""

    status = 422
    code = "sample_not_uploaded"


class SampleTooLarge(PayloadTooLarge):
    """The sample is larger than allowed."""

    code = "sample_too_large"


class UnsupportedAudio(UnsupportedMediaType):
    """unsupported audio format: the file is not WAV, MP3, FLAC, OGG/Opus, WebM/Opus or M4A/AAC."""

    code = "unsupported_audio_format"


class ProviderNotConfigured(ClientError):
    """That voice provider is not configured on this server."""

    status = 422
    code = "provider_not_configured"


class InvalidIdempotencyKey(ClientError):
    """Idempotency-Key must be 1 to 255 printable ASCII characters."""

    code = "invalid_idempotency_key"


class IdempotencyKeyReused(ClientError):
    """This Idempotency-Key was used with a different request; send a new key for a new request."""

    status = 422
    code = "idempotency_key_reused"


class IdempotencyKeyInFlight(Conflict):
    """A request with this Idempotency-Key is still being processed; retry once it has finished."""

    code = "idempotency_key_in_flight"


class ProviderVoiceNotFound(ClientError):
    """The voice provider does not know this voice id."""

    status = 422
    code = "provider_voice_not_found"


class ProviderVoiceTaken(Conflict):
    """This provider voice is attached to another voice; it can only be used by its owner."""

    code = "provider_voice_taken"


class ProviderRejected(ClientError):
    """The voice provider refused the request."""

    status = 422
    code = "provider_rejected"


class ProviderUnavailable(ServiceUnavailable):
    """The voice provider is unreachable or overloaded; retry shortly."""

    code = "provider_unavailable"
    retry_after = 5


class SampleRejected(ClientError):
    """The sample was refused when it was checked; upload a new one."""

    status = 422
    code = "sample_rejected"


class VoiceNotReady(Conflict):
    """The voice has not been cloned; clone it from a sample first."""

    code = "voice_not_ready"


class SynthesisNotFinished(Conflict):
    """The job has not finished yet; poll its status."""

    code = "synthesis_not_finished"


class SynthesisFailed(Conflict):
    """The job failed; its status says why."""

    code = "synthesis_failed"


class WebhookUrlRefused(ClientError):
    """Webhooks cannot be delivered to this URL."""

    status = 422
    code = "webhook_url_refused"


class ProvenanceFailed(VoicegateError):
    """The audio could not be signed with its C2PA manifest, so it was not stored."""

    code = "provenance_failed"


class ProvenanceUnreadable(ClientError):
    """The file cannot be read as WAV or MP3 audio, so its C2PA manifest cannot be checked."""

    status = 422
    code = "provenance_unreadable"
