"""`/v1/webhooks`: an endpoint's secret is shown once (a Standard Webhooks `whsec_`), never again; each
user sees and deletes only their own; a URL deliveries could not or must not go to is refused with
nothing written; production refuses private addresses (SSRF), embedded mode accepts loopback http."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import settings_from_env
from backend.webhooks.service import MAX_ENDPOINTS
from backend.webhooks.types import EVENT_TYPES
from devkit.certs import make_chain
from devkit.db import Conn, one
from standins.dev_tokens import mint_service_key
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET, User
from tests.support import acting_as

Client = AsyncTestClient  # type: ignore[type-arg]
RECEIVER = "http://127.0.0.1:9/hooks/voicegate"


async def create(client: Client, user: User, **body: Any) -> Any:
    return await client.post("/v1/webhooks", json={"url": RECEIVER, **body}, headers=user.headers)


def stored(sql: Conn) -> dict[str, int]:
    return one(
        sql,
        "select (select count(*) from webhook_endpoints) as endpoints,"
        " (select count(*) from voicegate.webhook_secrets) as secrets",
    )


async def test_the_secret_is_shown_once_and_stored_apart(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()

    created = await create(client, user)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == RECEIVER
    assert body["events"] == list(EVENT_TYPES)
    assert (body["disabledAt"], body["disabledReason"], body["failingSince"]) == (None, None, None)
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    listed = (await client.get("/v1/webhooks", headers=user.headers)).json()["endpoints"]
    one_of = (await client.get(f"/v1/webhooks/{body['id']}", headers=user.headers)).json()
    assert listed == [one_of] == [{key: value for key, value in body.items() if key != "secret"}]
    assert body["secret"] not in (await client.get("/v1/webhooks", headers=user.headers)).text
    assert one(sql, "select secret from voicegate.webhook_secrets where endpoint_id = %s", (body["id"],)) == {
        "secret": body["secret"]
    }


async def test_the_owner_sees_why_an_endpoint_was_disabled_and_since_when_it_fails(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    endpoint_id = (await create(client, user)).json()["id"]
    sql.execute(
        "update webhook_endpoints set failing_since = '2026-11-20T08:00:00Z', disabled_at = '2026-11-23T08:00:05Z',"
        " disabled_reason = 'failing' where id = %s",
        (endpoint_id,),
    )

    [listed] = (await client.get("/v1/webhooks", headers=user.headers)).json()["endpoints"]

    assert listed["disabledReason"] == "failing"
    assert listed["failingSince"].startswith("2026-11-20T08:00:00")
    assert listed["disabledAt"].startswith("2026-11-23T08:00:05")


async def test_an_endpoint_may_choose_its_events(client: Client, make_user: Callable[[], User]) -> None:
    created = await create(client, make_user(), events=["synthesis.failed", "voice.ready"])

    assert created.status_code == 201, created.text
    assert created.json()["events"] == ["voice.ready", "synthesis.failed"]


async def test_each_user_sees_and_deletes_only_their_own(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    owner, stranger = make_user(), make_user()
    endpoint_id = (await create(client, owner)).json()["id"]

    assert (await client.get("/v1/webhooks", headers=stranger.headers)).json() == {"endpoints": []}
    assert (await client.get(f"/v1/webhooks/{endpoint_id}", headers=stranger.headers)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{endpoint_id}", headers=stranger.headers)).status_code == 404
    with acting_as(sql, "authenticated", stranger.id):
        assert one(sql, "select count(*) as n from webhook_endpoints")["n"] == 0
    with acting_as(sql, "authenticated", owner.id):
        assert one(sql, "select count(*) as n from webhook_endpoints")["n"] == 1
    assert stored(sql) == {"endpoints": 1, "secrets": 1}

    assert (await client.delete(f"/v1/webhooks/{endpoint_id}", headers=owner.headers)).status_code == 204

    assert stored(sql) == {"endpoints": 0, "secrets": 0}
    assert (await client.get(f"/v1/webhooks/{endpoint_id}", headers=owner.headers)).status_code == 404
    assert (await client.get("/v1/webhooks")).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "http://hooks.example.com/x"}, 422, "webhook_url_refused"),
        ({"url": "https://user:pw@hooks.example.com/x"}, 422, "webhook_url_refused"),
        ({"url": "ftp://hooks.example.com/x"}, 422, "webhook_url_refused"),
        ({"events": ["voice.deleted"]}, 400, "validation_failed"),
        ({"events": []}, 400, "validation_failed"),
        ({"events": ["voice.ready", "voice.ready"]}, 400, "validation_failed"),
        ({"secret": "whsec_mine"}, 400, "validation_failed"),
    ],
)
async def test_a_bad_endpoint_is_refused_and_nothing_is_written(
    client: Client, make_user: Callable[[], User], sql: Conn, body: dict[str, Any], status: int, code: str
) -> None:
    refused = await create(client, make_user(), **body)

    assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
    assert stored(sql) == {"endpoints": 0, "secrets": 0}


async def test_a_user_has_at_most_ten_endpoints(client: Client, make_user: Callable[[], User], sql: Conn) -> None:
    user = make_user()
    for _ in range(MAX_ENDPOINTS):
        assert (await create(client, user)).status_code == 201

    refused = await create(client, user)

    assert (refused.status_code, refused.json()["code"]) == (409, "conflict")
    assert stored(sql) == {"endpoints": MAX_ENDPOINTS, "secrets": MAX_ENDPOINTS}
    assert (await create(client, make_user())).status_code == 201


@pytest.fixture
async def production(db_dsn: str, tmp_path: Path) -> AsyncIterator[Client]:
    """The app as on a Supabase project (DATABASE_URL set, a configured C2PA chain)."""
    chain = make_chain("ec").write(tmp_path / "c2pa")
    env = {**chain, "DATABASE_URL": "postgresql://voicegate@db.example.com/postgres"}
    auth = {"SUPABASE_JWT_SECRET": JWT_SECRET, "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(JWT_SECRET)}
    settings = with_auth_keys(settings_from_env(env), auth)
    async with AsyncTestClient(app=create_app(settings, db_dsn, embedded=EMBEDDED)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hooks", "loopback"),
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://10.1.2.3/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::ffff:192.168.0.1]/hooks", "private"),
        ("https://localhost/hooks", "localhost resolves to loopback"),
        # IPv6 forms that reach a private IPv4 address, and an IETF protocol assignment.
        ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64
        ("https://[64:ff9b::7f00:1]/", "loopback"),
        ("https://[2002:a9fe:a9fe::]/", "6to4 (2002::/16"),
        ("https://[::127.0.0.1]/", "IPv4-compatible (::/96"),
        ("https://[2001:0:808:808::f5ff:fffe]/", "Teredo (2001::/32"),  # client 10.0.0.1
        ("https://192.0.0.8/", "192.0.0.8/32"),
        # Issue 45: accepted while Python's `is_global` decided.
        ("https://[fec0::1]/", "site-local (fec0::/10"),
        ("https://[feff::1]/", "site-local (fec0::/10"),
        ("https://[3fff::1]/", "documentation (3fff::/20, RFC 9637)"),
        ("https://[5f00::1]/", "SRv6 SIDs (5f00::/16, RFC 9602)"),
        ("https://192.88.99.1/", "6to4 relay anycast (192.88.99.0/24, RFC 7526)"),
    ],
)
async def test_production_refuses_private_addresses(
    production: Client, make_user: Callable[[], User], sql: Conn, url: str, why: str
) -> None:
    refused = await production.post("/v1/webhooks", json={"url": url}, headers=make_user().headers)

    assert (refused.status_code, refused.json()["code"]) == (422, "webhook_url_refused"), refused.text
    assert why in refused.json()["detail"]
    assert stored(sql) == {"endpoints": 0, "secrets": 0}


async def test_production_accepts_a_public_address(production: Client, make_user: Callable[[], User]) -> None:
    created = await production.post(
        "/v1/webhooks", json={"url": "https://93.184.215.14/hooks"}, headers=make_user().headers
    )

    assert created.status_code == 201, created.text


#: Hosts that are no host name (each answered 500 on 360a82a in production, where the URL's host is resolved:
#: Python's IDNA codec raised UnicodeError on them), and what the refusal says of each.
NOT_HOST_NAMES = [
    ("a..b", "not a valid host name"),
    ("localhost..", "not a valid host name"),
    ("127.0.0.1..", "not a valid host name"),
    (".example.com", "not a valid host name"),
    ("example..com", "not a valid host name"),
    ("..", "not a valid host name"),
    (".", "not a valid host name"),
    (f"{'a' * 64}.example.com", "not a valid host name"),
    ("a" * 300, "not a valid host name"),
    (".".join(["a" * 60] * 5), "longer than 253 characters"),
    ("\u200b", "not a valid host name"),
    ("ex\u200bample..com", "not a valid host name"),
    ("a.\u3002b", "not a valid host name"),
    ("\u3002", "not a valid host name"),
    ("-example.com", "not a valid host name"),
    ("exa mple.com", "not a valid host name"),
]


@pytest.mark.parametrize("mode", ["production", "embedded"])
async def test_a_host_that_is_no_host_name_is_refused_naming_the_fault(
    production: Client, client: Client, make_user: Callable[[], User], sql: Conn, mode: str
) -> None:
    app = production if mode == "production" else client
    answers = []
    for host, words in NOT_HOST_NAMES:
        refused = await app.post("/v1/webhooks", json={"url": f"https://{host}/hooks"}, headers=make_user().headers)
        answers.append((host, refused.status_code, refused.json().get("code"), words in refused.json()["detail"]))

    assert [answer for answer in answers if answer[1:] != (422, "webhook_url_refused", True)] == []
    assert stored(sql) == {"endpoints": 0, "secrets": 0}


async def test_a_name_in_another_script_or_with_its_root_dot_is_a_host_name(
    client: Client, make_user: Callable[[], User]
) -> None:
    for url in ("https://bücher.example/hooks", "https://example.com./hooks", "https://my_host.example.com/"):
        created = await client.post("/v1/webhooks", json={"url": url}, headers=make_user().headers)

        assert created.status_code == 201, (url, created.text)
