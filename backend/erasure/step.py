"""`user_erasure`: erase what an erased user left outside Postgres, then what the cascade left inside it.

The message names an erasure the auth.users trigger wrote, having fenced the user first (their queued work cancelled,
any later write into their Storage folder refused; a row naming them fails its foreign key): its items are every
provider voice and object of the user, and the enrolment keys of attempts that may have made a voice no row names,
snapshotted before the cascade. Each provider voice is deleted at its provider (a voice the provider does not know is
gone already); each object is deleted through Storage and counts as gone only once reading it back answers that there
is none, since a delete's answer is no proof. What a worker held of the user's when the erasure began is waited for
(until the leases it held have run out: a lease lost stops its work); then each enrolment key is looked up at its
provider and the voice it made, if any, deleted. Every item's outcome is written as it is known, so a step that dies
is resumed by the message's next delivery from the first item still pending, and a message read twice does nothing
twice. A failure worth retrying leaves its item pending and brings the message back after a backoff; after
`MAX_TRIES`, or at once when the provider refuses outright, the item is `refused`: reported, never skipped silently.

Once no item is pending the rows the cascade leaves are erased (`voicegate.erase_user_rows`) and a final scan looks
for anything of the user's: rows naming them in any table, objects in their folder or named by the items, voices at
the providers under the enrolment keys. What it finds goes round again, at most `MAX_ROUNDS` times; the erasure closes
`done` only when a scan finds nothing (and nothing was refused), else `incomplete` with what was left on its receipt,
in one transaction with an audit tombstone that names no person.
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
from backend.providers.base import VoiceProvider
from backend.providers.env import ProviderConfigError
from backend.providers.errors import PermanentProviderError, ProviderError, VoiceNotFoundError

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Tries of one item before it is reported refused.
MAX_TRIES: Final = 6
#: Final scans an erasure makes; what the last one finds is reported on the receipt.
MAX_ROUNDS: Final = 3
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
    """Work the erasure's pending items (its enrolment keys once what was in flight has stopped), then erase the rows
    and scan for what is left: close it `done` when the scan finds nothing, `incomplete` when an item was refused or
    rounds ran out; `working` with `retry_at` while it waits, retries an item or goes round again."""
    async with ctx.db.service_transaction() as conn:
        erasure = await fetch_optional(conn, _Q["begin"], {"id": erasure_id, "lease_seconds": ctx.lease_seconds})
        items = [Item(**row) for row in await fetch_all(conn, _Q["pending_items"], {"id": erasure_id})]
    if erasure is None:
        return Outcome(status="no_erasure")
    if erasure["state"] in ("done", "incomplete"):
        return Outcome(status=erasure["state"])
    wait: float | None = None
    for item in (item for item in items if item.kind == "provider_voice"):
        outcomes = _Outcomes([])
        await _delete_voice(ctx, item, outcomes)
        wait = _soonest(wait, await _settle(ctx, outcomes))
    objects = [item for item in items if item.kind == "object"]
    for start in range(0, len(objects), OBJECT_BATCH):
        outcomes = _Outcomes([])
        await _delete_objects(ctx, objects[start : start + OBJECT_BATCH], outcomes)
        wait = _soonest(wait, await _settle(ctx, outcomes))
    settling = (erasure["settle_at"] - erasure["db_now"]).total_seconds()
    if settling > 0:
        # Work of the user's may still be running: a voice it makes now would be missed by a lookup made now.
        wait = _soonest(wait, settling)
    else:
        for item in (item for item in items if item.kind == "enrolment_key"):
            outcomes = _Outcomes([])
            await _delete_enrolled(ctx, item, outcomes)
            wait = _soonest(wait, await _settle(ctx, outcomes))
    if wait is not None:
        return Outcome(status="working", retry_at=datetime.now(UTC) + timedelta(seconds=wait))
    return await _close(ctx, erasure_id, erasure["rounds"])


def _soonest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


async def _settle(ctx: WorkerContext, outcomes: _Outcomes) -> float | None:
    """Write the outcomes; the soonest an item that failed may be tried again."""
    if outcomes.settled:
        async with ctx.db.service_transaction() as conn:
            await conn.execute(_Q["settle_items"], {"outcomes": json.dumps(outcomes.settled)})
    # Between two items (or batches), each one's outcome already written: a kill here resumes at the next.
    failpoint("between_erasure_items")
    return outcomes.wait


def _provider_of(ctx: WorkerContext, item: Item, outcomes: _Outcomes) -> VoiceProvider | None:
    """The provider that holds the item's voice, or None (the item refused) when this deployment cannot reach it."""
    try:
        provider = ctx.providers.get(item.target)
    except ProviderConfigError as exc:
        outcomes.add(item, "refused", f"not deleted: {exc}")
        return None
    region = getattr(provider, "region", None)
    if item.region is not None and region is not None and item.region != region:
        # Another region's host answers that it knows no such voice: that is no deletion.
        outcomes.add(item, "refused", f"the voice lives in region {item.region}; this deployment reaches {region}")
        return None
    return provider


async def _delete_voice(ctx: WorkerContext, item: Item, outcomes: _Outcomes) -> None:
    """Delete one provider voice: gone already is gone; a refusal is final; anything else is tried again."""
    provider = _provider_of(ctx, item, outcomes)
    if provider is None:
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


