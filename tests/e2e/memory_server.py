"""The voicegate API alone, as its own process, for tests that measure what the service itself uses.

`python -m tests.e2e.memory_server DSN DATA_DIR` serves the app over the database `DSN` with
embedded-style Storage under `DATA_DIR` and no queue consumers, with uvicorn configured as
`voicegate serve` configures it. The JWT secret comes from `SUPABASE_JWT_SECRET`. Once the socket
listens the process prints its base URL as one line on stdout; it stops on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

import uvicorn

from backend.app import create_app
from backend.settings import settings_from_env
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED


def main(argv: list[str]) -> int:
    """Serve until told to stop."""
    dsn, data_dir = argv
    logging.basicConfig(level=logging.WARNING)
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": data_dir, "VOICEGATE_LOG_LEVEL": "WARNING"}),
        {"SUPABASE_JWT_SECRET": os.environ["SUPABASE_JWT_SECRET"]},
    )
    # Bound before the URL is printed, so the caller can connect at once (uvicorn accepts later).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    # uvicorn's defaults for the HTTP implementation and loop, as `voicegate serve` runs it.
    config = uvicorn.Config(
        create_app(settings, dsn, embedded=EMBEDDED),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
