"""One mapping from exceptions to RFC 9457 problem+json, with a test per row."""

from __future__ import annotations

import msgspec
import psycopg
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from litestar.exceptions import MethodNotAllowedException, NotFoundException, ValidationException
from psycopg_pool import PoolTimeout

from backend import errors
from backend.app import create_app
from backend.audio import errors as audio_errors
from backend.audio.report import QualityReport
from backend.db.units import translate_db_errors
from backend.errors import LaunchBlocked
from backend.http.pipeline.problem import problem_for
from backend.settings import settings_from_env
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

ROWS = [
    (errors.ValidationFailed("name is required"), 400, "validation_failed", "name is required"),
    (errors.ClientError(), 400, "bad_request", "The request cannot be served as sent."),
    (
        errors.InvalidJson(),
        400,
        "invalid_json",
        "The body is not JSON this server reads: not UTF-8, malformed, or nested too deeply.",
    ),
    (
        errors.InvalidHost(),
        400,
        "invalid_host",
        "The Host header is not a host name or address with an optional port.",
    ),
    (
        errors.AmbiguousFraming(),
        400,
        "ambiguous_framing",
        "Both Content-Length and Transfer-Encoding, or two lengths: refused, and the connection closed.",
    ),
    (
        errors.BodyTooSlow(),
        408,
        "body_too_slow",
        "The request body arrived too slowly (VOICEGATE_BODY_MIN_RATE); the connection is closed.",
    ),
    (
        errors.ClientGone(),
        499,
        "client_gone",
        "The client closed its connection before its request's body had arrived; nothing was answered.",
    ),
    (errors.Unauthorized(), 401, "unauthorized", "A valid access token is required."),
    (errors.AccountGone(), 401, "unauthorized", "The account this token was issued for no longer exists."),
    (
        errors.ReadingRequired(),
        409,
        "reading_required",
        "Before this sample is used, its speaker reads a short phrase aloud (POST /api/v1/voice-samples/{id}/reading).",
    ),
    (errors.Forbidden(), 403, "forbidden", "You may not do this."),
    (errors.NotFound(), 404, "not_found", "The resource does not exist."),
    (errors.Conflict(), 409, "conflict", "The resource is not in a state that allows this."),
    (errors.StaleVersion(), 409, "stale_version", "The resource changed since it was read; read it again."),
    (errors.LeaseLost(), 409, "lease_lost", "This worker no longer holds the attempt's lease."),
    (
        errors.IllegalTransition(),
        409,
        "illegal_transition",
        "That state change is not allowed from the current state.",
    ),
    (errors.PayloadTooLarge(), 413, "payload_too_large", "The upload is larger than allowed."),
    (errors.BodyTooLarge(), 413, "body_too_large", "The JSON body is larger than this route takes."),
    (
        errors.UnsupportedMediaType(),
        415,
        "unsupported_media_type",
        "The upload is not a supported audio format.",
    ),
    (
        errors.JsonRequired(),
        415,
        "json_required",
        "The body must be JSON: send it with `Content-Type: application/json`.",
    ),
    (
        errors.TooManyRequests(),
        429,
        "too_many_requests",
        "Too many requests at once; retry after `Retry-After` seconds.",
    ),
    (
        errors.ConcurrencyLimited(),
        429,
        "concurrency_limited",
        "You have too many requests in flight at once; retry after `Retry-After` seconds.",
    ),
    (
        errors.StreamsLimited(),
        429,
        "streams_limited",
        "You have too many speech streams open at once; let one end, or retry after `Retry-After` seconds.",
    ),
    (
        errors.ServerBusy(),
        429,
        "server_busy",
        "Busy with other requests; retry after `Retry-After` seconds.",
    ),
    (
        errors.CreatesLimited(),
        429,
        "creates_limited",
        "You have created too many of these lately; retry after `Retry-After` seconds.",
    ),
    (
        errors.OpenConsentsLimited(),
        429,
        "open_consents_limited",
        "Too many of your spoken consents await their recording: record one, or retry once the oldest lapses.",
    ),
    (
        errors.DraftVoicesLimited(),
        429,
        "draft_voices_limited",
        "You have too many draft voices: finalize one (POST /api/clone/finalize) or delete one first.",
    ),
    (
        errors.QuotaExceeded(),
        429,
        "quota_exceeded",
        "You have used your characters for this window; retry after `Retry-After` seconds, when it resets.",
    ),
    (
        errors.JobsLimited(),
        429,
        "jobs_limited",
        "You have too many synthesis jobs queued or running; retry once one has ended.",
    ),
    (errors.ServiceUnavailable(), 503, "service_unavailable", "A dependency is unreachable; retry shortly."),
    (
        errors.BacklogFull(),
        503,
        "backlog_full",
        "More work is waiting to be checked than this server takes on; retry after `Retry-After` seconds.",
    ),
    (
        errors.DatabaseUnavailable(),
        503,
        "database_unavailable",
        "The database is unreachable; retry shortly.",
    ),
    (errors.StorageUnavailable(), 503, "storage_unavailable", "Object storage is unreachable; retry shortly."),
    (
        ValidationException(detail="bad", extra=[{"message": "Expected `int`"}]),
        400,
        "validation_failed",
        "Expected `int`",
    ),
    (NotFoundException(), 404, "not_found", "No such route or resource."),
    (MethodNotAllowedException(), 405, "method_not_allowed", "Method Not Allowed"),
    (
        errors.InvalidIdempotencyKey(),
        400,
        "invalid_idempotency_key",
        "Idempotency-Key must be 1 to 255 printable ASCII characters.",
    ),
    (
        errors.IdempotencyKeyReused(),
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request; send a new key for a new request.",
    ),
    (
        errors.IdempotencyKeyInFlight(),
        409,
        "idempotency_key_in_flight",
        "A request with this Idempotency-Key is still being processed; retry once it has finished.",
    ),
    (
        errors.ProviderVoiceNotFound(),
        422,
        "provider_voice_not_found",
        "The voice provider does not know this voice id.",
    ),
    (
        errors.ProviderVoiceTaken(),
        409,
        "provider_voice_taken",
        "This provider voice is attached to another voice; it can only be used by its owner.",
    ),
    (errors.ProviderRejected(), 422, "provider_rejected", "The voice provider refused the request."),
    (
        errors.ProviderUnavailable(),
        503,
        "provider_unavailable",
        "The voice provider is unreachable or overloaded; retry shortly.",
    ),
    (audio_errors.AudioRejected(), 422, "audio_rejected", "The audio sample cannot be used."),
    (audio_errors.UnsupportedOrCorruptAudio(), 415, "unsupported_audio", "unsupported or corrupt audio"),
    (
        audio_errors.AudioTooLongForSize(),
        422,
        "audio_too_long_for_size",
        "audio too long for its size: the file claims or decodes to more audio than its bytes can hold",
    ),
    (audio_errors.SampleTooShort(), 422, "sample_too_short", "sample too short"),
    (audio_errors.SampleTooLong("sample too long (max 60 s)"), 422, "sample_too_long", "sample too long (max 60 s)"),
    (audio_errors.NoSpeech(), 422, "no_speech", "no speech detected"),
    (audio_errors.SampleClipped(), 422, "clipping", "sample is clipped"),
    (
        audio_errors.SpeakerMismatch(),
        422,
        "speaker_mismatch",
        "the sample's speaker is not the speaker who recorded its consent",
    ),
    (audio_errors.SampleSpeakersMixed(), 422, "mixed_speakers", "the sample holds more than one speaker"),
    (
        audio_errors.SampleHeld(),
        422,
        "held_for_review",
        "the sample is held for review: nothing of it reaches a provider until an operator releases it",
    ),
    (
        audio_errors.SampleAwaitingReading(),
        422,
        "reading_required",
        "before the sample is used, its speaker reads a short phrase aloud,"
        " so that voicegate hears the voice is theirs",
    ),
    (
        audio_errors.SampleOwnershipRefused(),
        422,
        "ownership_refused",
        "the sample's voice cannot be accepted for this account",
    ),
    (
        audio_errors.SyntheticSpeech(),
        422,
        "synthetic_speech",
        "the sample carries the watermark of synthesized speech: a voice is not cloned from a clone",
    ),
    (
        errors.ConsentRequired(),
        400,
        "consent_required",
        "consent required: a voice sample can only be stored with the speaker's consent (consent=true).",
    ),
    (
        errors.ConsentRecordingRequired(),
        422,
        "consent_recording_required",
        "Samples are taken only under a verified spoken consent here: record one and send its `consentId`.",
    ),
    (
        errors.ConsentNotVerified(),
        422,
        "consent_not_verified",
        "The consent has no verified recording of its phrase: record it (POST /api/v1/consents/{id}/recording).",
    ),
    (
        errors.ConsentExpired(),
        422,
        "consent_expired",
        "The consent can no longer be used: its phrase was not recorded in time, or its evidence was purged.",
    ),
    (
        errors.ConsentPhraseSpoken(),
        422,
        "consent_phrase",
        "voicegate does not speak consent phrases: this text reads as one (or as one of yours). Speak other words.",
    ),
    (
        errors.SampleNotUploaded(),
        422,
        "sample_not_uploaded",
        "No sample was uploaded for this voice; PUT the file to the signed upload URL first.",
    ),
    (errors.SampleTooLarge(), 413, "sample_too_large", "The sample is larger than allowed."),
    (
        errors.UnsupportedAudio(),
        415,
        "unsupported_audio_format",
        "unsupported audio format: the file is not WAV, MP3, FLAC, OGG/Opus, WebM/Opus or M4A/AAC.",
    ),
    (
        errors.ProviderNotConfigured(),
        422,
        "provider_not_configured",
        "That voice provider is not configured on this server.",
    ),
    (
        errors.LanguageNotSupported(),
        422,
        "language_not_supported",
        "The voice provider cannot speak this language, or read the letters of this text.",
    ),
    (
        errors.SampleRejected(),
        422,
        "sample_rejected",
        "The sample was refused when it was checked; upload a new one.",
    ),
    (
        errors.SampleNotReady(),
        409,
        "sample_not_ready",
        "The sample is still being checked, or was refused; a voice is made from ready samples only.",
    ),
    (
        errors.SamplesMixed(),
        422,
        "samples_mixed_providers",
        "The samples were checked for different providers; one voice is made at one provider.",
    ),
    (
        errors.MixedSpeakers(),
        422,
        "mixed_speakers",
        "The samples are not all of one speaker; one voice is made from one person's samples.",
    ),
    (
        errors.VoiceNotReady(),
        409,
        "voice_not_ready",
        "The voice has not been cloned; clone it from a sample first.",
    ),
    (
        errors.VoiceNameTaken(),
        409,
        "voice_name_taken",
        "You have a voice of that name already (names are compared without case or outer spaces); choose another.",
    ),
    (
        errors.SynthesisNotFinished(),
        409,
        "synthesis_not_finished",
        "The job has not finished yet; poll its status.",
    ),
    (errors.SynthesisFailed(), 409, "synthesis_failed", "The job failed; its status says why."),
    (errors.SynthesisEnded(), 409, "synthesis_ended", "The job has already ended; there is nothing to cancel."),
    (
        errors.StoredObjectAltered(),
        409,
        "stored_object_altered",
        "A file voicegate stored has changed since voicegate wrote it, so it is not used or served.",
    ),
    (
        LaunchBlocked(["preview_required"]),
        409,
        "launch_blocked",
        "The voice is not ready to launch: preview_required.",
    ),
    (errors.WebhookUrlRefused(), 422, "webhook_url_refused", "Webhooks cannot be delivered to this URL."),
    (
        errors.ProvenanceFailed(),
        500,
        "provenance_failed",
        "The audio could not be signed with its C2PA manifest, so it was not stored.",
    ),
    (
        errors.ProvenanceUnreadable(),
        422,
        "provenance_unreadable",
        "The file cannot be read as WAV or MP3 audio, so its C2PA manifest cannot be checked.",
    ),
    (
        errors.VoiceprintUnavailable(),
        500,
        "voiceprint_unavailable",
        "The speaker encoder's weights cannot be read on this server, so no voiceprint can be made.",
    ),
    (
        errors.WatermarkUnavailable(),
        500,
        "watermark_unavailable",
        "The watermark's weights cannot be read on this server, so audio can be neither marked nor checked.",
    ),
    (RuntimeError("secret dsn postgresql://u:pw@h"), 500, "internal_error", "An unexpected error occurred."),
]


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_error_class_has_a_row() -> None:
    # Imported for their error classes, so every subclass defined anywhere in the app is loaded.
    import backend.app  # noqa: F401, PLC0415

    assert _subclasses(errors.VoicegateError) - {type(row[0]) for row in ROWS} == set()


