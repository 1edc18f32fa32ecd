"""`user_erasure`: erase what an erased user left outside Postgres, then what the cascade left inside it.

The message names an erasure the auth.users trigger wrote (its items: every provider voice and every object of the
user, snapshotted before the cascade). Each provider voice is deleted at its provider (a voice the provider does not
know is gone already); each object is deleted through Storage and counts as gone only once reading it back answers
that there is none, since a delete's answer is no proof. Every item's outcome is written as it is known, so a step
that dies (a crash, a kill) is resumed by the message's next delivery from the first item still pending, and a
message read twice does nothing twice. A failure worth retrying (the provider or Storage did not answer, or the
object is still there) leaves its item pending and brings the message back after a backoff; after `MAX_TRIES`, or
at once when the provider refuses outright, the item is `refused`: reported on the receipt, never skipped silently.
Once no item is pending, the rows the cascade leaves are erased (`voicegate.erase_user_rows`) and the erasure is
closed in one transaction with its receipt and an audit tombstone that names no person.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from backend import queues
from backend.backoff import retry_delay
from backend.context import Outcome, WorkerContext
from backend.db.audit import record_audit
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.errors import ServiceUnavailable, VoicegateError
from backend.failpoints import failpoint
from backend.providers.env import ProviderConfigError
from backend.providers.errors import PermanentProviderError, ProviderError, VoiceNotFoundError

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Tries of one item before it is reported refused.
MAX_TRIES: Final = 6
#: Objects removed per Storage call, and read back at once.
OBJECT_BATCH: Final = 100
READ_BACKS: Final = 8
ACTOR: Final = "voicegate:erasure"
AUDIT_ACTION: Final = "user.erase"
#: The providers whose voices live in this database (deleted with their rows here, nothing kept elsewhere).
IN_DATABASE: Final = frozenset({"local", "selfhosted"})


@dataclass(frozen=True)
class Item:
    """One thing outside Postgres to delete: a provider voice (`target` the provider, `ref` its id) or an object
    (`target` the bucket, `ref` its name)."""

    id: int
    kind: str
    target: str
    ref: str
    region: str | None
    tries: int


@dataclass
class _Outcomes:
    """The outcomes of one pass, by item, and the soonest an item that failed may be tried again."""

    settled: list[dict[str, Any]]
    wait: float | None = None

    def add(self, item: Item, state: str, error: str | None = None) -> None:
        if state == "pending" and item.tries + 1 >= MAX_TRIES:
            state, error = "refused", f"still failing after {MAX_TRIES} tries: {error}"
        self.settled.append({"id": item.id, "state": state, "error": error})

    def again(self, ctx: WorkerContext, item: Item, retry_after: float | None) -> None:
        """When the item just added stays pending, bring the erasure back after the item's backoff."""
        if self.settled[-1]["state"] != "pending":
            return  # out of tries: refused, nothing to come back for
        delay = retry_delay(item.tries + 1, base_seconds=ctx.retry_base_seconds, max_seconds=ctx.retry_max_seconds)
        delay = max(delay, retry_after or 0.0)
        self.wait = delay if self.wait is None else min(self.wait, delay)


def erasure_handler(ctx: WorkerContext) -> queues.Handler:
    """The erasure queue's handler: one pass over the message's erasure (`process_erasure`)."""

    async def handle(message: queues.Message) -> datetime | None:
        return (await process_erasure(ctx, message.id_of("erasureId"))).retry_at

    return handle


async def process_erasure(ctx: WorkerContext, erasure_id: uuid.UUID) -> Outcome:
    """Work the erasure's pending items, and close it once none is left: `done`, or `incomplete` when an item was
    refused. `working` with `retry_at` when an item is to be tried again."""
    async with ctx.db.service_transaction() as conn:
        erasure = await fetch_optional(conn, _Q["begin"], {"id": erasure_id})
        items = [Item(**row) for row in await fetch_all(conn, _Q["pending_items"], {"id": erasure_id})]
    if erasure is None:
        return Outcome(status="no_erasure")
    if erasure["state"] in ("done", "incomplete"):
        return Outcome(status=erasure["state"])
    wait: float | None = None
    for item in (item for item in items if item.kind == "provider_voice"):
        outcomes = _Outcomes([])
        await _delete_voice(ctx, item, outcomes)
        await _settle(ctx, outcomes)
        wait = _soonest(wait, outcomes.wait)
        # Between two items, each one's outcome already written: a kill here resumes at the next.
        failpoint("between_erasure_items")
    objects = [item for item in items if item.kind == "object"]
    for start in range(0, len(objects), OBJECT_BATCH):
        outcomes = _Outcomes([])
        await _delete_objects(ctx, objects[start : start + OBJECT_BATCH], outcomes)
        await _settle(ctx, outcomes)
        wait = _soonest(wait, outcomes.wait)
        failpoint("between_erasure_items")
    if wait is not None:
        return Outcome(status="working", retry_at=datetime.now(UTC) + timedelta(seconds=wait))
    state = await _finish(ctx, erasure_id, erasure["rows_erased"])
    return Outcome(status=state)


def _soonest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


async def _settle(ctx: WorkerContext, outcomes: _Outcomes) -> None:
    if outcomes.settled:
        async with ctx.db.service_transaction() as conn:
            await conn.execute(_Q["settle_items"], {"outcomes": json.dumps(outcomes.settled)})


