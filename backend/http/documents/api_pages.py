"""The API docs at `/schema`: Swagger UI from this server's own files (the swagger-ui-bundle wheel), in a page
of our own rather than Litestar's, so that what axe-core found there is fixed where it is ours to fix: the
page's language, a `main` landmark holding the content, no unlabelled servers menu (the document's one
server is this origin, which Swagger UI uses without it), no link nested in each operation's toggle button
(deep links off), and colours that meet WCAG AA contrast (`static/docs.css`, over Swagger's theme)."""

from __future__ import annotations

import html
from typing import Any, Final

from litestar import Request
from litestar.openapi.plugins import SwaggerRenderPlugin

#: Swagger UI's settings beyond the document: links inside the operations' toggle buttons are off (a link
#: in a button is unreachable to keyboard and screen reader users), and so is the colouring of code, whose
#: theme has text below AA contrast; the rest as Litestar sets them.
_SETTINGS: Final = b"""
      dom_id: "#swagger-container",
      deepLinking: false,
      syntaxHighlight: false,
      showExtensions: true,
      showCommonExtensions: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
"""


class AccessibleSwagger(SwaggerRenderPlugin):
    """Swagger UI in an accessible page: `css_overrides` is the style sheet loaded after Swagger's own, and
    `fixes` a script run once Swagger UI has started (what CSS cannot do: the tags' heading level)."""

    def __init__(self, *, css_overrides: str, fixes: str, **options: Any) -> None:
        super().__init__(**options)
        self.css_overrides = css_overrides
        self.fixes = fixes

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The docs page for `openapi_schema`."""
        title = html.escape(str(openapi_schema["info"]["title"]))
        shown = {key: value for key, value in openapi_schema.items() if key != "servers"}
        # In a script element "</" would end it, whatever the JSON around it means.
        spec = self.render_json(request, shown).replace(b"</", b"<\\/")
        head = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  {self.favicon}
  <link href="{self.css_url}" rel="stylesheet">
  <link href="{self.css_overrides}" rel="stylesheet">
  <script src="{self.js_url}"></script>
  <script src="{self.standalone_preset_js_url}"></script>
</head>
<body>
  <main id="swagger-container"></main>
  <script>
    SwaggerUIBundle({{
      spec: """
        end = f'    }});\n  </script>\n  <script src="{self.fixes}"></script>\n</body>\n</html>\n'
        return b"".join([head.encode(), spec, b",", _SETTINGS, end.encode()])
