"""`voice_sample_process`: check a queued sample and store its cleaned copy (the check itself is
`backend.samples.check`, which an enrolment also runs on a sample not yet checked for its provider).

Safe to repeat: a sample claimed by a check that was cut short is claimed again and checked from its start.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from pathlib import Path

from backend import queues
from backend.audio.errors import AudioRejected, SampleAwaitingReading, SampleHeld
from backend.context import Outcome, WorkerContext
from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.errors import StoredObjectAltered
from backend.records.rows import fetch_optional_record
from backend.records.sample_rows import SampleRow, VoiceSampleStatus
from backend.samples.check import SampleCheck, SampleGone

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: Who checks queued samples, as audit events name it.
ACTOR = "sample-check"


def sample_handler(ctx: WorkerContext) -> queues.Handler:
    """The sample queue's handler: each message's sample checked and cleaned (`process_sample`)."""

    async def handle(message: queues.Message) -> datetime | None:
        return (await process_sample(ctx, message.id_of("sampleId"))).retry_at

    return handle


async def on_dead_letter(conn: Connection, message: queues.Message, code: str, reason: str) -> None:
    """Fail the sample of a dead-lettered message, in the dead-lettering transaction."""
    # A sample keeps a reason, not a code: the code leads it when it is not the usual one.
    await fail_sample(conn, message.id_of("sampleId"), reason if code == "dead_lettered" else f"{code}: {reason}")


async def process_sample(ctx: WorkerContext, sample_id: uuid.UUID) -> Outcome:
    """Check a `pending` sample (or one whose check was cut short): `ready` with its report and cleaned
    copy, `awaiting_reading` (its voice matched another account's: its uploader is asked to read), `held` for review,
    or `failed` with the reason. Anything else is
    left as it is."""
    async with ctx.db.service_transaction() as conn:
        sample = await fetch_optional_record(conn, _Q["claim_sample"], {"sample_id": sample_id}, SampleRow)
        if sample is None:
            current = await fetch_optional(conn, _Q["sample_state"], {"sample_id": sample_id})
            return Outcome(status="missing" if current is None else current["status"])
    assert sample.provider is not None  # noqa: S101 - a queued sample names its provider (`upload_sample`)
    try:
        await SampleCheck(ctx, sample, actor=ACTOR).prepare_and_record(sample.provider)
    except SampleHeld:
        return Outcome(status=VoiceSampleStatus.HELD)
    except SampleAwaitingReading:
        return Outcome(status=VoiceSampleStatus.AWAITING_READING)
    except (AudioRejected, StoredObjectAltered) as exc:
        log.info("sample %s refused: %s", sample_id, exc.code)
        return Outcome(status=VoiceSampleStatus.FAILED)
    except SampleGone:
        return Outcome(status="missing")
    return Outcome(status=VoiceSampleStatus.READY)


async def fail_sample(conn: Connection, sample_id: uuid.UUID, reason: str) -> None:
    """Fail a sample whose check message was dead-lettered, unless it was already checked."""
    await conn.execute(_Q["fail_unchecked_sample"], {"sample_id": sample_id, "reason": reason[:500]})
