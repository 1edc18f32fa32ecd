"""The areas' services the API's handlers call: each built once here, over what the process has made (the
database, Storage, the settings read at start-up, the worker context's provider adapters, webhook sender and CPU
executor, the C2PA manifest reader), and handed to its handlers by one name (`backend.http.deps`)."""

from __future__ import annotations

from dataclasses import dataclass

from backend.clone.service import AttemptsService
from backend.consents.service import ConsentsService
from backend.context import WorkerContext
from backend.provenance.service import ProvenanceService
from backend.provenance.verify import Verifier
from backend.reflections.service import ReflectionsService
from backend.samples.service import SamplesService
from backend.settings import Settings
from backend.speech.service import SpeechService
from backend.synthesis.service import SynthesisService
from backend.usage.job_admission import JobAdmission
from backend.usage.service import UsageService
from backend.voices.service import VoicesService
from backend.webhooks.service import WebhooksService


@dataclass(frozen=True)
class Areas:
    """One service per area; each field is `app.state`'s of the same name, which a handler injects by it."""

    attempts: AttemptsService
    consents: ConsentsService
    provenance: ProvenanceService
    reflections: ReflectionsService
    samples: SamplesService
    speech: SpeechService
    synthesis: SynthesisService
    usage: UsageService
    voices: VoicesService
    webhooks: WebhooksService


def build_areas(
    settings: Settings, context: WorkerContext, c2pa: Verifier, job_admission: JobAdmission | None = None
) -> Areas:
    """The areas' services over `settings`, the API's worker context (its database, Storage and adapters) and `c2pa`,
    which reads manifests; `job_admission`: the process's way of a user's synthesis jobs to the database (one of its
    own by default)."""
    db, storage = context.db, context.storage
    return Areas(
        attempts=AttemptsService(db),
        consents=ConsentsService(
            db,
            storage,
            context.cpu,
            settings.sample_retention_days,
            settings.user_limits,
            settings.consent_phrase_seconds,
            context.voice_ownership,
            context.ownership_thresholds,
            settings.consent_language_codes,
        ),
        provenance=ProvenanceService(context.cpu, c2pa),
        reflections=ReflectionsService(db, storage, context.providers, settings),
        samples=SamplesService(db, storage, settings),
        speech=SpeechService(db, context.providers, settings.provider_settings, context.cpu, context.ledger),
        synthesis=SynthesisService(
            db,
            storage,
            context.cpu,
            settings.provider_settings,
            settings.user_limits,
            settings.spend_quota,
            job_admission or JobAdmission(),
        ),
        usage=UsageService(db, settings.spend_quota),
        voices=VoicesService(db, storage, settings),
        webhooks=WebhooksService(db, context.webhooks, settings.user_limits),
    )
