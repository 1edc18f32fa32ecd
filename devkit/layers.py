"""The layers the code stands on, from the top down: tests/unit/test_layers.py holds every module to them (none
imports a module of a higher layer, and an area reaches another only through its face, one way), and
bench/trace_clone.py names the layer of each call it traces."""

from __future__ import annotations

#: The checkout's development aids: the tests and the benchmarks import them; they do not ship.
DEV_AIDS = ("devkit", "fakes")

#: The use-case areas, each a package that owns its use cases, its worker step, its SQL and its API types. An area
#: may use another through that one's public face (`FACES`), in one direction: the areas' graph has no circle.
AREAS = (
    "backend.speech",
    "backend.synthesis",
    "backend.voices",
    "backend.reflections",
    "backend.clone",
    "backend.samples",
    "backend.consents",
    "backend.webhooks",
    "backend.erasure",
)

#: What of an area another area may import: the package itself (its `__init__`, which lists what it hands on),
#: or a module named `api`.
FACES = ("", ".api")

#: The Storage stand-in's `/storage/v1` routes: the router, a module of handlers per concern, and what they read
#: of a request and answer.
STAND_IN_ROUTES = (
    "standins.storage.routes",
    "standins.storage.signed_url_routes",
    "standins.storage.object_routes",
    "standins.storage.list_routes",
    "standins.storage.bucket_routes",
    "standins.storage.route_requests",
    "standins.storage.route_responses",
)

#: The Storage stand-in's service: its objects, lists and buckets, how bodies are taken in, and the caller's
#: transaction they share (its rules, `standins.storage.rules`, are plain checks, below them with the stand-ins).
STAND_IN_SERVICE = (
    "standins.storage.objects",
    "standins.storage.listing",
    "standins.storage.buckets",
    "standins.storage.uploads",
    "standins.storage.access",
)

#: From the top down; a module takes the layer of its longest listed prefix. A module may import its own
#: layer and those below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The benchmarks and the build tools drive everything, the tests' servers and fakes included; nothing
    # imports them, and they do not ship.
    ("benchmarks and tools", ("bench", "tools")),
    # What the tests and the benchmarks share: the provider fakes, and the kit that starts a local voicegate and
    # feeds it; no product module imports them.
    ("development aids", DEV_AIDS),
    # The program: its commands run the API, the consumers and the operator scripts.
    ("the program", ("voicegate",)),
    # The Storage stand-in's own server (`voicegate storage`) is an app of its own, as the API's is.
    ("entry points", ("backend.app", "queue_consumers", "scripts", "standins.storage.server")),
    # What mounts the Storage stand-in (in the API, or on its own for an operator script) puts its routes,
    # the callers' tokens and the Storage client together; embedded mode's stand-ins as the program hands them in.
    ("composition", ("backend.compose", "standins.storage.in_process", "standins.in_app", "standins.embedded")),
    # The stand-in's `/storage/v1` routes live in its package but are HTTP like backend/http/.
    ("http", ("backend.http", *STAND_IN_ROUTES)),
    # The use-case areas: each owns its service, its types, its worker step and its SQL (AREAS); one uses another
    # through its face alone, one way; what more than one of them asks is policy, below them all.
    (
        "use case areas",
        (
            *AREAS,
            "backend.storage.orphans",
            "standins.storage.orphan_files",
        ),
    ),
    ("use case: the Storage stand-in", STAND_IN_SERVICE),
    # The policy more than one area asks: pure decisions, which the areas call with what they read.
    ("use case: policy shared by the areas", ("backend.policy",)),
    ("worker context", ("backend.context",)),
    (
        "records and adapters",
        (
            "backend.audio",
            "backend.auth",
            "backend.consents.bpe",
            "backend.consents.decoder",
            "backend.consents.languages",
            "backend.consents.phrase",
            "backend.consents.whisper",
            "standins",
            "backend.leases",
            "backend.provenance",
            "backend.providers",
            "backend.queues",
            "backend.records",
            "backend.conversation",
            "backend.settings",
            "backend.standard_webhooks",
            "backend.storage",
            # Charging: the one path a provider call's text goes through (the adapters meter it), and the ledger
            # and its reads; every area that calls a provider stands on it.
            "backend.usage",
            "backend.voiceprint",
            "backend.watermark",
        ),
    ),
    # Plain types of what the database holds: what the records read and write and the policy weighs.
    ("plain types", ("backend.domain",)),
    ("database", ("backend.db",)),
    (
        "leaf utilities",
        (
            "backend",
            "backend.backoff",
            "backend.body_limit",
            "backend.casing",
            "backend.cpu",
            "backend.errors",
            "backend.failpoints",
            "backend.fields",
            "backend.json_body",
            "backend.logs",
            "backend.multipart",
            "backend.outages",
            "backend.secret",
            "backend.text",
            "backend.tls",
            "backend.wav",
        ),
    ),
)


def layer_of(module: str) -> int | None:
    """The index of `module`'s layer in LAYERS (0 at the top), by its longest listed prefix."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]
