"""Row-level security, run as PostgREST runs a request: for every table, every kind of caller and
every verb, the expected allow or deny. A deny is either a refusal (SQLSTATE 42501: no privilege or
an RLS check failed) or a statement that sees and touches no row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from devkit.db import Conn, create_user, one, seed_consent, seed_reflection
from tests.support import acting_as, seed_attempt, seed_voice

CALLERS = ("anon", "other", "owner", "service_role")
VERBS = ("select", "insert", "update", "delete")


@dataclass(frozen=True)
class World:
    """One owner's rows of every table, plus a second user."""

    owner: uuid.UUID
    other: uuid.UUID
    rows: dict[str, Any]


@pytest.fixture(scope="module")
def world(module_db: Conn) -> World:
    """Committed once per module; every test below runs in a transaction that is rolled back."""
    db = module_db
    owner, other = create_user(db), create_user(db)
    consent = seed_consent(db, owner, "v1")
    voice = seed_voice(db, owner)
    reflection = seed_reflection(db, owner)
    sample = one(
        db,
        "insert into voice_samples (owner_id, consent_id, voice_id, object_path) values (%s, %s, %s, %s) returning id",
        (owner, consent, voice, f"{owner}/sample.wav"),
    )["id"]
    attempt = seed_attempt(db, owner, voice, reflection)["id"]
    event = one(db, "select id from voice_clone_attempt_events where attempt_id = %s limit 1", (attempt,))["id"]
    job = one(
        db,
        "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%s, %s, 'hello') returning id",
        (owner, voice),
    )["id"]
    db.execute(
        "insert into storage.objects (bucket_id, name, owner_id) values ('voice-samples', %s, %s)",
        (f"{owner}/sample.wav", str(owner)),
    )
    db.execute(
        "insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)"
        " values ('voice-samples', %s, repeat('0', 64), 1)",
        (f"{owner}/sample.wav",),
    )
    speech = one(
        db,
        "insert into speech_streams (owner_id, voice_id, provider, provider_voice_id, format, text_characters)"
        " values (%s, %s, 'local', 'local-x', 'wav', 5) returning id",
        (owner, voice),
    )["id"]
    db.execute(
        "insert into voicegate.user_creates (owner_id, kind, tokens, counted_at) values (%s, 'reflection', 3, now())",
        (owner,),
    )
    # Rows nothing refers to, for deletes: a foreign key must not be what decides the outcome.
    spare_consent = seed_consent(db, owner, "v0")
    rows = {
        "spare_consent": spare_consent,
        "spare_voice": seed_voice(db, owner, "Spare"),
        "consent": consent,
        "voice": voice,
        "reflection": reflection,
        "sample": sample,
        "attempt": attempt,
        "event": event,
        "job": job,
        "speech": speech,
        "object": f"{owner}/sample.wav",
    }
    return World(owner, other, rows)


