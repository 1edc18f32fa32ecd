"""A synthesis job's own ends beside success: a job whose voice its provider no longer has (or whose model was
retired) waits for the voice to be enrolled again from its stored sample, instead of failing: once per job
(`heal_job`); and a job failed with a code (`fail_job`). Jobs queued for the voice follow the new attempt too
(`backend.records.synthesis_jobs.follow_attempt`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from backend.clone import CannotReenrol, heal
from backend.context import Outcome, WorkerContext
from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.providers.base import ProviderVoice
from backend.providers.errors import ModelRetiredError, PermanentProviderError
from backend.records import synthesis_jobs

_Q = load_queries(Path(__file__).with_suffix(".sql"))


async def heal_job(
    ctx: WorkerContext,
    job_id: uuid.UUID,
    voice: ProviderVoice,
    lost: PermanentProviderError,
    *,
    recheck: timedelta,
    lease_owner: str,
) -> Outcome:
    """The provider lost `voice` while the job spoke with it (in the run holding `lease_owner`): start (or
    join) its re-enrolment and put the job back to wait for it, looking again after `recheck` should the
    wake-up be lost. A job that already healed once, or a voice with no sample left, fails with a clear
    code."""
    reason = "model_retired" if isinstance(lost, ModelRetiredError) else "voice_not_found"
    async with ctx.db.service_transaction() as conn:
        job = await fetch_optional(conn, _Q["lock_job"], {"id": job_id, "owner": lease_owner})
        if job is None:
            return Outcome(status="stale")
        if job["healed_at"] is not None:
            message = f"The provider lost the voice again after it was enrolled anew ({lost.safe_message})"
            return await fail_job(conn, job_id, "voice_lost", message, lease_owner=lease_owner)
        try:
            attempt = await heal(
                conn,
                job["voice_id"],
                provider=voice.provider,
                provider_voice_id=voice.voice_id,
                reason=reason,
                actor=f"synthesis:{job_id}",
            )
        except CannotReenrol as refused:
            message = f"{lost.safe_message} {refused.message}"
            return await fail_job(conn, job_id, refused.code, message, lease_owner=lease_owner)
        await synthesis_jobs.follow_attempt(conn, job["voice_id"], attempt.id)
        waiting = await fetch_optional(
            conn, _Q["wait_for_reenrolment"], {"id": job_id, "attempt_id": attempt.id, "owner": lease_owner}
        )
    if waiting is None:
        return Outcome(status="stale")
    return Outcome(status="queued", retry_at=waiting["db_now"] + recheck)


async def fail_job(
    conn: Connection, job_id: uuid.UUID, code: str, message: str, *, lease_owner: str | None = None
) -> Outcome:
    """Fail the job unless it already ended, on the caller's transaction (`stale` when it had); with
    `lease_owner`, only while that run still holds the job."""
    params = {"id": job_id, "code": code, "message": message[:500], "owner": lease_owner}
    failed = await fetch_optional(conn, _Q["fail_job"], params)
    return Outcome(status="failed" if failed is not None else "stale")
