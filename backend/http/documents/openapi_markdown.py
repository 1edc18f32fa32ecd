"""The OpenAPI document as a Markdown page: the API reference of the documentation site (`docs_hooks.py`
renders the app's own document into it at build time), so the reference reads offline, with no script, and
the site's search finds every route, field and error status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

_METHODS: Final = ("get", "post", "put", "patch", "delete", "head", "options")
_UNTAGGED: Final = "health and metrics"


def render(document: Mapping[str, Any]) -> str:
    """A Markdown page of every operation of `document` (grouped by its first tag, in the document's order)
    with its parameters, request body and responses, then every component schema with its properties."""
    groups: dict[str, list[str]] = {}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or [_UNTAGGED])[0]
                groups.setdefault(tag, []).append(_operation(method, path, operation))
    info = document.get("info", {})
    lines = [
        "# API reference",
        "",
        f"{info.get('title', 'The API')} {info.get('version', '')}, OpenAPI {document.get('openapi', '')}: "
        "this page is made from the server's own document when the site is built. The document itself: "
        "[openapi.json](openapi.json) here, `/schema/openapi.json` on a running server, and Swagger UI (with "
        '"Try it out") at `/schema`. How the routes fit together: the [API guide](guide.md).',
        "",
    ]
    for tag, operations in groups.items():
        lines += [f"## {tag[:1].upper()}{tag[1:]}", "", *operations]
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name in sorted(schemas):
            lines += [f"### {name} {{: #schema-{name.lower()} }}", "", *_schema(schemas[name])]
    return "\n".join(lines).rstrip() + "\n"


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`", ""]
    if summary := operation.get("summary"):
        lines += [f"**{_cell(summary)}**", ""]
    if description := operation.get("description"):
        lines += [description.strip(), ""]
    if operation.get("security"):
        lines += ["Takes a user's access token (`Authorization: Bearer ...`).", ""]
    if parameters := operation.get("parameters"):
        lines += ["| parameter | in | required | type | description |", "|---|---|---|---|---|"]
        lines += [
            f"| `{p['name']}` | {p.get('in', '')} | {'yes' if p.get('required') else 'no'} | "
            f"{_type(p.get('schema', {}))} | {_cell(p.get('description', ''))} |"
            for p in parameters
        ]
        lines.append("")
    if body := operation.get("requestBody"):
        kinds = ", ".join(
            f"`{kind}` {_type(media.get('schema', {}))}" for kind, media in body.get("content", {}).items()
        )
        lines += [f"Request body ({'required' if body.get('required') else 'optional'}): {kinds}", ""]
    responses = operation.get("responses", {})
    if responses:
        lines += ["| status | answer | body |", "|---|---|---|"]
        for status, response in responses.items():
            kinds = ", ".join(
                f"`{kind}` {_type(media.get('schema', {}))}" for kind, media in response.get("content", {}).items()
            )
            lines.append(f"| {status} | {_cell(response.get('description', ''))} | {kinds} |")
        lines.append("")
    return "\n".join(lines)


def _schema(schema: Mapping[str, Any]) -> list[str]:
    lines = []
    if description := schema.get("description"):
        lines += [description.strip(), ""]
    if enum := schema.get("enum"):
        lines += ["One of: " + ", ".join(f"`{value}`" for value in enum), ""]
    properties: Mapping[str, Any] = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", ()))
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        lines += [
            f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} | "
            f"{_cell(prop.get('description', ''))} |"
            for name, prop in properties.items()
        ]
        lines.append("")
    if not lines:
        lines = [_type(schema), ""]
    return lines


def _type(schema: Mapping[str, Any]) -> str:
    """A schema in a few words: a link to a component, a type with its format, an array of one, or the
    alternatives of a oneOf/anyOf."""
    if ref := schema.get("$ref"):
        name = str(ref).rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(_type(option) for option in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(f"`{k}`" for k in kind)
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind is None:
        return "any"
    fmt = schema.get("format")
    return f"`{kind}`" + (f" ({fmt})" if fmt else "")


def _cell(text: object) -> str:
    """Text that stays in one table cell: no line breaks, no bare pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


def operations(document: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Every (METHOD, path) of `document`."""
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield method.upper(), path
