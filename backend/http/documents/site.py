"""The documentation site at `/docs/`: the MkDocs site `make docs` builds from the checkout's `docs/` into
`build/docs-site/`, served as files, with nothing loaded from elsewhere (the theme's fonts are the system's).

The checkout is the directory the server runs from (as the data directory `.voicegate` is): `voicegate up`
is started in the clone. When the site is missing or older than its sources, the first request for it starts
a build in the background (`voicegate up` only: the embedded development server) and is answered with a page
that reloads itself until the site is there. MkDocs and its theme are the `docs` extra, which `make up` installs
(requirements/docs.lock); where they are missing (voicegate installed without that extra) the page says how to
build the site. Outside a checkout (an installed wheel, a container) the page says where the docs are.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import logging
import mimetypes
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Final

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect

from backend.http.pipeline.db_admission import DATABASE_FREE

log = logging.getLogger(__name__)

PREFIX: Final = "/docs"
#: The page MkDocs builds for a missing one.
NOT_FOUND_PAGE: Final = "404.html"
CONFIG: Final = "mkdocs.yml"
SITE: Final = Path("build") / "docs-site"
#: What the site is built from: a change to any of them makes the served site stale.
SOURCES: Final = (CONFIG, "docs", "docs_hooks.py")
#: The theme runs inline scripts and styles; everything else must come from this server, so a page that
#: tried to load a font or script from the internet would fail here as it would offline.
CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES: Final = {
    ".js": "text/javascript",
    ".json": "application/json",
    ".xml": "application/xml",
    ".gz": "application/gzip",
}
_BUILD_SECONDS: Final = 300


class DocsSite:
    """The built site of the checkout at `root`, and (when `may_build`) its build in a background thread."""

    def __init__(self, root: Path, *, may_build: bool) -> None:
        self.root = root
        self.site = root / SITE
        self.may_build = may_build
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._failure: str | None = None
        #: The sources' newest modification time when the last build failed: tried again only once they change.
        self._failed_sources: float | None = None

    def in_checkout(self) -> bool:
        """Whether the server runs from a checkout with the docs' sources."""
        return (self.root / CONFIG).is_file() and (self.root / "docs").is_dir()

    def built(self) -> bool:
        """Whether a built site is there to serve."""
        return (self.site / "index.html").is_file()

    def stale(self) -> bool:
        """Whether a source changed since the site was built (or there is none)."""
        if not self.built():
            return True
        built_at = (self.site / "index.html").stat().st_mtime
        return any(_newest(self.root / source) > built_at for source in SOURCES)

    def building(self) -> bool:
        """Whether a build is running."""
        return self._building is not None and self._building.is_alive()

    def refresh(self) -> None:
        """Start a build when the site is missing or stale, MkDocs is installed and none runs (one at a time)."""
        if not self.may_build or not self.in_checkout() or not mkdocs_installed():
            return
        with self._lock:
            if self.building() or not self.stale() or self._failed_sources == self._sources_changed():
                return
            self._building = threading.Thread(target=self._build, name="docs-build", daemon=True)
            self._building.start()

    def _sources_changed(self) -> float:
        return max(_newest(self.root / source) for source in SOURCES)

    def failure(self) -> str | None:
        """The end of the last failed build's output, if the last build failed."""
        return self._failure

    def _build(self) -> None:
        """`mkdocs build --strict` into a new directory, then swapped in whole: a request never sees half a site."""
        fresh = self.site.with_name(f"{self.site.name}.building")
        shutil.rmtree(fresh, ignore_errors=True)
        sources = self._sources_changed()
        command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", CONFIG, "-d", str(fresh)]
        log.info("building the documentation site into %s", self.site)
        try:
            done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
                command, cwd=self.root, capture_output=True, timeout=_BUILD_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            self._failure, self._failed_sources = f"the build took longer than {_BUILD_SECONDS} s", sources
            return
        if done.returncode != 0:
            self._failure = "\n".join(done.stderr.decode(errors="replace").strip().splitlines()[-20:])
            self._failed_sources = sources
            log.warning("the documentation site did not build:\n%s", self._failure)
            shutil.rmtree(fresh, ignore_errors=True)
            return
        old = self.site.with_name(f"{self.site.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.site.exists():
            self.site.rename(old)
        fresh.rename(self.site)
        shutil.rmtree(old, ignore_errors=True)
        self._failure = self._failed_sources = None
        log.info("the documentation site is built: %s/", PREFIX)

    def file(self, relative: str) -> Path | None:
        """The built file a request path names (a directory's `index.html`), never one outside the site."""
        root = self.site.resolve()
        path = (root / relative.lstrip("/")).resolve()
        if not path.is_relative_to(root):
            return None
        if path.is_dir():
            path /= "index.html"
        return path if path.is_file() else None


def mkdocs_installed() -> bool:
    """Whether MkDocs and the Material theme can be run by this interpreter (the `docs` extra)."""
    return all(importlib.util.find_spec(name) is not None for name in ("mkdocs", "material"))


def docs_site_handlers(site: DocsSite) -> list[HTTPRouteHandler]:
    """`/docs/` and every file of the built site under it; while there is none, a page that says why and what
    to do."""

    @get(PREFIX, include_in_schema=False, sync_to_thread=False, opt={DATABASE_FREE: True})
    def docs_index(request: Request[Any, Any, Any]) -> Response[bytes] | Redirect:
        """The site's first page (Litestar matches `/docs` and `/docs/` alike)."""
        return _docs_file(site, request, "")

    @get(f"{PREFIX}/{{file_path:path}}", include_in_schema=False, sync_to_thread=False, opt={DATABASE_FREE: True})
    def docs_file(request: Request[Any, Any, Any], file_path: FromPath[str]) -> Response[bytes] | Redirect:
        """A file of the built site."""
        return _docs_file(site, request, file_path)

    return [docs_index, docs_file]


def _docs_file(site: DocsSite, request: Request[Any, Any, Any], file_path: str) -> Response[bytes] | Redirect:
    """The file, a directory's page (its address ending with a slash, so its relative links resolve), or the
    page saying the site is being built (or how to build it)."""
    site.refresh()
    raw = request.scope.get("raw_path", b"").decode("latin-1")
    if site.built():
        path = site.file(file_path)
        if path is None:
            return _missing_page(site)
        if path.name == "index.html" and not file_path.endswith("index.html") and not raw.endswith("/"):
            return Redirect(f"{raw}/", status_code=308)
        return _file_response(request, path)
    if file_path.strip("/"):
        raise NotFoundException
    return _not_built(site)


def _missing_page(site: DocsSite) -> Response[bytes]:
    """404 with the site's own page for a missing one (its search and navigation lead on from there)."""
    page = site.file(NOT_FOUND_PAGE)
    if page is None:
        raise NotFoundException
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP}
    return Response(page.read_bytes(), status_code=404, media_type="text/html", headers=headers)