@pytest.mark.parametrize(("exc", "status", "code", "detail"), ROWS, ids=[type(r[0]).__name__ for r in ROWS])
def test_exception_maps_to_problem(exc: Exception, status: int, code: str, detail: str) -> None:
    problem, headers = problem_for(exc, "/x")
    assert (problem.status, problem.code, problem.detail, problem.instance) == (status, code, detail, "/x")
    assert problem.type.endswith(code)
    assert ("Retry-After" in headers) is (status in {429, 503})
    if status == 429:
        # A draft never lapses, so its refusal asks a client back no sooner than its owner could act.
        # A job takes seconds to end, so a refusal for too many asks back after a few.
        waits = {errors.DraftVoicesLimited: "60", errors.JobsLimited: "5"}
        assert headers["Retry-After"] == waits.get(type(exc), "1")


@pytest.mark.parametrize("refusal", [errors.CreatesLimited, errors.OpenConsentsLimited, errors.ConcurrencyLimited])
def test_a_refusal_that_knows_when_to_come_back_says_so_in_retry_after(refusal: type[errors.TooManyRequests]) -> None:
    problem, headers = problem_for(refusal("Retry in 742 s.", retry_after=742), "/v1/reflections")

    assert (problem.status, problem.detail, headers["Retry-After"]) == (429, "Retry in 742 s.", "742")
    assert refusal.retry_after == 1  # the class's own stays as it was