async def _delete_voice(ctx: WorkerContext, item: Item, outcomes: _Outcomes) -> None:
    """Delete one provider voice: gone already is gone; a refusal is final; anything else is tried again."""
    try:
        provider = ctx.providers.get(item.target)
    except ProviderConfigError as exc:
        outcomes.add(item, "refused", f"not deleted: {exc}")
        return
    region = getattr(provider, "region", None)
    if item.region is not None and region is not None and item.region != region:
        # Another region's host answers that it knows no such voice: that is no deletion.
        outcomes.add(item, "refused", f"the voice lives in region {item.region}; this deployment reaches {region}")
        return
    try:
        await provider.delete(item.ref)
    except VoiceNotFoundError:
        outcomes.add(item, "already_gone")
    except PermanentProviderError as exc:
        outcomes.add(item, "refused", _provider_error(exc))
    except ProviderError as exc:
        outcomes.add(item, "pending", _provider_error(exc))
        outcomes.again(ctx, item, exc.retry_after)
    else:
        outcomes.add(item, "deleted")


def _provider_error(exc: ProviderError) -> str:
    status = f"HTTP {exc.http_status}" if exc.http_status else type(exc).__name__
    code = f" {exc.provider_code}" if exc.provider_code else ""
    return f"{exc.provider}: {status}{code}: {exc.safe_message}"


async def _delete_objects(ctx: WorkerContext, items: Sequence[Item], outcomes: _Outcomes) -> None:
    """Delete the objects, bucket by bucket, then read each back: gone only when Storage answers it has none.
    Storage being down raises (the consumer waits for it); each item stays pending meanwhile."""
    by_bucket: dict[str, list[Item]] = {}
    for item in items:
        by_bucket.setdefault(item.target, []).append(item)
    removed: set[tuple[str, str]] = set()
    for bucket, members in by_bucket.items():
        try:
            names = await ctx.storage.remove(bucket, [item.ref for item in members])
        except ServiceUnavailable:
            raise
        except VoicegateError as exc:
            for item in members:
                outcomes.add(item, "pending", f"Storage refused the delete: {exc.detail}")
                outcomes.again(ctx, item, None)
            continue
        removed.update((bucket, name) for name in names)
    refused = {settled["id"] for settled in outcomes.settled}
    tried = [item for item in items if item.id not in refused]
    gate = asyncio.Semaphore(READ_BACKS)

    async def still_there(item: Item) -> bool:
        async with gate:
            return await ctx.storage.info(item.target, item.ref) is not None

    answers = await asyncio.gather(*(still_there(item) for item in tried))
    for item, there in zip(tried, answers, strict=True):
        if there:
            outcomes.add(item, "pending", "still there when read back after its delete")
            outcomes.again(ctx, item, None)
        else:
            outcomes.add(item, "deleted" if (item.target, item.ref) in removed else "already_gone")


async def _finish(ctx: WorkerContext, erasure_id: uuid.UUID, rows_erased: Mapping[str, Any] | None) -> str:
    """Erase the rows the cascade left and close the erasure: its receipt and the audit tombstone, together."""
    async with ctx.db.service_transaction() as conn:
        if rows_erased is None:
            counts = (await fetch_one(conn, _Q["erase_rows"], {"id": erasure_id}))["counts"]
            await conn.execute(_Q["record_rows"], {"id": erasure_id, "counts": json.dumps(counts)})
        row = await fetch_one(conn, _Q["summary"], {"id": erasure_id})
        receipt = receipt_of(row)
        state = "incomplete" if row["refused"] else "done"
        finished = await fetch_optional(
            conn, _Q["finish"], {"id": erasure_id, "state": state, "receipt": json.dumps(receipt, default=str)}
        )
        if finished is not None:
            await conn.execute(_Q["prune_items"], {"id": erasure_id})
            await record_audit(
                conn,
                ACTOR,
                AUDIT_ACTION,
                "erasure",
                erasure_id,
                detail={
                    "state": state,
                    "requested_by": row["requested_by"],
                    "provider_voices": receipt["providerVoices"],
                    "objects": receipt["objects"],
                    "rows": receipt["rows"],
                },
            )
    log.info("erasure %s: %s", erasure_id, state)
    return state


def receipt_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt of an erasure (a `summary` row): what was erased, where, and what could not be."""
    tally: dict[str, dict[str, int]] = {"provider_voice": {}, "object": {}}
    for entry in row["tally"]:
        tally[entry["kind"]][entry["state"]] = entry["n"]
    rows = {**row["cascaded"], **(row["rows_erased"] or {})}
    return {
        "erasureId": str(row["id"]),
        "userId": str(row["user_id"]),
        "requestedBy": row["requested_by"],
        "requestedAt": row["requested_at"].isoformat(),
        "providerVoices": tally["provider_voice"],
        "objects": tally["object"],
        "rows": rows,
        "refused": row["refused"],
        "keptElsewhere": [kept_by(provider) for provider in sorted(row["providers"])],
    }


def kept_by(provider: str) -> str:
    """What erasure cannot reach at `provider`: a receipt can only name it."""
    if provider in IN_DATABASE:
        return f"{provider}: its voices lived in this database and were erased with it"
    return (
        f"{provider}: each voice was deleted through its API; what {provider} keeps after a delete (logs, backups,"
        " the audio it was sent) is its own policy"
    )
