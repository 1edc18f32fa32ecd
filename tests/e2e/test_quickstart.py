"""The README's quickstart, run as written against a real `voicegate up` (started here in place of
`make up`, on a free port instead of 8000): its calls end with a WAV of the text, riding out a database
that is out of reach for a few seconds as the first of them is made (a 503 waited out, as every client
should: the README's `call`)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import psycopg
import pytest

from devkit.up import REPO, is_ready, wait_for
from standins.postgres import EmbeddedPostgres, for_data_dir, free_port
from tests.conftest import server_dir
from tests.support import frozen

pytestmark = pytest.mark.timeout(240)
README = REPO / "README.md"


def quickstart_block() -> str:
    """The shell block that follows the `<!-- quickstart -->` marker."""
    match = re.search(r"<!-- quickstart -->\n```sh\n(.*?)```", README.read_text(), re.S)
    assert match is not None, "README has no quickstart block"
    return match[1]


def test_the_readme_quickstart_ends_with_a_wav_of_the_text() -> None:
    block = quickstart_block()
    assert block.count("curl ") == 2, "the calls to voicegate (the polls too) go through `call`; one plain curl fetches"
    # Where the database goes out of reach for the test, between the token and the first call.
    assert block.count("# 1. Upload") == 1
    with server_dir("quickstart") as root:
        # A directory laid out like the clone the README speaks of: its .venv and docs/.
        (root / ".venv").symlink_to(REPO / ".venv")
        (root / "docs").symlink_to(REPO / "docs")
        port = free_port()
        env = {**os.environ, "VOICEGATE_PORT": str(port), "VOICEGATE_PG_PORT": str(free_port())}
        env.pop("DATABASE_URL", None)
        env.pop("VOICEGATE_DATA_DIR", None)
        log = (root / "up.log").open("wb")
        up = subprocess.Popen([".venv/bin/voicegate", "up"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: b"a token:" in (root / "up.log").read_bytes(), 90, "the banner", up)
            wait_for(lambda: is_ready(f"http://127.0.0.1:{port}"), 30, "/readyz", up)
            script = block.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}").replace(
                "# 1. Upload", "touch token-made; until [ -e frozen ]; do sleep 0.05; done\n# 1. Upload"
            )
            quickstart = subprocess.Popen(
                ["bash", "-e", "-c", script], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            wait_for((root / "token-made").exists, 60, "the token", quickstart)
            with frozen(root / ".voicegate" / "pgdata"):
                (root / "frozen").touch()
                wait_for(
                    lambda: b'"POST /api/v1/voice-samples HTTP/1.1" 503' in (root / "up.log").read_bytes(),
                    30,
                    "the first upload's 503",
                    up,
                )
            _, stderr = quickstart.communicate(timeout=120)
            assert quickstart.returncode == 0, stderr.decode()
            audio = (root / "hello.wav").read_bytes()
            # The voice bears the name the quickstart gave it, not "Voice from sample" (360a82a sent none).
            pg = for_data_dir(root / ".voicegate", int(env["VOICEGATE_PG_PORT"]))
            with psycopg.connect(pg.dsn) as conn:
                names = [row[0] for row in conn.execute("select name from public.voices")]
            assert len(names) == 1
            assert re.fullmatch(r"Quickstart \d\d:\d\d:\d\d", names[0]), names
        finally:
            up.terminate()
            up.wait(timeout=60)
            log.close()
            EmbeddedPostgres(root / ".voicegate" / "pgdata").stop(mode="immediate")
        # The download of the signed audioUrl is in the access log, its token not.
        logged = (root / "up.log").read_text()
    downloads = [line for line in logged.splitlines() if "GET /storage/v1/object/sign/" in line]
    assert downloads, logged
    assert all("token=[redacted]" in line for line in downloads), downloads
    assert "token=ey" not in logged
    with wave.open(io.BytesIO(audio)) as reader:
        seconds = reader.getnframes() / reader.getframerate()
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
    # "Hello! This is my cloned voice speaking." takes one to four seconds to say.
    assert 1.0 < seconds < 4.0


class _Refusing(BaseHTTPRequestHandler):
    """Answers every request as voicegate refuses a sample too short, counting them."""

    asked: ClassVar[list[str]] = []

    def _refuse(self) -> None:
        self.asked.append(f"{self.command} {self.path}")
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"status": 422, "code": "sample_too_short", "detail": "sample too short"}).encode()
        self.send_response(422)
        self.send_header("content-type", "application/problem+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse  # noqa: N815 - the names http.server dispatches to

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_the_readme_quickstart_stops_at_the_first_refusal_saying_it_and_leaves_the_shell_open(tmp_path: Path) -> None:
    """Pasted into a terminal (no `bash -e`), a refused step ends the steps with voicegate's sentence, and the shell
    goes on (before, a refused upload went on to the next step, which met a 405)."""
    _Refusing.asked.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / ".venv" / "bin").mkdir(parents=True)
        (tmp_path / ".venv" / "bin" / "voicegate").write_text("#!/bin/sh\necho a-token\n")
        (tmp_path / ".venv" / "bin" / "voicegate").chmod(0o755)
        (tmp_path / "docs").symlink_to(REPO / "docs")
        env = {**os.environ, "API": f"http://127.0.0.1:{server.server_address[1]}"}
        script = quickstart_block() + "echo shell-still-open\n"
        ran = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    out, err = ran.stdout.decode(), ran.stderr.decode()
    assert out.strip() == "shell-still-open", (out, err)
    assert err.strip() == "voicegate: 422 sample_too_short: sample too short", err
    assert _Refusing.asked == ["POST /api/v1/voice-samples"], "no step after the refused one ran"
    assert not (tmp_path / "hello.wav").exists()
