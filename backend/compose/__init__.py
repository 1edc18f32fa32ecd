"""The composition root: what each process of voicegate is made of, built in one place. Each process is one
async context manager that builds everything it holds under one `contextlib.AsyncExitStack`, entering each
resource on the stack where it is created: it closes in the reverse order it was built, and a start-up that
fails half-way closes what it had already opened.

- `backend.compose.parts`: what every process is built from (pools, the provider set, the worker context).
- `backend.compose.api`: the API process (`voicegate serve`, `up`) and the Storage stand-in's own server.
- `backend.compose.consumers`: the queue consumers (inside `up`, or `voicegate worker`).
- `backend.compose.operator`: an operator script's run (`scripts/`).

Only `api` stands on the HTTP layer (its per-process objects: idempotency keys, the users' slots), so the
worker and the scripts never import the web framework.
"""
