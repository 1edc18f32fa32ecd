"""`/docs/` before the site is built says why in words and what to do, and a built site is served as files,
never one outside it."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.testing import TestClient

from backend.http.documents.site import CSP, DocsSite, docs_site_handlers


def client(root: Path) -> TestClient[Litestar]:
    return TestClient(Litestar(docs_site_handlers(DocsSite(root, may_build=False)), logging_config=None))


def test_outside_a_checkout_it_says_the_docs_are_not_part_of_this_install(tmp_path: Path) -> None:
    with client(tmp_path) as http:
        answer = http.get("/docs/")
    assert answer.status_code == 503
    assert "The documentation is not part of this install" in answer.text
    assert '<a href="/schema">/schema</a>' in answer.text


def test_in_a_checkout_never_built_it_names_make_docs(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n")
    (tmp_path / "docs").mkdir()
    with client(tmp_path) as http:
        answer = http.get("/docs/")
        other = http.get("/docs/api/guide/")
    assert answer.status_code == 503
    assert "The documentation site is not built yet" in answer.text
    assert "<pre>make docs</pre>" in answer.text
    assert other.status_code == 404


def test_a_built_site_is_served_with_slashes_and_nothing_outside_it(tmp_path: Path) -> None:
    site = tmp_path / "build" / "docs-site"
    (site / "api" / "guide").mkdir(parents=True)
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "api" / "guide" / "index.html").write_text("<h1>guide</h1>")
    (tmp_path / "build" / "secret.txt").write_text("no")
    with client(tmp_path) as http:
        home = http.get("/docs/")
        bare = http.get("/docs", follow_redirects=False)
        guide = http.get("/docs/api/guide/")
        unslashed = http.get("/docs/api/guide", follow_redirects=False)
        outside = http.get("/docs/%2e%2e/secret.txt")
        again = http.get("/docs/", headers={"If-None-Match": home.headers["etag"]})
    assert home.status_code == 200
    assert home.text == "<h1>home</h1>"
    assert home.headers["content-security-policy"] == CSP
    assert (bare.status_code, bare.headers["location"]) == (308, "/docs/")
    assert guide.text == "<h1>guide</h1>"
    # Relative links resolve against the page's address: a directory's page is always asked for with its slash.
    assert (unslashed.status_code, unslashed.headers["location"]) == (308, "/docs/api/guide/")
    assert outside.status_code == 404
    assert again.status_code == 304