def test_a_quota_refusal_carries_its_rate_limit_fields() -> None:
    fields = {"RateLimit-Policy": '"characters";q=100;w=86400', "RateLimit": '"characters";r=0;t=3600'}
    problem, headers = problem_for(errors.QuotaExceeded("Used.", retry_after=3600, headers=fields), "/api/v1/clone")

    assert (problem.status, problem.code) == (429, "quota_exceeded")
    assert headers == {"Retry-After": "3600", **fields}


def server_error(sqlstate: str) -> psycopg.Error:
    """An error as psycopg raises it for a server SQLSTATE (the lifecycle's own codes have no class)."""
    return type(f"E{sqlstate}", (psycopg.DatabaseError,), {"sqlstate": sqlstate})("from the server")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (PoolTimeout("no connection"), errors.DatabaseUnavailable),
        (psycopg.OperationalError("connection refused"), errors.DatabaseUnavailable),
        (psycopg.errors.lookup("57P01")("terminating connection"), errors.DatabaseUnavailable),
        # The server's own deadlines: a statement past statement_timeout, a transaction left idle.
        (psycopg.errors.lookup("57014")("canceling statement due to statement timeout"), errors.DatabaseUnavailable),
        (psycopg.errors.lookup("25P03")("idle-in-transaction timeout"), errors.DatabaseUnavailable),
        (server_error("VG400"), errors.ClientError),
        (server_error("VG403"), errors.Forbidden),
        (server_error("VG404"), errors.NotFound),
        (server_error("VG409"), errors.StaleVersion),
        (server_error("VG422"), errors.IllegalTransition),
        (server_error("VG423"), errors.LeaseLost),
    ],
)
def test_database_errors_translate_to_domain_errors(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected), translate_db_errors():
        raise raised


