"""MkDocs hooks (mkdocs.yml `hooks:`): the API reference page and a copy of the OpenAPI document, made at
build time from the app's own document (built from its handlers as the tests build it: no database, no
network), so the site's reference is always the code's; and the rows of the Providers table of settings.md,
from the provider list."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

# This checkout's `backend`, whichever directory mkdocs was started from and whatever is installed.
ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def openapi_document() -> dict[str, Any]:
    """The document `/schema/openapi.json` serves, built without a server."""
    from backend.app import create_app  # noqa: PLC0415 - after sys.path names this checkout
    from backend.settings import settings_from_env  # noqa: PLC0415
    from standins.embedded import with_auth_keys  # noqa: PLC0415
    from standins.in_app import EMBEDDED  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="voicegate-docs-") as data_dir:
        settings = with_auth_keys(
            settings_from_env({"VOICEGATE_DATA_DIR": data_dir}), {"SUPABASE_JWT_SECRET": "s" * 40}
        )
        return create_app(
            settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED
        ).openapi_schema.to_schema()


#: Theme files left out of the site: the word breaker Material bundles for Thai search (wordcut, LGPL-3.0),
#: which an English site's search never loads, so it is not served or shipped with voicegate either.
LEFT_OUT = ("assets/javascripts/lunr/wordcut.js",)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add `api/reference.md` (the document rendered) and `api/openapi.json` (the document) to the site, and
    leave out LEFT_OUT."""
    from backend.http.documents.openapi_markdown import render  # noqa: PLC0415

    for uri in LEFT_OUT:
        if (unused := files.get_file_from_path(uri)) is not None:
            files.remove(unused)
    document = openapi_document()
    files.append(File.generated(config, "api/reference.md", content=render(document)))
    files.append(File.generated(config, "api/openapi.json", content=json.dumps(document, indent=2)))
    return files


#: Where settings.md's Providers table gets its rows.
PROVIDER_SETTINGS = (
    "<!-- provider settings: docs_hooks.py writes these rows from PROVIDERS in backend/providers/config.py -->"
)


def provider_settings_rows() -> str:
    """The Providers table's rows: `VOICE_PROVIDER` (each name with what it is), then each provider's documented
    variables."""
    from backend.providers.config import PROVIDERS  # noqa: PLC0415 - after sys.path names this checkout

    # The README sends newcomers here for the list, so each name says what it is.
    names = [f"`{entry.name}`" + (f" ({entry.title})" if entry.title != entry.name else "") for entry in PROVIDERS]
    rows = [
        f"| `VOICE_PROVIDER` | `local` | the default provider, whose key (or base URL) must be set: "
        f"{', '.join(names[:-1])} or {names[-1]} |"
    ]
    for entry in PROVIDERS:
        for doc in entry.documented:
            variables = ", ".join(f"`{variable}`" for variable in doc.variables)
            rows.append(f"| {variables} | {doc.default} | {doc.meaning} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """settings.md with its Providers rows written in."""
    if page.file.src_uri != "settings.md":
        return markdown
    if PROVIDER_SETTINGS not in markdown:
        raise ValueError(f"settings.md lost its marker {PROVIDER_SETTINGS!r}")
    return markdown.replace(PROVIDER_SETTINGS, provider_settings_rows())


#: Where `voicegate up` serves the site; the one page whose addresses are not relative (404.html, served for any
#: missing path, so it cannot know how deep it is) names it.
SERVED_AT = "/docs/"
# The root-absolute addresses MkDocs and the theme write into 404.html: links, style sheets, scripts, the theme's
# base and search worker.
_ROOT_ADDRESSES = re.compile(r'((?:href|src)=|"base": |"search": |new URL\()"/')


def on_post_template(output_content: str, template_name: str, config: MkDocsConfig) -> str:
    """404.html with its addresses under `SERVED_AT` (MkDocs writes them from the root without a `site_url`)."""
    if template_name != "404.html":
        return output_content
    return _ROOT_ADDRESSES.sub(lambda match: f'{match[1]}"{SERVED_AT}', output_content)
