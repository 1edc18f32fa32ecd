"""The demo page's routes: the page and its files, `/config.json`, and the Swagger UI files the docs at
`/schema` load (from the swagger-ui-bundle-v2 wheel, so they work offline).

Files are served from a fixed table built from the directories at start-up, so a request can never
name a path outside them. Every answer says `Cache-Control: no-cache` with an ETag: the browser keeps a
copy but asks each time, so a new release (or an edited file) shows at the next load.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin
from litestar.params import FromPath
from swagger_ui_bundle import swagger_ui_path

from backend.consents.types import ConsentText
from backend.consents.wording import current_consent
from backend.http.documents.api_pages import AccessibleSwagger
from backend.http.documents.openapi import problems
from backend.http.documents.site import DocsSite, docs_site_handlers
from backend.http.pipeline.db_admission import DATABASE_FREE
from backend.providers.registry import sample_rules
from backend.settings import Settings
from backend.voiceprint import THRESHOLD

STATIC_DIR: Final = Path(__file__).parents[1] / "static"
ASSETS_PATH: Final = "/assets"
SWAGGER_ASSETS_PATH: Final = "/docs-assets/swagger-ui"
#: What the docs page loads of the Swagger UI distribution (its other files are source maps and variants).
SWAGGER_FILES: Final = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")
# ES modules are refused unless served with a JavaScript type; the platform's mimetypes table varies.
# (Litestar adds `; charset=utf-8` to text types itself.)
MEDIA_TYPES: Final = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_TAGS: Final = ("demo page",)
_NO_STORE: Final = CacheControlHeader(no_store=True)


class PageSampleRules(msgspec.Struct, frozen=True, rename="camel"):
    """The default provider's length rules, so the page's advice is the rule uploads are checked against."""

    #: Shorter (once silence is trimmed) is refused as "sample too short".
    min_duration_s: float
    #: Longer is refused; null when the provider sets no limit.
    max_duration_s: float | None
    #: The range the quality report calls best (shorter is "too short for best results").
    recommended_duration_s: tuple[float, float]


class PageConfig(msgspec.Struct, frozen=True, rename="camel"):
    """What the page needs to know about this server: how to sign in, and what to ask consent for."""

    #: `embedded`: the page signs in through `POST /dev/session`; `supabase`: with Supabase Auth.
    mode: Literal["embedded", "supabase"]
    supabase_url: str | None
    #: The publishable (or legacy anon) key: the page sends it to Supabase Auth, and Supabase clients pass it
    #: to `createClient`; public by design. Embedded mode's own anon key (a JWT with `role: anon`) works
    #: with its `/storage/v1`.
    anon_key: str | None
    #: The wording the page shows beside the consent box, and the version every upload records.
    consent: ConsentText
    retention_days: float
    #: What a sample for the default provider must and should be.
    sample_rules: PageSampleRules
    #: What a sample must be stored under (VOICEGATE_CONSENT): `spoken`, a verified spoken consent only, so the
    #: page offers no checkbox; `checkbox`, the spoken consent first and the ticked box as the alternative.
    consent_policy: Literal["checkbox", "spoken"]
    #: The languages a spoken consent's phrase is offered in (VOICEGATE_CONSENT_LANGUAGES), the first the default.
    consent_languages: list[str]
    #: The cosine from which two voiceprints are the same speaker: what `speakerMatch` and `likeness` are judged by.
    speaker_threshold: float


def web_handlers(settings: Settings) -> list[HTTPRouteHandler]:
    """The page, its files, its config and the docs' Swagger files (the embedded dev sign-in is
    `backend.http.routes.dev_session`)."""
    page_headers = {"Content-Security-Policy": page_csp(settings)}
    # The page itself only at `/`, where it carries its CSP.
    page_files = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in MEDIA_TYPES and p.suffix != ".html"}
    swagger_files = {name: Path(str(swagger_ui_path / name)) for name in SWAGGER_FILES}

    @get("/", include_in_schema=False, sync_to_thread=False, opt={DATABASE_FREE: True})
    def page(request: Request[Any, Any, Any]) -> Response[bytes]:
        """The demo page."""
        return file_response(request, STATIC_DIR / "index.html", page_headers)

    @get(f"{ASSETS_PATH}/{{file_name:str}}", include_in_schema=False, sync_to_thread=False, opt={DATABASE_FREE: True})
    def asset(request: Request[Any, Any, Any], file_name: FromPath[str]) -> Response[bytes]:
        """The page's modules, style sheet and icon."""
        return file_response(request, _known(page_files, file_name))

    @get(
        f"{SWAGGER_ASSETS_PATH}/{{file_name:str}}",
        include_in_schema=False,
        sync_to_thread=False,
        opt={DATABASE_FREE: True},
    )
    def swagger_asset(request: Request[Any, Any, Any], file_name: FromPath[str]) -> Response[bytes]:
        """Swagger UI's script and style, for `/schema`."""
        return file_response(request, _known(swagger_files, file_name))

    config = PageConfig(
        mode="embedded" if settings.embedded else "supabase",
        supabase_url=None if settings.embedded or settings.auth is None else settings.auth.supabase_url,
        anon_key=None if settings.auth is None else settings.auth.anon_key,
        consent=current_consent(),
        retention_days=settings.sample_retention_days,
        sample_rules=_page_sample_rules(settings),
        consent_policy=settings.consent,
        consent_languages=list(settings.consent_language_codes),
        speaker_threshold=THRESHOLD,
    )

    @get(
        "/config.json",
        tags=_TAGS,
        cache_control=_NO_STORE,
        sync_to_thread=False,
        opt={DATABASE_FREE: True},
        summary="The demo page's settings",
        responses=problems(400),
    )
    def page_config() -> PageConfig:
        """How the page signs in (embedded dev session or Supabase Auth) and the consent wording it shows."""
        return config

    # The documentation site of the checkout the server runs from (`make docs`); `voicegate up` builds it when missing.
    docs = docs_site_handlers(DocsSite(Path.cwd(), may_build=settings.embedded))
    return [page, asset, swagger_asset, page_config, *docs]