def test_other_database_errors_pass_through_unchanged() -> None:
    with pytest.raises(psycopg.errors.UniqueViolation), translate_db_errors():
        raise psycopg.errors.UniqueViolation("dup")


def test_a_name_taken_names_the_name_in_a_sentence() -> None:
    problem, _ = problem_for(errors.VoiceNameTaken("Grandma reading"), "/api/voices/x")
    assert (problem.status, problem.code, problem.detail) == (
        409,
        "voice_name_taken",
        "You have a voice named “Grandma reading” already: choose another name.",
    )


def test_extension_members_sit_beside_the_standard_ones() -> None:
    problem, _ = problem_for(LaunchBlocked(["runtime_not_synced", "preview_required"]), "/v1/reflections/x/sessions")
    body = msgspec.json.decode(problem.encode())
    assert (body["status"], body["code"]) == (409, "launch_blocked")
    assert body["blockingReasons"] == ["runtime_not_synced", "preview_required"]
    assert "extensions" not in body


def test_a_language_refusal_names_the_provider_and_the_languages_it_speaks() -> None:
    refused = errors.LanguageNotSupported(
        "This voice's language is 'zh'. The local provider speaks: en.", provider="local", languages=["en"]
    )
    problem, _ = problem_for(refused, "/api/v1/speech")
    body = msgspec.json.decode(problem.encode())
    assert body == {
        "type": "https://voicegate.dev/problems/language_not_supported",
        "title": "Unprocessable Content",
        "status": 422,
        "code": "language_not_supported",
        "detail": "This voice's language is 'zh'. The local provider speaks: en.",
        "instance": "/api/v1/speech",
        "provider": "local",
        "languages": ["en"],
    }


