"""`Idempotency-Key` on finalize and retry: replay, reuse with another body, in flight, release on
failure, abandoned claims, validation, per-user scope, expiry, and that users cannot see the keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from litestar.testing import transport as test_transport

from backend.app import create_app
from backend.auth.verify import UserClaims
from backend.db.pool import create_pool
from backend.db.units import Database, Recorder
from backend.errors import NotFound
from backend.http.idempotency import IdempotencyKeys, idempotent
from backend.http.pipeline.problem import problem_response
from backend.settings import settings_from_env
from devkit.db import Conn, one
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User
from tests.integration.api.test_clone_api import WAV, put_sample, upload_url
from tests.integration.api.test_reflections_api import advance, new_reflection, start_clone
from tests.support import acting_as, queue_messages

Client = AsyncTestClient  # type: ignore[type-arg]
#: Longest wait for a request sent in the background to be answered once nothing holds it back.
ANSWER_SECONDS = 30
#: How long a statement of the app's may wait here (VOICEGATE_DB_TIMEOUT, 1 s by default): a request the tests hold
#: on a reflection's row lock waits there while the test takes its next steps, however slowly a loaded machine
#: runs them, rather than being answered 503 when the default runs out.
LOCK_WAIT_S = 20


@pytest.fixture
async def client(db_dsn: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The API as the package's `client` serves it, its statements allowed `LOCK_WAIT_S`."""
    env = {"VOICEGATE_DATA_DIR": str(tmp_path), "VOICEGATE_DB_TIMEOUT": str(LOCK_WAIT_S)}
    settings = with_auth_keys(settings_from_env(env), {"SUPABASE_JWT_SECRET": JWT_SECRET})
    async with AsyncTestClient(app=create_app(settings, db_dsn, embedded=EMBEDDED)) as test_client:
        yield test_client


FAILED = {"status": "failed", "changes": {"last_error_code": "bad_audio", "last_error_message": "x"}}