# Per table: the statement for each verb, aimed at the owner's data. An insert has two forms: the
# owner's own (column defaults fill in `owner_id = auth.uid()`) and a targeted one naming the owner
# explicitly, which every other caller runs; None means the one form names the owner already.
STATEMENTS: dict[str, dict[str, tuple[str, str | None]]] = {
    "reflections": {
        "select": ("select id from reflections where id = %(reflection)s", None),
        "insert": (
            "insert into reflections (name) values ('new')",
            "insert into reflections (owner_id, name) values (%(owner)s, 'new')",
        ),
        "update": ("update reflections set name = 'renamed' where id = %(reflection)s", None),
        "delete": ("delete from reflections where id = %(reflection)s", None),
    },
    "voices": {
        "select": ("select id from voices where id = %(voice)s", None),
        "insert": (
            "insert into voices (name) values ('new')",
            "insert into voices (owner_id, name) values (%(owner)s, 'new')",
        ),
        "update": ("update voices set name = 'renamed' where id = %(voice)s", None),
        "delete": ("delete from voices where id = %(spare_voice)s", None),
    },
    "voice_consents": {
        "select": ("select id from voice_consents where id = %(consent)s", None),
        "insert": (
            "insert into voice_consents (subject_name, consent_text_version) values ('Ada', 'v2')",
            "insert into voice_consents (owner_id, subject_name, consent_text_version) values (%(owner)s, 'Ada', 'v2')",
        ),
        "update": ("update voice_consents set subject_name = 'Eve' where id = %(consent)s", None),
        "delete": ("delete from voice_consents where id = %(spare_consent)s", None),
    },
    "voice_samples": {
        "select": ("select id from voice_samples where id = %(sample)s", None),
        "insert": (
            "insert into voice_samples (consent_id, object_path) values (%(consent)s, %(owner)s || '/second.wav')",
            "insert into voice_samples (owner_id, consent_id, object_path)"
            " values (%(owner)s, %(consent)s, %(owner)s || '/second.wav')",
        ),
        "update": ("update voice_samples set transcript = 'x' where id = %(sample)s", None),
        "delete": ("delete from voice_samples where id = %(sample)s", None),
    },
    "voice_clone_attempts": {
        "select": ("select id from voice_clone_attempts where id = %(attempt)s", None),
        "insert": (
            "insert into voice_clone_attempts (owner_id, voice_id, provider, source)"
            " values (%(owner)s, %(voice)s, 'local', 'sample_upload')",
            None,
        ),
        "update": ("update voice_clone_attempts set status = 'ready' where id = %(attempt)s", None),
        "delete": ("delete from voice_clone_attempts where id = %(attempt)s", None),
    },
    "voice_clone_attempt_events": {
        "select": ("select id from voice_clone_attempt_events where id = %(event)s", None),
        "insert": (
            "insert into voice_clone_attempt_events (attempt_id, owner_id, dimension, actor)"
            " values (%(attempt)s, %(owner)s, 'data', 'me')",
            None,
        ),
        "update": ("update voice_clone_attempt_events set actor = 'me' where id = %(event)s", None),
        "delete": ("delete from voice_clone_attempt_events where id = %(event)s", None),
    },
    "synthesis_jobs": {
        "select": ("select id from synthesis_jobs where id = %(job)s", None),
        "insert": (
            "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%(owner)s, %(voice)s, 'hi')",
            None,
        ),
        "update": (
            "update synthesis_jobs set status = 'processing', lease_owner = 'me', lease_expires_at = now()"
            " where id = %(job)s",
            None,
        ),
        "delete": ("delete from synthesis_jobs where id = %(job)s", None),
    },
    "speech_streams": {
        "select": ("select id from speech_streams where id = %(speech)s", None),
        "insert": (
            "insert into speech_streams (owner_id, voice_id, provider, provider_voice_id, format, text_characters)"
            " values (%(owner)s, %(voice)s, 'local', 'local-y', 'mp3', 3)",
            None,
        ),
        "update": ("update speech_streams set audio_ms = 1 where id = %(speech)s", None),
        "delete": ("delete from speech_streams where id = %(speech)s", None),
    },
    "storage.objects": {
        "select": ("select id from storage.objects where name = %(object)s", None),
        "insert": (
            "insert into storage.objects (bucket_id, name, owner_id)"
            " values ('voice-samples', %(owner)s || '/new.wav', auth.uid()::text)",
            "insert into storage.objects (bucket_id, name) values ('voice-samples', %(owner)s || '/new.wav')",
        ),
        "update": ("update storage.objects set user_metadata = '{}' where name = %(object)s", None),
        "delete": ("delete from storage.objects where name = %(object)s", None),
    },
    "voicegate.service_written_objects": {
        "select": ("select name from voicegate.service_written_objects where name = %(object)s", None),
        "insert": (
            "insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)"
            " values ('voice-renders', %(owner)s || '/renders/x.wav', repeat('1', 64), 1)",
            None,
        ),
        "update": (
            "update voicegate.service_written_objects set sha256 = repeat('1', 64) where name = %(object)s",
            None,
        ),
        "delete": ("delete from voicegate.service_written_objects where name = %(object)s", None),
    },
    "voicegate.user_creates": {
        "select": ("select tokens from voicegate.user_creates where owner_id = %(owner)s", None),
        "insert": (
            "insert into voicegate.user_creates (owner_id, kind, tokens, counted_at)"
            " values (%(owner)s, 'voice', 300, now())",
            None,
        ),
        "update": ("update voicegate.user_creates set tokens = 300 where owner_id = %(owner)s", None),
        "delete": ("delete from voicegate.user_creates where owner_id = %(owner)s", None),
    },
}

# What the owner may do; other callers may do nothing, the service everything.
OWNER_ALLOWED = {
    "reflections": {"select", "insert", "update", "delete"},
    "voices": {"select", "insert", "update"},
    "voice_consents": {"select", "insert"},
    "voice_samples": {"select", "insert"},
    "voice_clone_attempts": {"select"},
    "voice_clone_attempt_events": {"select"},
    "synthesis_jobs": {"select"},
    "speech_streams": {"select"},
    # Owners read their folder; what they upload comes through a URL the service signed (written as
    # superuser), and everything else there is written by the service.
    "storage.objects": {"select"},
    "voicegate.service_written_objects": set(),
    # A user who could write their create buckets would lift their own limits.
    "voicegate.user_creates": set(),
}
# What the service may not do either: a user's create buckets go with the user (on delete cascade), not one by one.
SERVICE_DENIED = {"voicegate.user_creates": {"delete"}}


def expected(table: str, caller: str, verb: str) -> bool:
    if caller == "service_role":
        return verb not in SERVICE_DENIED.get(table, set())
    if caller == "owner":
        return verb in OWNER_ALLOWED[table]
    return False