def _page_sample_rules(settings: Settings) -> PageSampleRules:
    rules = sample_rules(settings.provider_settings.default_provider)
    return PageSampleRules(
        min_duration_s=rules.min_duration_s,
        max_duration_s=rules.max_duration_s,
        recommended_duration_s=rules.recommended_duration_s,
    )


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at `/schema` and `/schema/swagger` from this server's own files (in an accessible page:
    `backend.http.documents.api_pages`), plus the JSON and YAML documents. ReDoc, Elements, RapiDoc and Scalar would
    load their scripts from CDNs, so they are not offered."""
    return [
        AccessibleSwagger(
            css_overrides=f"{ASSETS_PATH}/docs.css",
            fixes=f"{ASSETS_PATH}/docs.js",
            js_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui-standalone-preset.js",
            path=["/", "/swagger"],
            # Litestar's default favicon is a CDN link.
            favicon=f'<link rel="icon" type="image/svg+xml" href="{ASSETS_PATH}/favicon.svg">',
        ),
        JsonRenderPlugin(),
        YamlRenderPlugin(),
    ]


def page_csp(settings: Settings) -> str:
    """The page's Content-Security-Policy: its own files only, and network access to this server, Storage
    (signed audio URLs) and Supabase Auth; nothing else, so a slip cannot pull in a script from elsewhere."""
    origins = {_origin(settings.storage_public_url)}
    if not settings.embedded and settings.auth is not None and settings.auth.supabase_url is not None:
        origins.add(_origin(settings.auth.supabase_url))
    others = " ".join(sorted(origins))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {others}; media-src 'self' blob: {others}; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def file_response(
    request: Request[Any, Any, Any], path: Path, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    """`path` with its media type and an ETag; 304 when the browser's copy is current."""
    stat = path.stat()
    body, etag = _read(path, stat.st_mtime_ns, stat.st_size)
    common = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff", **(headers or {})}
    if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(b"", status_code=304, headers=common)
    return Response(body, media_type=MEDIA_TYPES[path.suffix], headers=common)


@functools.lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """A file's bytes and ETag, read again only when its modification time or size changes."""
    del mtime_ns, size  # part of the cache key only
    body = path.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _known(files: Mapping[str, Path], name: str) -> Path:
    path = files.get(name)
    if path is None:
        raise NotFoundException
    return path


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
