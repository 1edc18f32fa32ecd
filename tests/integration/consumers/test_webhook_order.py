"""The webhook queue's reader (`read_in_turn`): deliveries in the order they became due, so that a failing
endpoint's retries, which keep the queue's oldest ids, do not go ahead of another user's newer event; and in turn by
user, so that however many of one user's are due, another user's first is read with their first, and a user is read
no further than their share (or, slow, their two) of the slots."""

from __future__ import annotations

import json
import uuid

from backend.db.units import Database
from backend.standard_webhooks.signing import new_secret
from backend.webhooks import step as webhook_step
from devkit.db import Conn, create_user, one


def endpoint(db: Conn, owner: uuid.UUID) -> uuid.UUID:
    made: uuid.UUID = one(
        db,
        "insert into webhook_endpoints (owner_id, url, events) values (%s, 'https://hooks.example.com/x', %s)"
        " returning id",
        (owner, ["sample.ready"]),
    )["id"]
    db.execute("insert into voicegate.webhook_secrets (endpoint_id, secret) values (%s, %s)", (made, new_secret()))
    return made


def emit(db: Conn, owner: uuid.UUID, n: int) -> None:
    db.execute("select voicegate.emit_webhook('sample.ready', %s, %s::jsonb)", (owner, json.dumps({"n": n})))


async def test_deliveries_are_read_in_the_order_they_became_due_not_by_age(database: Database, db: Conn) -> None:
    careless, other = create_user(db), create_user(db)
    retried, fresh = endpoint(db, careless), endpoint(db, other)
    emit(db, careless, 0)
    emit(db, careless, 1)
    emit(db, other, 0)
    # The careless user's two deliveries failed and wait out their backoff: pgmq's read would take both before
    # the other user's newer one as soon as they are due. The first came due before it, the second after.
    due = {(str(retried), 0): "2 s", (str(fresh), 0): "1 s", (str(retried), 1): "500 ms"}
    for (target, n), ago in due.items():
        db.execute(
            "update pgmq.q_webhook_delivery set vt = clock_timestamp() - %s::interval"
            " where message ->> 'endpointId' = %s and (message -> 'data' ->> 'n')::int = %s",
            (ago, target, n),
        )
    db.execute("delete from pgmq.q_webhook_delivery where message -> 'endpointId' = 'null'")  # the project's

    async with database.service_transaction() as conn:
        first = await webhook_step.read_in_turn(conn, 30, 2)
        then = await webhook_step.read_in_turn(conn, 30, 2)
        again = await webhook_step.read_in_turn(conn, 30, 2)

    assert [(m["message"]["endpointId"], m["message"]["data"]["n"], m["read_ct"]) for m in first] == [
        (str(retried), 0, 1),
        (str(fresh), 0, 1),
    ]
    assert [(m["message"]["endpointId"], m["message"]["data"]["n"]) for m in then] == [(str(retried), 1)]
    assert again == []  # all three are in hand, invisible for 30 s


async def test_one_users_due_deliveries_never_stand_before_another_users_first(database: Database, db: Conn) -> None:
    careless, other = create_user(db), create_user(db)
    endpoint(db, careless)
    endpoint(db, other)
    for n in range(10):
        emit(db, careless, n)
    emit(db, other, 0)
    db.execute("delete from pgmq.q_webhook_delivery where message -> 'endpointId' = 'null'")  # the project's

    async with database.service_transaction() as conn:
        first = await webhook_step.read_in_turn(conn, 30, 2)
        # The consumer holds two of the careless user's, whose receivers are slow: two is all they may hold.
        slow = {"held": json.dumps({str(careless): 2}), "caps": json.dumps({str(careless): 2}), "share": 6}
        held_back = await webhook_step.read_in_turn(conn, 30, 5, turns=slow)
        # Holding one of their share of three, they may take two more: no more, however many are due.
        shared = await webhook_step.read_in_turn(
            conn, 30, 5, turns={"held": json.dumps({str(careless): 1}), "caps": "{}", "share": 3}
        )

    def owners(read: list[dict[str, object]]) -> list[tuple[str, int]]:
        return [(m["message"]["data"]["ownerId"], m["message"]["data"]["n"]) for m in read]  # type: ignore[index]

    assert owners(first) == [(str(careless), 0), (str(other), 0)]  # each user's first, the earliest due first
    assert held_back == []
    assert owners(shared) == [(str(careless), 1), (str(careless), 2)]
