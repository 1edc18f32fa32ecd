"""The attempt lifecycle in SQL: legal and illegal moves, version and lease fencing, supersede, the
mirror, late completions and launch readiness. Each test runs in a rolled-back transaction on a
database shared by the module (nothing here needs a commit)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from devkit.db import Conn, create_user, one, seed_reflection
from tests.support import mirror, seed_attempt, seed_voice, transition

STATES = {
    "status": ["queued", "processing", "verifying", "ready", "failed", "canceled", "superseded"],
    "runtime": ["pending", "syncing", "synced", "sync_failed"],
    "preview": ["not_required", "pending", "generating", "ready", "completed"],
}

# The specification of the lifecycle: DESIGN.md §2 plus retries (back to queued) and late results.
LEGAL = {
    ("status", "queued", "processing"),
    ("status", "queued", "failed"),
    ("status", "queued", "canceled"),
    ("status", "queued", "superseded"),
    ("status", "processing", "queued"),
    ("status", "processing", "verifying"),
    ("status", "processing", "failed"),
    ("status", "processing", "canceled"),
    ("status", "processing", "superseded"),
    ("status", "verifying", "queued"),
    ("status", "verifying", "ready"),
    ("status", "verifying", "failed"),
    ("status", "verifying", "canceled"),
    ("status", "verifying", "superseded"),
    ("status", "ready", "superseded"),
    ("status", "superseded", "verifying"),
    ("status", "superseded", "ready"),
    ("status", "superseded", "failed"),
    ("runtime", "pending", "syncing"),
    ("runtime", "syncing", "synced"),
    ("runtime", "syncing", "sync_failed"),
    ("runtime", "sync_failed", "syncing"),
    ("preview", "pending", "generating"),
    ("preview", "generating", "pending"),
    ("preview", "generating", "ready"),
    ("preview", "ready", "generating"),
    ("preview", "ready", "completed"),
}
ILLEGAL = sorted(
    (dim, a, b) for dim, states in STATES.items() for a in states for b in states if (dim, a, b) not in LEGAL
)
WORKER = "worker-1"


@dataclass
class Scene:
    """One user's voice and reflection, inside the test's transaction."""

    conn: Conn
    owner: uuid.UUID
    voice: uuid.UUID
    reflection: uuid.UUID

    def new_attempt(self, *, preview_required: bool = True, reflection: bool = True) -> dict[str, Any]:
        return seed_attempt(
            self.conn,
            self.owner,
            self.voice,
            self.reflection if reflection else None,
            preview_required=preview_required,
        )

    def move(self, attempt: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return transition(self.conn, attempt["id"], attempt["version"], **kwargs)

    def claim(self, attempt: dict[str, Any]) -> dict[str, Any]:
        return self.move(attempt, status="processing", changes={"lease_owner": WORKER, "lease_seconds": 60})

    def to_ready(self, attempt: dict[str, Any]) -> dict[str, Any]:
        attempt = self.claim(attempt)
        attempt = self.move(
            attempt,
            status="verifying",
            lease_owner=WORKER,
            changes={"provider_voice_id": "pv-1", "provider_target_model": "m-1"},
        )
        return self.move(attempt, status="ready", lease_owner=WORKER)

    def reread(self, attempt: dict[str, Any]) -> dict[str, Any]:
        return one(self.conn, "select * from voice_clone_attempts where id = %s", (attempt["id"],))

    def readiness(self) -> tuple[bool, list[str]]:
        row = one(self.conn, "select ready, reasons from voice_launch_readiness(%s)", (self.reflection,))
        return row["ready"], row["reasons"]

    def drive(self, dimension: str, state: str) -> dict[str, Any]:
        """A fresh attempt brought to `state` in `dimension` by legal moves only."""
        if dimension == "status":
            return self._drive_status(state)
        if dimension == "preview" and state == "not_required":
            return self.to_ready(self.new_attempt(preview_required=False))
        attempt = self.to_ready(self.new_attempt())
        paths = {
            "runtime": {
                "pending": [],
                "syncing": ["syncing"],
                "synced": ["syncing", "synced"],
                "sync_failed": ["syncing", "sync_failed"],
            },
            "preview": {
                "pending": [],
                "generating": ["generating"],
                "ready": ["generating", "ready"],
                "completed": ["generating", "ready", "completed"],
            },
        }
        for step in paths[dimension][state]:
            attempt = self.move(attempt, **{dimension: step})
        return attempt

    def _drive_status(self, state: str) -> dict[str, Any]:
        attempt = self.new_attempt()
        if state == "queued":
            return attempt
        if state == "superseded":
            # A worker holds it when a newer attempt arrives: the shape of a late completion.
            claimed = self.claim(attempt)
            self.new_attempt()
            return self.reread(claimed)
        if state in ("failed", "canceled"):
            return self.move(attempt, status=state, changes={"last_error_code": "x", "last_error_message": "y"})
        attempt = self.claim(attempt)
        if state == "processing":
            return attempt
        attempt = self.move(attempt, status="verifying", lease_owner=WORKER)
        if state == "verifying":
            return attempt
        return self.move(attempt, status="ready", lease_owner=WORKER)


@pytest.fixture
def scene(module_db: Conn) -> Iterator[Scene]:
    with module_db.transaction(force_rollback=True):
        owner = create_user(module_db)
        yield Scene(module_db, owner, seed_voice(module_db, owner), seed_reflection(module_db, owner))


def test_move_table_in_the_database_is_the_specification(module_db: Conn) -> None:
    rows = module_db.execute("select dimension, from_state, to_state from voicegate.attempt_moves").fetchall()
    assert set(rows) == LEGAL


def move_kwargs(dimension: str, to_state: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {dimension: to_state}
    if (dimension, to_state) == ("status", "processing"):
        kwargs["changes"] = {"lease_owner": "worker-2", "lease_seconds": 60}
    return kwargs


@pytest.mark.parametrize(("dimension", "from_state", "to_state"), sorted(LEGAL))
def test_every_legal_move_is_applied_with_an_event(
    scene: Scene, dimension: str, from_state: str, to_state: str
) -> None:
    attempt = scene.drive(dimension, from_state)
    column = {"status": "status", "runtime": "runtime_status", "preview": "preview_status"}[dimension]
    assert attempt[column] == from_state

    moved = scene.move(attempt, **move_kwargs(dimension, to_state))

    assert moved[column] == to_state
    assert moved["version"] == attempt["version"] + 1
    event = one(
        scene.conn,
        "select * from voice_clone_attempt_events where attempt_id = %s order by id desc limit 1",
        (attempt["id"],),
    )
    assert (event["dimension"], event["from_state"], event["to_state"]) == (dimension, from_state, to_state)


@pytest.mark.parametrize(("dimension", "from_state", "to_state"), ILLEGAL)
def test_every_illegal_move_is_refused_and_changes_nothing(
    scene: Scene, dimension: str, from_state: str, to_state: str
) -> None:
    attempt = scene.drive(dimension, from_state)
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        scene.move(attempt, **move_kwargs(dimension, to_state))
    assert refused.value.sqlstate == "VG422"
    assert scene.reread(attempt) == attempt


def test_a_stale_version_is_refused(scene: Scene) -> None:
    attempt = scene.claim(scene.new_attempt())
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        transition(scene.conn, attempt["id"], attempt["version"] - 1, status="verifying")
    assert refused.value.sqlstate == "VG409"
    assert scene.reread(attempt)["status"] == "processing"


@pytest.mark.parametrize("lease_owner", ["worker-2", None])
def test_only_the_lease_holder_may_move_a_leased_attempt_by_lease(scene: Scene, lease_owner: str | None) -> None:
    attempt = scene.claim(scene.new_attempt())
    scene.conn.execute(
        "update voice_clone_attempts set lease_owner = %s where id = %s",
        (lease_owner or "someone-else", attempt["id"]),
    )
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        scene.move(attempt, status="verifying", lease_owner=WORKER)
    assert refused.value.sqlstate == "VG423"


def test_an_expired_lease_no_longer_fences_in_its_holder(scene: Scene) -> None:
    attempt = scene.claim(scene.new_attempt())
    scene.conn.execute(
        "update voice_clone_attempts set lease_expires_at = now() - interval '1 second' where id = %s",
        (attempt["id"],),
    )
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        scene.move(attempt, status="verifying", lease_owner=WORKER)
    assert refused.value.sqlstate == "VG423"


def test_a_stale_worker_cannot_overwrite_the_result_of_the_worker_that_reclaimed(scene: Scene) -> None:
    first = scene.claim(scene.new_attempt())
    retried = scene.move(first, status="queued", lease_owner=WORKER, changes={"increment_retry": True})
    second = scene.move(retried, status="processing", changes={"lease_owner": "worker-2", "lease_seconds": 60})
    done = scene.move(second, status="verifying", lease_owner="worker-2", changes={"provider_voice_id": "pv-2"})
    for version in (first["version"], done["version"]):
        with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
            transition(scene.conn, first["id"], version, status="failed", lease_owner=WORKER)
        assert refused.value.sqlstate in {"VG409", "VG423"}
    assert scene.reread(first)["provider_voice_id"] == "pv-2"


def test_unknown_change_and_missing_claim_lease_are_refused(scene: Scene) -> None:
    attempt = scene.new_attempt()
    for kwargs in ({"changes": {"status": "ready"}}, {"status": "processing"}):
        with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
            scene.move(attempt, **kwargs)
        assert refused.value.sqlstate == "VG400"


def test_missing_attempt_is_reported(scene: Scene) -> None:
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        transition(scene.conn, uuid.uuid4(), 1, status="processing")
    assert refused.value.sqlstate == "VG404"


def test_an_attempt_must_belong_to_the_owner_of_its_voice_and_reflection(scene: Scene) -> None:
    stranger = create_user(scene.conn)
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        seed_attempt(scene.conn, stranger, scene.voice, None)
    assert refused.value.sqlstate == "VG403"
    foreign_voice = seed_voice(scene.conn, stranger)
    with pytest.raises(psycopg.Error) as refused, scene.conn.transaction():
        seed_attempt(scene.conn, stranger, foreign_voice, scene.reflection)
    assert refused.value.sqlstate == "VG403"


def test_the_mirror_follows_the_active_attempt_at_every_step(scene: Scene) -> None:
    attempt = scene.new_attempt()
    steps = [
        {"status": "processing", "changes": {"lease_owner": WORKER, "lease_seconds": 60}},
        {"status": "verifying", "lease_owner": WORKER, "changes": {"provider_voice_id": "pv-9"}},
        {"status": "ready", "lease_owner": WORKER},
        {"runtime": "syncing"},
        {"runtime": "synced"},
        {"preview": "generating"},
        {"preview": "ready"},
        {"preview": "completed"},
    ]
    for step in [{}, *steps]:
        if step:
            attempt = scene.move(attempt, **step)
        voice = mirror(scene.conn, scene.reflection)
        assert voice["attemptId"] == str(attempt["id"])
        assert voice["version"] == attempt["version"]
        assert (
            voice["cloneStatus"],
            voice["runtimeStatus"],
            voice["previewStatus"],
            voice["previewRequired"],
        ) == (
            attempt["status"],
            attempt["runtime_status"],
            attempt["preview_status"],
            attempt["preview_required"],
        )
    assert voice["providerVoiceId"] == "pv-9"
    assert voice["provider"] == "local"
    row = one(scene.conn, "select status, provider_voice_id from voices where id = %s", (scene.voice,))
    assert row == {"status": "ready", "provider_voice_id": "pv-9"}


def test_a_new_attempt_supersedes_the_active_one(scene: Scene) -> None:
    first = scene.to_ready(scene.new_attempt())
    second = scene.new_attempt()
    old = scene.reread(first)
    assert (old["is_active"], old["status"]) == (False, "superseded")
    assert mirror(scene.conn, scene.reflection)["attemptId"] == str(second["id"])
    active = scene.conn.execute(
        "select count(*) from voice_clone_attempts where reflection_id = %s and is_active",
        (scene.reflection,),
    ).fetchone()
    assert active == (1,)
    with pytest.raises(psycopg.errors.UniqueViolation), scene.conn.transaction():
        scene.conn.execute("update voice_clone_attempts set is_active = true where id = %s", (first["id"],))


def test_a_late_ready_on_a_superseded_attempt_leaves_mirror_and_readiness_alone(scene: Scene) -> None:
    late = scene.drive("status", "superseded")
    current = scene.to_ready(
        one(
            scene.conn,
            "select * from voice_clone_attempts where reflection_id = %s and is_active",
            (scene.reflection,),
        )
    )
    mirror_before, readiness_before = mirror(scene.conn, scene.reflection), scene.readiness()

    late = scene.move(late, status="verifying", lease_owner=WORKER, changes={"provider_voice_id": "pv-late"})
    late = scene.move(late, status="ready", lease_owner=WORKER)

    assert (late["status"], late["is_active"], late["provider_voice_id"]) == ("ready", False, "pv-late")
    assert mirror(scene.conn, scene.reflection) == mirror_before
    assert mirror_before["attemptId"] == str(current["id"])
    assert scene.readiness() == readiness_before
    event = one(
        scene.conn,
        "select detail from voice_clone_attempt_events where attempt_id = %s and to_state = 'ready'",
        (late["id"],),
    )
    assert event["detail"]["late"] is True
    voice = one(scene.conn, "select provider_voice_id from voices where id = %s", (scene.voice,))
    assert voice["provider_voice_id"] == "pv-1"


def readiness_after(scene: Scene, steps: list[dict[str, Any]], *, preview_required: bool = True) -> list[str]:
    attempt = scene.new_attempt(preview_required=preview_required)
    for step in steps:
        attempt = scene.to_ready(attempt) if step == {"ready": True} else scene.move(attempt, **step)
    ready, reasons = scene.readiness()
    assert ready is (reasons == [])
    return reasons


READY = {"ready": True}
FAIL = {"status": "failed", "changes": {"last_error_code": "bad_audio", "last_error_message": "no speech"}}


@pytest.mark.parametrize(
    ("steps", "preview_required", "reasons"),
    [
        ([], True, ["clone_not_ready", "runtime_not_synced", "preview_required"]),
        ([FAIL], True, ["clone_not_ready", "runtime_not_synced", "preview_required"]),
        ([READY], True, ["runtime_not_synced", "preview_required"]),
        ([READY, {"runtime": "syncing"}], True, ["runtime_not_synced", "preview_required"]),
        (
            [READY, {"runtime": "syncing"}, {"runtime": "sync_failed"}],
            True,
            ["runtime_not_synced", "preview_required"],
        ),
        ([READY, {"runtime": "syncing"}, {"runtime": "synced"}], True, ["preview_required"]),
        (
            [
                READY,
                {"runtime": "syncing"},
                {"runtime": "synced"},
                {"preview": "generating"},
                {"preview": "ready"},
            ],
            True,
            ["preview_required"],
        ),
        (
            [
                READY,
                {"runtime": "syncing"},
                {"runtime": "synced"},
                {"preview": "generating"},
                {"preview": "ready"},
                {"preview": "completed"},
            ],
            True,
            [],
        ),
        (
            [READY, {"preview": "generating"}, {"preview": "ready"}, {"preview": "completed"}],
            True,
            ["runtime_not_synced"],
        ),
        ([READY], False, ["runtime_not_synced"]),
        ([READY, {"runtime": "syncing"}, {"runtime": "synced"}], False, []),
        ([], False, ["clone_not_ready", "runtime_not_synced"]),
    ],
)
def test_readiness_reasons_are_exact(
    scene: Scene, steps: list[dict[str, Any]], preview_required: bool, reasons: list[str]
) -> None:
    assert readiness_after(scene, steps, preview_required=preview_required) == reasons


def test_readiness_without_any_attempt(scene: Scene) -> None:
    assert scene.readiness() == (False, ["no_voice"])
