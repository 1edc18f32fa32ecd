"""The demo page's routes without a browser: the embedded-only dev sign-in and its refusals, the config
route and its consent text, the page's files, and the docs UI served from local files only."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from litestar import Litestar

from backend.app import create_app
from backend.http.routes.web import STATIC_DIR
from backend.policy.consent import CONSENT_TEXT_VERSION
from backend.settings import settings_from_env
from backend.voiceprint import THRESHOLD
from devkit.audio_corpus import speech_wav
from devkit.certs import make_chain
from devkit.db import Conn
from standins.dev_tokens import mint_anon_key, mint_service_key
from standins.dev_users import DEV_USER_EMAIL
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET

PUBLISHABLE = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
#: Everything a page or the docs may reference: this server's own paths, or a fragment.
LOCAL_REFERENCE = re.compile(r"^(/[^/]|#)")


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[Litestar]:
    """`app` with its lifespan run on this test's event loop, as uvicorn runs it, so that the requests `caller` sends
    on this loop use the pools the lifespan opened on it. (Litestar's test client runs the lifespan on a thread and
    loop of its own: a request that waited for a connection the pool was still opening there met asyncio's
    condition from the other loop, and failed with "Lock is not acquired", once in a loaded CI run.)"""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    lifespan = asyncio.create_task(app(scope, incoming.get, outgoing.put))  # type: ignore[arg-type]
    await incoming.put({"type": "lifespan.startup"})
    started = await outgoing.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield app
    finally:
        await incoming.put({"type": "lifespan.shutdown"})
        stopped = await outgoing.get()
        await lifespan
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@pytest.fixture
async def embedded_app(db_dsn: str, tmp_path: Path) -> AsyncIterator[Litestar]:
    """The app as `voicegate up` builds it (no DATABASE_URL), with its lifespan running."""
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)}), {"SUPABASE_JWT_SECRET": JWT_SECRET}
    )
    async with running(create_app(settings, db_dsn, embedded=EMBEDDED)) as app:
        yield app


@pytest.fixture
async def supabase_app(db_dsn: str, tmp_path: Path) -> AsyncIterator[Litestar]:
    """The app as `voicegate serve` builds it for a Supabase project (DATABASE_URL set, a C2PA chain)."""
    c2pa = make_chain("ec").write(tmp_path / "c2pa")
    settings = with_auth_keys(
        settings_from_env(
            {
                **c2pa,
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
                "VOICEGATE_DATA_DIR": str(tmp_path),
            }
        ),
        {
            "SUPABASE_URL": "https://abcdefgh.supabase.co",
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(JWT_SECRET),
            "SUPABASE_PUBLISHABLE_KEY": PUBLISHABLE,
        },
    )
    async with running(create_app(settings, db_dsn, embedded=EMBEDDED)) as app:
        yield app


def caller(app: Litestar, *, peer: str, host: str) -> httpx.AsyncClient:
    """A client of `app` whose connection comes from `peer` and whose Host header is `host`."""
    transport = httpx.ASGITransport(app=app, client=(peer, 50123))  # type: ignore[arg-type]  # Litestar is ASGI
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


async def test_the_dev_session_signs_a_loopback_caller_in_as_the_local_user(embedded_app: Litestar) -> None:
    ids = set()
    for peer, host in (("127.0.0.1", "127.0.0.1:8000"), ("127.0.0.1", "localhost:8000"), ("::1", "[::1]:8000")):
        async with caller(embedded_app, peer=peer, host=host) as client:
            response = await client.post("/dev/session")
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] == "no-store"
            session = response.json()
            assert session["user"]["email"] == DEV_USER_EMAIL
            claims = jwt.decode(session["accessToken"], JWT_SECRET, algorithms=["HS256"], audience="authenticated")
            assert (claims["sub"], claims["email"], claims["role"]) == (
                session["user"]["id"],
                DEV_USER_EMAIL,
                "authenticated",
            )
            expires_at = datetime.fromisoformat(session["expiresAt"])
            assert abs(expires_at - (datetime.now(UTC) + timedelta(hours=12))) < timedelta(minutes=1)
            assert abs(expires_at.timestamp() - claims["exp"]) < 5
            listed = await client.get(
                "/api/v1/voice-samples", headers={"Authorization": f"Bearer {session['accessToken']}"}
            )
            assert (listed.status_code, listed.json()) == (200, {"samples": []})
            ids.add(session["user"]["id"])
    assert len(ids) == 1, "every dev session is the same local user"


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("203.0.113.9", "127.0.0.1:8000"),  # a client on the network
        ("192.168.1.20", "localhost:8000"),
        ("127.0.0.1", "evil.example:8000"),  # DNS rebinding: a remote site's name pointed at loopback
        ("127.0.0.1", "0.0.0.0:8000"),
    ],
)
async def test_the_dev_session_is_404_unless_caller_and_host_are_loopback(
    embedded_app: Litestar, sql: Conn, peer: str, host: str
) -> None:
    async with caller(embedded_app, peer=peer, host=host) as client:
        response = await client.post("/dev/session")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "accessToken" not in response.text
    assert sql.execute("select count(*) from auth.users where email = %s", (DEV_USER_EMAIL,)).fetchone() == (0,)


async def test_with_database_url_there_is_no_dev_session_and_the_page_signs_in_with_supabase(
    supabase_app: Litestar,
) -> None:
    async with caller(supabase_app, peer="127.0.0.1", host="127.0.0.1:8000") as client:
        assert (await client.post("/dev/session")).status_code == 404
        config = (await client.get("/config.json")).json()
        page = await client.get("/")
    assert config["mode"] == "supabase"
    assert (config["supabaseUrl"], config["anonKey"]) == ("https://abcdefgh.supabase.co", PUBLISHABLE)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self' https://abcdefgh.supabase.co" in csp, "the page calls Supabase Auth and Storage there"
    assert "/dev/session" not in {route.path for route in supabase_app.routes}


async def test_the_config_gives_the_consent_text_of_the_version_uploads_record(
    embedded_app: Litestar, sql: Conn
) -> None:
    async with caller(embedded_app, peer="127.0.0.1", host="127.0.0.1:8000") as client:
        config = (await client.get("/config.json")).json()
        token = (await client.post("/dev/session")).json()["accessToken"]
        uploaded = await client.post(
            "/api/v1/voice-samples",
            data={"consent": "true"},
            files={"file": ("me.wav", speech_wav(), "audio/wav")},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert uploaded.status_code == 202, uploaded.text
    # Embedded mode's own anon key, as the Supabase CLI mints one, for Supabase clients of its /storage/v1.
    assert (config["mode"], config["supabaseUrl"], config["anonKey"]) == ("embedded", None, mint_anon_key(JWT_SECRET))
    assert config["consent"]["version"] == CONSENT_TEXT_VERSION
    assert config["consent"]["text"].startswith("I consent")
    assert config["retentionDays"] == 30
    # The page's length advice is the rule the default provider (`local`) checks uploads against.
    assert config["sampleRules"] == {"minDurationS": 3.0, "maxDurationS": 60.0, "recommendedDurationS": [5.0, 20.0]}
    # The page offers the checkbox only where the server takes it, and says scores beside the published threshold.
    assert (config["consentPolicy"], config["speakerThreshold"]) == ("checkbox", THRESHOLD)
    recorded = sql.execute(
        "select c.consent_text_version from voice_samples s join voice_consents c on c.id = s.consent_id"
        " where s.id = %s",
        (uuid.UUID(uploaded.json()["sampleId"]),),
    ).fetchone()
    assert recorded == (config["consent"]["version"],)


async def test_the_page_and_its_modules_are_served_with_their_types_and_revalidated(embedded_app: Litestar) -> None:
    async with caller(embedded_app, peer="127.0.0.1", host="127.0.0.1:8000") as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        again = await client.get("/", headers={"If-None-Match": page.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")

        references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert references, "the page links its module, style sheet and icon"
        assert all(LOCAL_REFERENCE.match(ref) for ref in references), references
        modules = {"app.js"}
        for name in STATIC_DIR.glob("*.js"):
            modules |= set(re.findall(r'from "\./([\w-]+\.js)"', name.read_text()))
        for module in sorted(modules):
            response = await client.get(f"/assets/{module}")
            assert response.status_code == 200, module
            assert response.headers["content-type"] == "text/javascript; charset=utf-8", module
            assert response.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/assets/style.css")).headers["content-type"] == "text/css; charset=utf-8"
        missing_files = ("/assets/nope.js", "/assets/index.html", "/assets/..%2Froutes.py", "/assets/%2e%2e/routes.py")
        for missing in (*missing_files, "/assets/"):
            assert (await client.get(missing)).status_code == 404, missing


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_the_docs_load_swagger_ui_from_this_server_only(embedded_app: Litestar, path: str) -> None:
    async with caller(embedded_app, peer="127.0.0.1", host="127.0.0.1:8000") as client:
        docs = await client.get(path)
        assert docs.status_code == 200
        references = re.findall(r'(?:src|href)="([^"]*)"', docs.text)
        # icon, Swagger's style sheet and our fixes over it, Swagger's two scripts and our fixes after them
        assert len(references) == 6, references
        assert all(LOCAL_REFERENCE.match(ref) for ref in references), references
        for reference in references:
            assert (await client.get(reference)).status_code == 200, reference
        bundle = await client.get("/docs-assets/swagger-ui/swagger-ui-bundle.js")
        assert bundle.headers["content-type"] == "text/javascript; charset=utf-8"
        assert len(bundle.content) > 500_000
        assert (await client.get("/schema/openapi.json")).json()["info"]["title"] == "voicegate"
        # These would fetch their scripts from CDNs, so they are not offered at all.
        for other in ("redoc", "elements", "rapidoc", "scalar"):
            assert (await client.get(f"/schema/{other}")).status_code == 404, other
