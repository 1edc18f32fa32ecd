"""Everything HTTP, and the only modules of `backend/` besides the entry points that import Litestar: `routes/`,
the route handlers of every area (a module each, named by its concept), the page and the health probes;
`pipeline/`, what every request passes (its framing and access-log line, the entry check, database admission, the
host and method rules, problem+json, the server); `documents/`, the OpenAPI document's parts and the docs pages;
and beside them what the handlers share (typed dependencies, the one-file form, the Idempotency-Key protocol)."""