def attempt(conn: Conn, query: str, params: dict[str, Any]) -> bool:
    """True if the statement was allowed and touched (or saw) at least one row."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(query, params)  # type: ignore[arg-type]  # fixed test SQL
            return cur.rowcount > 0
    except psycopg.errors.InsufficientPrivilege:
        return False


CASES = [(table, caller, verb) for table in STATEMENTS for caller in CALLERS for verb in VERBS]


@pytest.mark.parametrize(("table", "caller", "verb"), CASES, ids=["-".join(c) for c in CASES])
def test_rls_matrix(module_db: Conn, world: World, table: str, caller: str, verb: str) -> None:
    user_form, service_form = STATEMENTS[table][verb]
    query = user_form if caller == "owner" else service_form or user_form
    params = {**world.rows, "owner": world.owner}
    role = {"anon": "anon", "service_role": "service_role"}.get(caller, "authenticated")
    user = {"owner": world.owner, "other": world.other}.get(caller)
    with acting_as(module_db, role, user):
        if table.startswith("storage."):
            # As the Storage API runs every request; without it protect_delete refuses any delete.
            module_db.execute("select set_config('storage.allow_delete_query', 'true', true)")
        assert attempt(module_db, query, params) is expected(table, caller, verb)


WRITE_PROTECTED_COLUMNS = [
    ("reflections", "voice", '\'{"cloneStatus": "ready"}\'::jsonb', "reflection"),
    ("reflections", "voice_id", "null", "reflection"),
    ("reflections", "owner_id", "%(other)s", "reflection"),
    ("voices", "status", "'ready'", "voice"),
    ("voices", "provider_voice_id", "'stolen'", "voice"),
    ("voices", "deleted_at", "now()", "voice"),
    ("voice_samples", "status", "'ready'", "sample"),
    ("voice_samples", "quality_report", "'{}'", "sample"),
]


@pytest.mark.parametrize(("table", "column", "value", "row"), WRITE_PROTECTED_COLUMNS)
def test_owner_cannot_write_service_columns(
    module_db: Conn, world: World, table: str, column: str, value: str, row: str
) -> None:
    query = f"update {table} set {column} = {value} where id = %(id)s"
    with acting_as(module_db, "authenticated", world.owner):
        assert attempt(module_db, query, {"id": world.rows[row], "other": world.other}) is False


def test_other_user_cannot_register_a_sample_in_owners_folder_or_under_owners_consent(
    module_db: Conn, world: World
) -> None:
    db = module_db
    with db.transaction(force_rollback=True):
        own_consent = seed_consent(db, world.other)
        insert = "insert into voice_samples (consent_id, object_path) values (%(consent)s, %(path)s)"
        with acting_as(db, "authenticated", world.other):
            assert attempt(db, insert, {"consent": own_consent, "path": f"{world.other}/mine.wav"}) is True
            assert attempt(db, insert, {"consent": own_consent, "path": f"{world.owner}/theirs.wav"}) is False
            assert attempt(db, insert, {"consent": world.rows["consent"], "path": f"{world.other}/x.wav"}) is False


def test_soft_deleted_voice_is_hidden_from_its_owner(module_db: Conn, world: World) -> None:
    with module_db.transaction(force_rollback=True):
        with acting_as(module_db, "authenticated", world.owner):
            assert attempt(module_db, "select 1 from voices where id = %(voice)s", world.rows) is True
        module_db.execute("update voices set deleted_at = now() where id = %s", (world.rows["voice"],))
        with acting_as(module_db, "authenticated", world.owner):
            assert attempt(module_db, "select 1 from voices where id = %(voice)s", world.rows) is False


def test_owner_sees_only_own_rows_when_listing(module_db: Conn, world: World) -> None:
    with module_db.transaction(force_rollback=True):
        seed_reflection(module_db, world.other, "Bob's")
        with acting_as(module_db, "authenticated", world.owner):
            owners = {r[0] for r in module_db.execute("select owner_id from reflections").fetchall()}
        with acting_as(module_db, "authenticated", world.other):
            others = {r[0] for r in module_db.execute("select owner_id from reflections").fetchall()}
    assert owners == {world.owner}
    assert others == {world.other}


def test_api_roles_cannot_call_lifecycle_functions(module_db: Conn, world: World) -> None:
    for role, user in (("anon", None), ("authenticated", world.owner)):
        with acting_as(module_db, role, user), pytest.raises(psycopg.errors.InsufficientPrivilege):
            module_db.execute("select voicegate.transition_attempt(%s, 1, 'x', 'canceled')", (world.rows["attempt"],))


def test_a_projects_own_broad_write_policies_do_not_open_voicegates_buckets(module_db: Conn, world: World) -> None:
    db = module_db
    with db.transaction(force_rollback=True):
        # What many projects have: any signed-in user may write objects, anywhere.
        db.execute("insert into storage.buckets (id, name) values ('avatars', 'avatars')")
        for verb, clause in (("insert", "with check (true)"), ("update", "using (true)"), ("delete", "using (true)")):
            db.execute(f"create policy broad_{verb} on storage.objects for {verb} to authenticated {clause}")
        with acting_as(db, "authenticated", world.owner):
            db.execute("select set_config('storage.allow_delete_query', 'true', true)")
            params = {"object": world.rows["object"], "owner": world.owner}
            assert attempt(db, "insert into storage.objects (bucket_id, name) values ('avatars', 'a.png')", {}) is True
            assert attempt(db, STATEMENTS["storage.objects"]["insert"][0], params) is False
            assert attempt(db, STATEMENTS["storage.objects"]["update"][0], params) is False
            assert attempt(db, STATEMENTS["storage.objects"]["delete"][0], params) is False
