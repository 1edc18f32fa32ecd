"""The README's quickstart, run as written against a real `voicegate up` (started here in place of
`make up`, on a free port instead of 8000): its four curl calls end with a WAV of the text."""

from __future__ import annotations

import io
import os
import re
import subprocess
import wave

import pytest

from backend.embedded.postgres import EmbeddedPostgres, free_port
from tests.conftest import server_dir
from tests.e2e.up import REPO, is_ready, wait_for

pytestmark = pytest.mark.timeout(240)
README = REPO / "README.md"


def quickstart_block() -> str:
    """The shell block that follows the `<!-- quickstart -->` marker."""
    match = re.search(r"<!-- quickstart -->\n```sh\n(.*?)```", README.read_text(), re.S)
    assert match is not None, "README has no quickstart block"
    return match[1]


def test_the_readme_quickstart_ends_with_a_wav_of_the_text() -> None:
    block = quickstart_block()
    assert block.count("curl ") == 4
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
            script = block.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
            ran = subprocess.run(
                ["bash", "-e", "-c", script], cwd=root, env=env, capture_output=True, timeout=120, check=False
            )
            assert ran.returncode == 0, ran.stderr.decode()
            audio = (root / "hello.wav").read_bytes()
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