async def _delete_enrolled(ctx: WorkerContext, item: Item, outcomes: _Outcomes) -> None:
    """Look an enrolment key up at its provider and delete the voice it made, if any (one made while the user was
    erased: its attempt's row went before the voice could be written on it); none made is `already_gone`."""
    provider = _provider_of(ctx, item, outcomes)
    if provider is None:
        return
    try:
        found = await provider.find(item.ref)
        if found is not None:
            await provider.delete(found.voice_id)
    except VoiceNotFoundError:
        outcomes.add(item, "already_gone")
    except PermanentProviderError as exc:
        outcomes.add(item, "refused", _provider_error(exc))
    except ProviderError as exc:
        outcomes.add(item, "pending", _provider_error(exc))
        outcomes.again(ctx, item, exc.retry_after)
    else:
        outcomes.add(item, "already_gone" if found is None else "deleted")


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
    reading = asyncio.Semaphore(READ_BACKS)

    async def still_there(item: Item) -> bool:
        async with reading:
            return await ctx.storage.info(item.target, item.ref) is not None

    answers = await asyncio.gather(*(still_there(item) for item in tried))
    for item, there in zip(tried, answers, strict=True):
        if there:
            outcomes.add(item, "pending", "still there when read back after its delete")
            outcomes.again(ctx, item, None)
        else:
            outcomes.add(item, "deleted" if (item.target, item.ref) in removed else "already_gone")


async def _close(ctx: WorkerContext, erasure_id: uuid.UUID, rounds: int) -> Outcome:
    """Erase the rows the cascade left, then scan for anything of the user's: close the erasure when the scan finds
    nothing, or when the rounds are spent; else send what it found round again."""
    async with ctx.db.service_transaction() as conn:
        counts = (await fetch_one(conn, _Q["erase_rows"], {"id": erasure_id}))["counts"]
        erased = (await fetch_one(conn, _Q["rows_erased"], {"id": erasure_id}))["rows_erased"] or {}
        for table, n in counts.items():
            erased[table] = erased.get(table, 0) + n
        await conn.execute(_Q["record_rows"], {"id": erasure_id, "counts": json.dumps(erased)})
    found, voiced = await _scan(ctx, erasure_id)
    if found and rounds + 1 < MAX_ROUNDS:
        params = {"id": erasure_id, "found": json.dumps(found), "keys": voiced}
        async with ctx.db.service_transaction() as conn:
            await conn.execute(_Q["go_round"], params)
        log.warning("erasure %s: the final scan found %s; going round again", erasure_id, found)
        delay = retry_delay(rounds + 1, base_seconds=ctx.retry_base_seconds, max_seconds=ctx.retry_max_seconds)
        return Outcome(status="working", retry_at=datetime.now(UTC) + timedelta(seconds=delay))
    return Outcome(status=await _finish(ctx, erasure_id, found))


async def _scan(ctx: WorkerContext, erasure_id: uuid.UUID) -> tuple[dict[str, Any], list[int]]:
    """What is left of the user: rows naming them by table, objects, and voices their enrolment keys still find (or
    keys that could not be looked up), each only when there is some; and the ids of the keys that found a voice."""
    async with ctx.db.service_transaction() as conn:
        found: dict[str, Any] = (await fetch_one(conn, _Q["leftovers"], {"id": erasure_id}))["found"]
        keys = [Item(**row) for row in await fetch_all(conn, _Q["settled_keys"], {"id": erasure_id})]
    voices: list[dict[str, Any]] = []
    voiced: list[int] = []
    for item in keys:
        try:
            voice = await ctx.providers.get(item.target).find(item.ref)
        except (ProviderConfigError, ProviderError) as exc:
            voices.append({"provider": item.target, "key": item.ref, "error": str(exc)[:200]})
            voiced.append(item.id)
            continue
        if voice is not None:
            voices.append({"provider": item.target, "key": item.ref, "voiceId": voice.voice_id})
            voiced.append(item.id)
    found["enrolmentKeys"] = voices
    return {name: left for name, left in found.items() if left}, voiced


async def _finish(ctx: WorkerContext, erasure_id: uuid.UUID, leftovers: Mapping[str, Any]) -> str:
    """Close the erasure, its receipt and the audit tombstone together: `incomplete` when an item was refused or the
    final scan still found something."""
    async with ctx.db.service_transaction() as conn:
        row = await fetch_one(conn, _Q["summary"], {"id": erasure_id})
        receipt = receipt_of(row, leftovers)
        state = "incomplete" if row["refused"] or leftovers else "done"
        params = {
            "id": erasure_id,
            "state": state,
            "receipt": json.dumps(receipt, default=str),
            "leftovers": json.dumps(leftovers) if leftovers else None,
        }
        finished = await fetch_optional(conn, _Q["finish"], params)
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
                    "enrolment_keys": receipt["enrolmentKeys"],
                    "objects": receipt["objects"],
                    "rows": receipt["rows"],
                    "rounds": receipt["rounds"],
                },
            )
    log.info("erasure %s: %s", erasure_id, state)
    return state


def receipt_of(row: Mapping[str, Any], leftovers: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt of an erasure (a `summary` row, and what its final scan left): what was erased, where, and what
    could not be."""
    tally: dict[str, dict[str, int]] = {"provider_voice": {}, "object": {}, "enrolment_key": {}}
    for entry in row["tally"]:
        tally[entry["kind"]][entry["state"]] = entry["n"]
    rows = {**row["cascaded"], **(row["rows_erased"] or {})}
    return {
        "erasureId": str(row["id"]),
        "userId": str(row["user_id"]),
        "requestedBy": row["requested_by"],
        "requestedAt": row["requested_at"].isoformat(),
        "providerVoices": tally["provider_voice"],
        "enrolmentKeys": tally["enrolment_key"],
        "objects": tally["object"],
        "rows": rows,
        "inFlight": row["in_flight"],
        "rounds": row["rounds"] + 1,
        "refused": row["refused"],
        "leftovers": dict(leftovers),
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
