"""A route handler of the API makes one call to its area's service: it injects the caller (and its path, query
and body), at most one area's service (`backend.http.deps.AREAS`), and none of the parts a service is built
over (the database, Storage, the settings, the worker context), which the composition root puts together once
(`backend.compose.areas`). Read from the handlers the app routes to, by their parameters' names, which is how
Litestar injects them.

What still takes the parts is listed below with why; the list only shrinks: a listed handler that no longer
takes them fails the test until its line goes too."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from backend.app import create_app
from backend.compose.areas import Areas
from backend.http.deps import AREAS
from backend.settings import settings_from_env
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

#: What a service is built over: a handler that names one is doing the composition root's work.
PARTS = frozenset({"db", "storage", "settings", "worker_context"})
#: The API's routes (the page, the probes, the metrics and the docs are not an area's).
API_PREFIXES = ("/api/", "/v1/", "/internal/")

#: Handlers that still take the parts, by module and name, with why.
ALLOWED: dict[str, str] = {
    # The internal route runs the clone worker step itself (CONSUMER_MODE=http), which takes the worker's
    # worker context; the worker steps are not handlers' use cases and stay as they are.
    "backend.http.routes.attempts:InternalController.process": "runs the clone worker step, on the worker context",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    data_dir: Path = tmp_path_factory.mktemp("handlers")
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir)}), {"SUPABASE_JWT_SECRET": "s" * 40}
    )
    # Only the route table is read; no database is contacted.
    return create_app(settings, "postgresql://nobody@127.0.0.1:1/none", embedded=EMBEDDED)


def _handlers(app: Litestar) -> dict[str, list[str]]:
    """The API's handlers by module and name, each with its parameters' names."""
    found: dict[str, list[str]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIXES):
            continue
        for handler in route.route_handlers:
            fn = handler.fn
            found[f"{fn.__module__}:{fn.__qualname__}"] = list(inspect.signature(fn).parameters)
    return found


def test_the_areas_handlers_inject_are_the_services_the_composition_builds() -> None:
    # `deps.AREAS` names the `app.state` entries a handler injects; `Areas` is what the composition root sets there.
    assert set(AREAS) == {area.name for area in dataclasses.fields(Areas)}


def test_the_api_has_handlers_of_every_area(app: Litestar) -> None:
    handlers = _handlers(app)
    named = {name for params in handlers.values() for name in params if name in AREAS}
    assert named == set(AREAS), f"areas no handler injects: {set(AREAS) - named}"


def test_each_handler_injects_one_area_service_and_none_of_its_parts(app: Litestar) -> None:
    wrong = {}
    for handler, params in _handlers(app).items():
        services = [name for name in params if name in AREAS]
        parts = sorted(PARTS.intersection(params))
        if (len(services) > 1 or parts) and handler not in ALLOWED:
            wrong[handler] = {"services": services, "parts": parts}
    assert not wrong, f"handlers doing the composition root's work: {wrong}"


def test_the_allowed_handlers_still_need_it(app: Litestar) -> None:
    handlers = _handlers(app)
    missing = sorted(set(ALLOWED) - set(handlers))
    assert not missing, f"listed handlers the app no longer routes to: {missing}"
    clean = sorted(name for name in ALLOWED if not PARTS.intersection(handlers[name]))
    assert not clean, f"these take none of the parts now; strike their lines from ALLOWED: {clean}"
