"""What the worker steps need (the database, Storage, provider adapters, the C2PA signer, the webhook sender,
timings), built once per process (API or worker) by `backend.compose` and passed down; and the `Outcome`
every step answers with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import msgspec

from backend.cpu import CpuExecutor
from backend.db.units import Database
from backend.providers.registry import ProviderSet
from backend.records import ownership
from backend.standard_webhooks.sender import WebhookSender
from backend.storage.client import ObjectStorage
from backend.usage.charge import Ledger
from backend.voiceprint import OWNERSHIP_THRESHOLD, SAME_VOICE_THRESHOLD

if TYPE_CHECKING:
    from backend.provenance import ProvenanceSigner


#: From which cosine a print matches another account's, and is its very voice, as calibrated on real speech.
DEFAULT_OWNERSHIP: Final = ownership.Thresholds(OWNERSHIP_THRESHOLD, SAME_VOICE_THRESHOLD)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """Where one call left the work: finished for now, or to be looked at again at `retry_at`."""

    status: str
    retry_at: datetime | None = None


@dataclass(frozen=True)
class WorkerContext:
    """The database (service work), Storage, provider adapters, the signer of synthesized audio, the CPU executor,
    the webhook sender and the timing rules of the workers."""

    db: Database
    storage: ObjectStorage
    providers: ProviderSet
    #: Whether providers can fetch our signed Storage URLs (false when Storage is on loopback).
    public_storage: bool
    #: Signs every file voicegate synthesizes (one per process: it holds the native c2pa signer).
    signer: ProvenanceSigner
    #: Runs CPU-bound work fairly between users: the process's one executor, owned (and closed) by what
    #: runs the process, which may share it between worker contexts (`voicegate up`: the API's and the worker's).
    cpu: CpuExecutor
    webhooks: WebhookSender
    #: Charges every provider call that sends text, against what one user may spend (VOICEGATE_USER_CHARACTERS per
    #: VOICEGATE_USER_USAGE_WINDOW): each send is reserved before it is made.
    ledger: Ledger
    lease_seconds: int = 60
    #: The bounds of a step's retry schedule (`backend.backoff.retry_delay`).
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    #: Whether the clone step has the provider speak a probe sentence to judge a new voice's likeness
    #: (VOICEGATE_LIKENESS_PROBE); without it the first preview or render is judged instead.
    likeness_probe: bool = True
    #: VOICEGATE_VOICE_OWNERSHIP: what a sample whose voice matches another account's print becomes.
    voice_ownership: ownership.Mode = "ask"
    #: From which cosine it matches (VOICEGATE_OWNERSHIP_THRESHOLD), and is the other's very voice.
    ownership_thresholds: ownership.Thresholds = DEFAULT_OWNERSHIP

    async def aclose(self) -> None:
        """Release what the context holds of its own: what its ledger still has to write, the webhook sender's client
        and the signer."""
        await self.ledger.aclose()
        await self.webhooks.aclose()
        self.signer.close()