def _problem_schema() -> Draft202012Validator:
    """The document's `ProblemDetails`, which allows no member it does not declare."""
    document = create_app(
        with_auth_keys(settings_from_env({"VOICEGATE_DATA_DIR": "/nonexistent"}), {"SUPABASE_JWT_SECRET": "s" * 40}),
        "postgresql://nobody@127.0.0.1:1/none",
        embedded=EMBEDDED,
    ).openapi_schema.to_schema()
    schema = {"$ref": "#/components/schemas/ProblemDetails", "components": document["components"]}
    return Draft202012Validator(schema, format_checker=FormatChecker())


#: Every figure an audio refusal may carry, with a value of its type (`RefusalFacts` declares them).
FACTS: audio_errors.RefusalFacts = {
    "reason": "unexpected output",
    "durationS": 61.2,
    "decodedS": 0.0,
    "heldS": 1.5,
    "maxForSizeS": 12.0,
    "maxDurationS": 60.0,
    "minDurationS": 3.0,
    "clippingRatio": 0.2,
    "maxClippingRatio": 0.01,
}
REPORT = QualityReport(
    mime_type="audio/wav",
    codec="pcm_s16le",
    duration_s=2.0,
    sample_rate=24000,
    channels=1,
    loudness_lufs=-23.0,
    sample_peak_dbfs=-1.0,
    true_peak_dbtp=-0.9,
    snr_db=30.0,
    speech_ratio=0.8,
    speech_duration_s=1.6,
    clipping_ratio=0.0,
    usable_duration_s=1.8,
    verdict="poor",
    advice=("Record at least 3 s.",),
)


def test_every_extension_member_is_one_the_document_declares() -> None:
    """A generated client types the members an error adds (e.g. `blockingReasons`), and the document allows no
    others: each error that adds members answers a body valid against the documented `ProblemDetails`."""
    assert set(audio_errors.RefusalFacts.__annotations__) == set(FACTS)
    with_members = [
        LaunchBlocked(["runtime_not_synced", "preview_required"]),
        errors.LanguageNotSupported("no", provider="local", languages=["en"]),
        audio_errors.SampleTooShort("sample too short (min 3 s)", report=REPORT, facts=FACTS),
    ]
    validator = _problem_schema()
    for exc in with_members:
        problem, _ = problem_for(exc, "/x")
        body = msgspec.json.decode(problem.encode())
        assert set(body) > {"type", "title", "status", "code", "detail", "instance"}, body
        assert [error.message for error in validator.iter_errors(body)] == [], type(exc).__name__
    # And an undeclared member is refused by it (what the schemathesis run relies on).
    assert not validator.is_valid({"type": "t", "title": "t", "status": 409, "code": "c", "undeclared": 1})
