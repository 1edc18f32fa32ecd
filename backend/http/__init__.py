"""Everything HTTP, and the only modules of `backend/` besides the entry points that import Litestar: the
routes of every area (a module each, named by its concept), what they share (typed dependencies, the
Idempotency-Key protocol, the OpenAPI parts, the errors as problem+json, the middleware), the health
probes, the demo page, and the HTTP face of embedded mode's stand-ins."""
