"""An endpoint's run of failures: it begins with a failed delivery, ends with a delivered one, and an endpoint
that has failed every delivery for `DISABLE_AFTER_HOURS` is disabled as its next one fails, with an audit event
and `disabled_reason` its owner sees; it then gets no more events."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from backend.cpu import CpuExecutor
from backend.webhooks import step as webhook_step
from backend.webhooks.step import DISABLE_AFTER_HOURS, DeliveryFailed
from devkit.db import Conn, create_user, one
from tests.e2e.receiver import receiving
from tests.integration.conftest import open_lifecycle
from tests.integration.consumers.test_webhook_backlog import closed_port, emit, endpoint, pending


def state(db: Conn, target: uuid.UUID) -> dict[str, Any]:
    return one(
        db,
        "select failing_since is not null as failing, disabled_at is not null as disabled, disabled_reason"
        " from webhook_endpoints where id = %s",
        (target,),
    )


def message(db: Conn, target: uuid.UUID) -> dict[str, Any]:
    got: dict[str, Any] = pending(db, target)[-1]["message"]
    return got


async def test_a_run_of_failures_begins_with_a_failure_and_ends_with_a_delivery(
    cpu: CpuExecutor, db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    owner = create_user(db)
    with receiving() as receiver:
        target = endpoint(db, owner, receiver.url("/hook"))
        receiver.secrets["/hook"] = one(
            db, "select secret from voicegate.webhook_secrets where endpoint_id = %s", (target,)
        )["secret"]
        receiver.failing["/hook"] = 1
        emit(db, owner, 0)
        async with open_lifecycle(cpu, db_dsn, tmp_path) as ctx:
            with pytest.raises(DeliveryFailed, match="HTTP 500"):
                await webhook_step.process_delivery(ctx, message(db, target))
            assert state(db, target) == {"failing": True, "disabled": False, "disabled_reason": None}

            outcome = await webhook_step.process_delivery(ctx, message(db, target))

    assert outcome.status == "delivered"
    assert state(db, target) == {"failing": False, "disabled": False, "disabled_reason": None}


async def test_an_endpoint_failing_for_days_is_disabled_with_an_audit_event(
    cpu: CpuExecutor, db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    owner = create_user(db)
    target = endpoint(db, owner, f"http://127.0.0.1:{closed_port()}/hook")
    emit(db, owner, 0)
    db.execute(
        "update webhook_endpoints set failing_since = now() - make_interval(hours => %s) + interval '1 min'"
        " where id = %s",
        (DISABLE_AFTER_HOURS, target),
    )
    async with open_lifecycle(cpu, db_dsn, tmp_path) as ctx:
        with pytest.raises(DeliveryFailed, match="ConnectError"):
            await webhook_step.process_delivery(ctx, message(db, target))
        assert state(db, target)["disabled"] is False  # a minute short of the run that disables it
        db.execute(
            "update webhook_endpoints set failing_since = failing_since - interval '2 min' where id = %s", (target,)
        )

        with pytest.raises(DeliveryFailed, match="ConnectError"):
            await webhook_step.process_delivery(ctx, message(db, target))

        assert state(db, target) == {"failing": True, "disabled": True, "disabled_reason": "failing"}
        audit = one(
            db,
            "select actor, action, subject_type, detail from voicegate.audit_events where subject_id = %s",
            (str(target),),
        )
        assert (audit["actor"], audit["action"], audit["subject_type"]) == (
            "worker",
            "webhook.endpoint_disabled",
            "webhook_endpoint",
        )
        assert (audit["detail"]["ownerId"], audit["detail"]["hours"]) == (str(owner), DISABLE_AFTER_HOURS)
        # Its deliveries still queued find it disabled; new events are no longer queued for it.
        assert (await webhook_step.process_delivery(ctx, message(db, target))).status == "no_endpoint"
    held = len(pending(db, target))
    emit(db, owner, 1)
    assert len(pending(db, target)) == held
