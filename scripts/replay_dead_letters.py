"""`voicegate ops replay-dead-letters`: list the dead-lettered messages with their last error, and
replay the chosen ones (`--id N`, repeatable, or `--all`) with --apply.

Replaying a `VOICE_CLONE_PROCESS` whose attempt failed and is still active makes a new attempt
exactly as `POST /v1/reflections/{id}/voice/retry` does (a copy of the old one; its insert supersedes
the old attempt and enqueues it). Any other message is sent again to the queue it died in. Either
way the dead letter is archived and an audit event written in the same transaction. A clone message
whose attempt has moved on (retried, canceled, superseded) is not replayable; `--discard` archives
chosen dead letters without replaying them.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

import msgspec

from backend import queues
from backend.db.connection import Connection
from backend.records import attempts
from scripts._common import Ops, parser, run

NAME = "replay-dead-letters"
COLUMNS = ["msg_id", "source_queue", "type", "attempt_id", "read_count", "dead_at", "error", "outcome"]
CLONE_MESSAGE = "VOICE_CLONE_PROCESS"


class DeadLetterBody(msgspec.Struct, kw_only=True):
    """A dead letter's body as the consumers write it (fields may be missing in a damaged one)."""

    sourceQueue: str | None = None  # noqa: N815 - the message's own field names
    sourceMsgId: int | None = None  # noqa: N815
    readCount: int | None = None  # noqa: N815
    message: Any = None
    error: dict[str, Any] | None = None
    deadAt: str | None = None  # noqa: N815

    @property
    def type(self) -> str | None:
        """The original message's `type`."""
        return self.message.get("type") if isinstance(self.message, dict) else None

    @property
    def attempt_id(self) -> str | None:
        """The original message's `attemptId`, if any."""
        return self.message.get("attemptId") if isinstance(self.message, dict) else None

    @property
    def error_text(self) -> str:
        """`code: message` of the last error."""
        if not self.error:
            return ""
        return ": ".join(str(self.error[k]) for k in ("code", "message") if self.error.get(k))


def _parse(body: object) -> DeadLetterBody:
    try:
        return msgspec.convert(body, DeadLetterBody)
    except msgspec.ValidationError:
        return DeadLetterBody(message=body)


async def replay(ops: Ops) -> None:
    """List every dead letter; replay (or discard) the chosen ones."""
    report = ops.report
    chosen: set[int] = set(ops.args.id or [])
    for name in ("problems", "selected", "replayed", "discarded", "not_replayable", "skipped", "not_found"):
        report.counts[name] = 0
    seen: set[int] = set()

    async def page(after: Any) -> tuple[list[queues.DeadLetter], Any]:
        async with ops.transaction() as conn:
            rows = await queues.dead_letters(conn, after=after, limit=ops.batch_size)
        return rows, ops.continue_after(rows, lambda row: row.msg_id)

    async for row in ops.pages("dead letters", page):
        seen.add(row.msg_id)
        selected = ops.args.all or row.msg_id in chosen
        outcome = await _act(ops, row.msg_id) if selected and ops.apply else None
        _record(ops, row, selected, outcome)
    if report.counts["problems"] and not report.counts["selected"]:
        report.notes.append("choose dead letters with --id MSG_ID (repeatable) or --all; --apply replays them")
    missing = sorted(chosen - seen)
    if missing:
        report.counts["not_found"] = len(missing)
        report.notes.append(f"no dead letter with id {', '.join(map(str, missing))}")
    report.counts["fixed"] = report.counts["replayed"] + report.counts["discarded"]
    report.counts["unfixed"] = (
        report.counts["problems"] - report.counts["fixed"] - report.counts["skipped"] + report.counts["not_found"]
    )


