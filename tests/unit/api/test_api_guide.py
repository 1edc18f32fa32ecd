"""The API guide (docs/api/guide.md) names every route of the OpenAPI document, and its table of every route
names no route the document lacks; the reference page made from the document holds every operation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backend.app import create_app
from backend.http.documents.openapi_markdown import operations, render
from backend.settings import settings_from_env
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "api" / "guide.md"
#: A route as the guide writes it in code: `METHOD /path` (a query string after the path is left out).
PARAMETER = re.compile(r"\{[^}]*\}")
MENTION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE|HEAD) (/[^`\s?]*)")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("docs")
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    # What `/schema/openapi.json` serves, built from the handlers alone; no database is contacted.
    return create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED).openapi_schema.to_schema()


def route(method: str, path: str) -> str:
    """`METHOD /path` with every path parameter written `{}`: the guide says `{id}` where the document says
    `{reflection_id}`."""
    return method + " " + PARAMETER.sub("{}", path)


def mentioned(text: str) -> set[str]:
    return {route(method, path) for method, path in MENTION.findall(text)}


def test_every_route_of_the_document_is_in_the_api_guide(document: dict[str, Any]) -> None:
    routes = {route(method, path) for method, path in operations(document)}
    assert len(routes) >= 50
    missing = sorted(routes - mentioned(GUIDE.read_text()))
    assert not missing, f"docs/api/guide.md does not mention {missing}"


def test_the_guides_table_of_every_route_names_only_routes_of_the_document(document: dict[str, Any]) -> None:
    text = GUIDE.read_text()
    table = text.split("## Every route", 1)[1].split("\n## ", 1)[0]
    named = mentioned(table)
    assert len(named) >= 50
    assert not sorted(named - {route(method, path) for method, path in operations(document)})


def test_the_reference_page_has_every_operation_and_schema(document: dict[str, Any]) -> None:
    page = render(document)
    for method, path in operations(document):
        assert f"### `{method} {path}`" in page
    for name in document["components"]["schemas"]:
        assert f"### {name} {{: #schema-{name.lower()} }}" in page
    # Every link to a schema lands on one of those headings.
    anchors = set(re.findall(r"\{: #(schema-[a-z0-9_.-]+) \}", page))
    assert set(re.findall(r"\]\(#(schema-[a-z0-9_.-]+)\)", page)) <= anchors