def _file_response(request: Request[Any, Any, Any], path: Path) -> Response[bytes]:
    stat = path.stat()
    etag = '"' + hashlib.sha256(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = CSP
    if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(b"", status_code=304, headers=headers)
    media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), media_type=media_type, headers=headers)


def _not_built(site: DocsSite) -> Response[bytes]:
    """503 with a page in words: being built (it reloads itself), failed (with why), or how to build it."""
    refresh = ""
    if site.building():
        title = "The documentation is being built"
        said = "<p>This takes a few seconds; the page reloads by itself.</p>"
        refresh = '<meta http-equiv="refresh" content="2">'
    elif (failure := site.failure()) is not None:
        title = "The documentation did not build"
        said = (
            f"<p><code>mkdocs build --strict</code> failed:</p><pre>{html.escape(failure)}</pre>"
            "<p>Fix what it names in <code>docs/</code> or <code>mkdocs.yml</code>, then run "
            "<code>make docs</code>.</p>"
        )
    elif not site.in_checkout():
        title = "The documentation is not part of this install"
        said = (
            "<p>The documentation site is built from a checkout of voicegate: <code>make docs</code> there. "
            'The API reference of this server is at <a href="/schema">/schema</a>.</p>'
        )
    else:
        title = "The documentation site is not built yet"
        said = (
            "<p>It is built with MkDocs, the <code>docs</code> extra: <code>voicegate up</code> builds it by itself "
            "where MkDocs is installed, as <code>make up</code> installs it. In the voicegate directory run:</p>"
            "<pre>make docs</pre><p>(it installs the locked packages, MkDocs among them, then builds the site into "
            "<code>build/docs-site/</code>), then reload this page. "
            "Meanwhile the same pages are Markdown in <code>docs/</code>, and the API reference of this server "
            'is at <a href="/schema">/schema</a>.</p>'
        )
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}<title>{title}</title></head>'
        f"<body><main><h1>{title}</h1>{said}</main></body></html>"
    )
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'", "Retry-After": "2"}
    return Response(body.encode(), status_code=503, media_type="text/html", headers=headers)


def _newest(path: Path) -> float:
    """The latest modification time of `path` or anything under it (0 when it does not exist)."""
    if not path.exists():
        return 0.0
    if path.is_file():
        return path.stat().st_mtime
    return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=path.stat().st_mtime)