def keyed(user: User, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


def count(sql: Conn, table: str) -> int:
    row = sql.execute(psycopg.sql.SQL("select count(*) from {}").format(psycopg.sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def keys(sql: Conn) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "select owner_id, route, key, state, response_status, claim_token from voicegate.idempotency_keys"
            " order by created_at, key"
        ).fetchall()


def send_in_background(client: Client, url: str, headers: dict[str, str]) -> asyncio.Future[httpx.Response]:
    """POST from a worker thread. The test client blocks its caller until the app (on the client's
    own loop, in another thread) answers, so a request that must stay in flight cannot come from here."""
    sync_client = httpx.Client(transport=test_transport.TestClientTransport(client), base_url=client.base_url)  # type: ignore[arg-type]  # duck-typed sync transport
    return asyncio.ensure_future(asyncio.to_thread(sync_client.post, url, headers=headers))


async def until(condition: Callable[[], bool]) -> None:
    """Wait until the app, running in the test client's thread, reaches a state seen in the database."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition was never reached")


@pytest.fixture
def lock_reflection(db_dsn: str) -> Iterator[Callable[[str], psycopg.Connection[Any]]]:
    """Hold a reflection's row lock in another transaction: a retry then waits inside its insert
    (the attempt trigger locks the reflection), after its key was claimed and before it completes."""
    conns: list[psycopg.Connection[Any]] = []

    def lock(reflection_id: str) -> psycopg.Connection[Any]:
        conn = psycopg.connect(db_dsn)
        conns.append(conn)
        conn.execute("select 1 from reflections where id = %s for update", (reflection_id,))
        return conn

    yield lock
    for conn in conns:
        conn.close()


async def failed_reflection(client: Client, sql: Conn, user: User) -> str:
    """A reflection of `user` whose only attempt failed, so it may be retried."""
    rid: str = (await new_reflection(client, user))["id"]
    advance(sql, start_clone(sql, user, rid), FAILED)
    return rid


async def uploaded_voice(client: Client, user: User) -> str:
    ticket = await upload_url(client, user)
    await put_sample(client, ticket, WAV)
    voice_id: str = ticket["voice_id"]
    return voice_id


async def test_finalize_replays_the_first_response_and_writes_nothing_new(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    voice_id = await uploaded_voice(client, alice)
    body = {"voice_id": voice_id, "name": "Ada", "transcript": "hello"}

    first = await client.post("/api/clone/finalize", json=body, headers=keyed(alice, "finalize-1"))
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    # The same request, spelled differently: keys reordered, other whitespace.
    same = f'{{ "transcript": "hello",  "name": "Ada", "voice_id": "{voice_id}" }}'.encode()
    for _ in range(2):
        replay = await client.post(
            "/api/clone/finalize",
            content=same,
            headers={**keyed(alice, "finalize-1"), "Content-Type": "application/json"},
        )
        assert replay.status_code == 202
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["content-type"] == "application/json"
        assert replay.content == first.content
    assert (count(sql, "voice_samples"), count(sql, "voice_clone_attempts")) == (1, 1)
    assert [m["message"]["attemptId"] for m in queue_messages(sql, "voice_clone_process")] == [
        first.json()["attempt_id"]
    ]
    assert [(k["owner_id"], k["route"], k["state"], k["response_status"]) for k in keys(sql)] == [
        (alice.id, "POST /api/clone/finalize", "completed", 202)
    ]

    # Without the header finalize is what it always was: a second finalize of the voice is a conflict.
    again = await client.post("/api/clone/finalize", json=body, headers=alice.headers)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert len(keys(sql)) == 1


async def test_the_same_key_with_another_body_is_422_and_writes_nothing(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    voice_id = await uploaded_voice(client, alice)
    first = await client.post(
        "/api/clone/finalize", json={"voice_id": voice_id, "name": "Ada"}, headers=keyed(alice, "k")
    )
    assert first.status_code == 202, first.text

    other = await client.post(
        "/api/clone/finalize", json={"voice_id": voice_id, "name": "Grace"}, headers=keyed(alice, "k")
    )
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["code"] == "idempotency_key_reused"
    assert one(sql, "select name from voices where id = %s", (voice_id,))["name"] == "Ada"
    assert (count(sql, "voice_samples"), count(sql, "voice_clone_attempts")) == (1, 1)
    assert [k["state"] for k in keys(sql)] == ["completed"]
    # The key still replays its own request.
    replay = await client.post(
        "/api/clone/finalize", json={"voice_id": voice_id, "name": "Ada"}, headers=keyed(alice, "k")
    )
    assert (replay.status_code, replay.content) == (202, first.content)


async def test_a_duplicate_while_the_first_is_in_flight_is_409_then_replays_once_it_is_done(
    client: Client,
    make_user: Callable[[], User],
    sql: Conn,
    lock_reflection: Callable[[str], psycopg.Connection[Any]],
) -> None:
    alice = make_user()
    rid = await failed_reflection(client, sql, alice)
    url = f"/v1/reflections/{rid}/voice/retry"
    blocker = lock_reflection(rid)
    first_task = send_in_background(client, url, keyed(alice, "retry-1"))
    await until(lambda: [k["state"] for k in keys(sql)] == ["in_flight"])

    duplicate = await client.post(url, headers=keyed(alice, "retry-1"))
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "idempotency_key_in_flight")
    assert not first_task.done()

    blocker.rollback()
    first = await asyncio.wait_for(first_task, ANSWER_SECONDS)
    assert first.status_code == 202, first.text
    assert count(sql, "voice_clone_attempts") == 2
    replay = await client.post(url, headers=keyed(alice, "retry-1"))
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (202, "true")
    assert replay.content == first.content
    assert count(sql, "voice_clone_attempts") == 2


async def test_an_abandoned_claim_is_taken_over_and_the_old_request_cannot_complete(
    client: Client,
    make_user: Callable[[], User],
    sql: Conn,
    lock_reflection: Callable[[str], psycopg.Connection[Any]],
) -> None:
    alice = make_user()
    rid = await failed_reflection(client, sql, alice)
    url = f"/v1/reflections/{rid}/voice/retry"
    blocker = lock_reflection(rid)
    stalled = send_in_background(client, url, keyed(alice, "k"))
    await until(lambda: len(keys(sql)) == 1)
    stalled_token = keys(sql)[0]["claim_token"]

    # Past the lease the claim counts as abandoned (its process presumed dead): a retry takes it over.
    sql.execute("update voicegate.idempotency_keys set created_at = now() - interval '61 seconds'")
    takeover = send_in_background(client, url, keyed(alice, "k"))
    await until(lambda: keys(sql)[0]["claim_token"] != stalled_token)

    blocker.rollback()
    late = await asyncio.wait_for(stalled, ANSWER_SECONDS)
    taken = await asyncio.wait_for(takeover, ANSWER_SECONDS)
    # Whichever reaches the database first, only the holder of the claim may take effect.
    assert (late.status_code, late.json()["code"]) == (409, "idempotency_key_in_flight")
    assert taken.status_code == 202, taken.text
    assert count(sql, "voice_clone_attempts") == 2
    active = one(sql, "select id from voice_clone_attempts where is_active")
    assert str(active["id"]) == taken.json()["id"]
    replay = await client.post(url, headers=keyed(alice, "k"))
    assert replay.content == taken.content


async def test_a_failed_request_does_not_use_up_its_key(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    ticket = await upload_url(client, alice)
    body = {"voice_id": ticket["voice_id"]}
    early = await client.post("/api/clone/finalize", json=body, headers=keyed(alice, "k"))
    assert (early.status_code, early.json()["code"]) == (422, "sample_not_uploaded")
    missing = await client.post("/api/clone/finalize", json={"voice_id": str(uuid.uuid4())}, headers=keyed(alice, "k"))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert keys(sql) == []

    await put_sample(client, ticket, WAV)
    done = await client.post("/api/clone/finalize", json=body, headers=keyed(alice, "k"))
    assert done.status_code == 202, done.text
    assert "idempotent-replayed" not in done.headers
    assert count(sql, "voice_clone_attempts") == 1


@pytest.mark.parametrize(
    "value",
    [b"", b"x" * 256, "café".encode(), b"a\x7fb", b"tab\there"],
    ids=["empty", "too-long", "non-ascii", "control", "tab"],
)
async def test_a_malformed_key_is_400_and_nothing_runs(
    client: Client, make_user: Callable[[], User], sql: Conn, value: bytes
) -> None:
    alice = make_user()
    rid = await failed_reflection(client, sql, alice)
    headers = [(b"authorization", f"Bearer {alice.token}".encode()), (b"idempotency-key", value)]
    response = await client.post(f"/v1/reflections/{rid}/voice/retry", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert (count(sql, "voice_clone_attempts"), keys(sql)) == (1, [])


async def test_a_key_of_255_printable_characters_is_accepted(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = await failed_reflection(client, sql, alice)
    key = ("a ~!" * 64)[:255]
    response = await client.post(f"/v1/reflections/{rid}/voice/retry", headers=keyed(alice, key))
    assert response.status_code == 202, response.text
    assert [k["key"] for k in keys(sql)] == [key]


async def test_keys_are_scoped_per_user_and_per_route(client: Client, make_user: Callable[[], User], sql: Conn) -> None:
    alice, bob = make_user(), make_user()
    alices, bobs = await failed_reflection(client, sql, alice), await failed_reflection(client, sql, bob)
    first = await client.post(f"/v1/reflections/{alices}/voice/retry", headers=keyed(alice, "shared"))
    assert first.status_code == 202, first.text

    # Bob with Alice's key on Alice's reflection: his own request, never her recorded response.
    snooping = await client.post(f"/v1/reflections/{alices}/voice/retry", headers=keyed(bob, "shared"))
    assert (snooping.status_code, snooping.json()["code"]) == (404, "not_found")
    own = await client.post(f"/v1/reflections/{bobs}/voice/retry", headers=keyed(bob, "shared"))
    assert own.status_code == 202, own.text
    assert "idempotent-replayed" not in own.headers
    assert own.json()["id"] != first.json()["id"]

    # Alice with the same key on another reflection (another route): a new request too.
    other = await failed_reflection(client, sql, alice)
    elsewhere = await client.post(f"/v1/reflections/{other}/voice/retry", headers=keyed(alice, "shared"))
    assert (elsewhere.status_code, elsewhere.json()["reflectionId"]) == (202, other)
    route = "POST /v1/reflections/{{reflection_id}}/voice/retry?reflection_id={}"
    assert {(k["owner_id"], k["route"]) for k in keys(sql)} == {
        (alice.id, route.format(alices)),
        (bob.id, route.format(bobs)),
        (alice.id, route.format(other)),
    }


async def test_an_expired_key_runs_again_and_the_purge_drops_only_expired_keys(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, bob = make_user(), make_user()
    rid = await failed_reflection(client, sql, alice)
    url = f"/v1/reflections/{rid}/voice/retry"
    first = await client.post(url, headers=keyed(alice, "k"))
    assert first.status_code == 202, first.text
    expire = "update voicegate.idempotency_keys set created_at = now() - interval '25 hours', expires_at = now()"
    sql.execute(expire)

    advance(sql, one(sql, "select * from voice_clone_attempts where is_active"), FAILED)
    again = await client.post(url, headers=keyed(alice, "k"))
    assert again.status_code == 202, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert [k["state"] for k in keys(sql)] == ["completed"]

    bobs = await failed_reflection(client, sql, bob)
    assert (await client.post(f"/v1/reflections/{bobs}/voice/retry", headers=keyed(bob, "k"))).status_code == 202
    sql.execute(expire + " where owner_id = %s", (alice.id,))
    assert sql.execute("select voicegate.purge_idempotency_keys()").fetchone() == (1,)
    assert [k["owner_id"] for k in keys(sql)] == [bob.id]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_users_cannot_read_or_write_the_keys(sql: Conn, make_user: Callable[[], User], role: str) -> None:
    alice = make_user()
    for statement in (
        "select * from voicegate.idempotency_keys",
        "delete from voicegate.idempotency_keys",
        "select voicegate.purge_idempotency_keys()",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(sql, role, alice.id) as conn:
            conn.execute(statement)


@post("/things/{n:int}", status_code=201)
async def make_thing(request: Request[Any, Any, Any], n: FromPath[int]) -> Response[dict[str, int]]:
    """A route whose service knows nothing of idempotency: it never calls its Recorder."""
    claims = UserClaims(
        sub=request.headers["x-user"], email=None, role="authenticated", aal=None, session_id=None, raw={}
    )
    calls: list[int] = request.app.state.calls

    async def action(record: Recorder | None) -> dict[str, int]:
        if n == 0:
            raise NotFound("No thing zero.")
        calls.append(n)
        return {"n": n, "call": len(calls)}

    return await idempotent(request, claims, action, body=str(n).encode())


async def test_a_service_that_never_records_still_gets_its_response_recorded(
    db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    pool = create_pool(db_dsn, settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)}).pool_limits)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open()
        app.state.idempotency_keys, app.state.calls = IdempotencyKeys(Database(pool)), []
        try:
            yield
        finally:
            await pool.close()

    app = Litestar(
        [make_thing], lifespan=[lifespan], exception_handlers={Exception: problem_response}, logging_config=None
    )
    alice = make_user()
    headers = {"X-User": str(alice.id), "Idempotency-Key": "k"}
    async with AsyncTestClient(app=app) as test_client:
        missing = await test_client.post("/things/0", headers=headers)
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        assert keys(sql) == []
        first = await test_client.post("/things/7", headers=headers)
        replay = await test_client.post("/things/7", headers=headers)
        assert (first.status_code, first.json()) == (201, {"n": 7, "call": 1})
        assert (replay.status_code, replay.content, replay.headers["idempotent-replayed"]) == (
            201,
            first.content,
            "true",
        )
        assert app.state.calls == [7]
    assert [(k["route"], k["state"], k["response_status"]) for k in keys(sql)] == [
        ("POST /things/{n}?n=7", "completed", 201)
    ]