def _record(ops: Ops, row: queues.DeadLetter, selected: bool, outcome: str | None) -> None:
    letter = _parse(row.message)
    report = ops.report
    report.add("problems")
    if selected:
        report.add("selected")
    if outcome is None:
        verb = "discard" if ops.args.discard else "replay"
        outcome = f"would {verb}" if selected else "not selected"
    elif outcome.startswith("replayed"):
        report.add("replayed")
    elif outcome == "discarded":
        report.add("discarded")
    elif outcome.startswith("not replayable"):
        report.add("not_replayable")
    else:
        report.add("skipped")
    report.items.append(
        {
            "msg_id": row.msg_id,
            "source_queue": letter.sourceQueue,
            "type": letter.type,
            "attempt_id": letter.attempt_id,
            "read_count": letter.readCount,
            "dead_at": letter.deadAt,
            "error": letter.error_text,
            "outcome": outcome,
        }
    )


async def _act(ops: Ops, msg_id: int) -> str:
    """Replay or discard one dead letter in one transaction; returns what happened."""
    async with ops.transaction(write=True) as conn:
        message = await queues.lock_dead_letter(conn, msg_id)
        if message is None:
            return "skipped: already handled or locked by another run"
        letter = _parse(message)
        detail: dict[str, Any] = {
            "source_queue": letter.sourceQueue,
            "source_msg_id": letter.sourceMsgId,
            "type": letter.type,
            "attempt_id": letter.attempt_id,
            "error": letter.error,
        }
        if ops.args.discard:
            outcome = "discarded"
        else:
            outcome = await _replay(conn, letter, detail)
            if outcome.startswith("not replayable"):
                return outcome
        await queues.archive(conn, queues.DEAD_LETTER, msg_id)
        action = "dead_letter.discard" if ops.args.discard else "dead_letter.replay"
        await ops.audit(conn, action, "dead_letter", msg_id, detail)
    return outcome


async def _replay(conn: Connection, letter: DeadLetterBody, detail: dict[str, Any]) -> str:
    if letter.type == CLONE_MESSAGE:
        try:
            attempt_id = uuid.UUID(str(letter.attempt_id))
        except ValueError:
            return "not replayable: no attempt id in the message"
        attempt = await attempts.lock(conn, attempt_id)
        if attempt is None:
            return "not replayable: the attempt no longer exists"
        if attempt.status != "failed" or not attempt.is_active:
            state = attempt.status if attempt.is_active else f"{attempt.status}, no longer active"
            return f"not replayable: the attempt is {state}"
        retried = await attempts.retry(conn, attempt_id)
        detail["new_attempt_id"] = str(retried.id)
        return f"replayed as attempt {retried.id}"
    # Only a work queue may be sent back to; anything else in `sourceQueue` is not trusted.
    if letter.sourceQueue not in queues.WORK_QUEUES or not isinstance(letter.message, dict):
        return "not replayable: unknown source queue or message"
    msg_id = await queues.send(conn, letter.sourceQueue, letter.message)
    detail["new_msg_id"] = msg_id
    return f"replayed as message {msg_id} on {letter.sourceQueue}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m scripts.replay_dead_letters` / `voicegate ops replay-dead-letters`."""
    arguments = parser(NAME, "Show dead-lettered messages with their last error; replay the chosen ones.")
    arguments.add_argument(
        "--id", type=int, action="append", metavar="MSG_ID", help="a dead letter to act on (repeatable)"
    )
    arguments.add_argument("--all", action="store_true", help="act on every dead letter")
    arguments.add_argument(
        "--discard", action="store_true", help="archive the chosen dead letters without replaying them"
    )
    return run(NAME, argv, arguments, COLUMNS, replay, check=_check)


def _check(args: argparse.Namespace) -> str | None:
    if (args.apply or args.discard) and not (args.id or args.all):
        return "choose the dead letters to act on: --id MSG_ID (repeatable) or --all"
    if args.id and args.all:
        return "--id and --all exclude each other"
    return None


if __name__ == "__main__":
    sys.exit(main())
