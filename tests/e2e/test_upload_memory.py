"""Memory of an upload: a 20 MiB sample sent to `POST /api/v1/voice-samples` (or to
`POST /v1/reflections/{id}/voice/clone`) grows the API process's peak resident set by less than 40 MB,
because the body streams (to a spooled temporary file, then through the in-process Storage to disk)
and is never held whole.

The API runs as its own process (tests/e2e/memory_server.py) so the figure is the service's own; its
peak is read from /proc (Linux): `VmHWM` after resetting it through `clear_refs`."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from devkit.audio_corpus import RATE, speech_mono, speech_wav
from devkit.db import Conn
from devkit.up import tls_context
from tests.integration.api.conftest import JWT_SECRET, User

# Linux only, like the rest of the stack (embedded Postgres wheels): a machine without /proc fails here.
pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
SAMPLE_BYTES = 20 * 1024 * 1024
#: The requirement: peak RSS growth of the service across one 20 MB upload.
MAX_GROWTH = 40 * 1000 * 1000
MB = 1000 * 1000
SAMPLES = "/api/v1/voice-samples"


@dataclass
class Api:
    """The API process and where it listens and keeps its Storage."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path

    def status_kib(self, field: str) -> int:
        """A `VmRSS`/`VmHWM`-style line of the process's /proc status, in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def reset_peak(self) -> None:
        """Make `VmHWM` start again from the current RSS (clear_refs 5, Linux 4.0+)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        # A reset the kernel ignored would leave an older, higher peak standing and skew the figure.
        assert self.status_kib("VmHWM") <= self.status_kib("VmRSS") + 1024, "VmHWM was not reset"


@pytest.fixture
def api(db_dsn: str, tmp_path: Path) -> Iterator[Api]:
    """The API (no queue consumers) as a child process over this test's database, once ready."""
    data_dir = tmp_path / "api"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PYTHONPATH": str(REPO),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.memory_server", db_dsn, str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        # The server prints its URL once it listens; a server that never does must not block the test.
        assert select.select([process.stdout], [], [], 60)[0], "the API never printed its URL"
        url = process.stdout.readline().decode().strip()
        assert url.startswith("http://"), (tmp_path / "api.log").read_text(errors="replace")
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/readyz", timeout=5, verify=tls_context()).status_code != 200:
            assert time.monotonic() < deadline, "the API never became ready"
            time.sleep(0.05)
        yield Api(process, url, data_dir)
    finally:
        process.terminate()
        if process.stdout is not None:
            process.stdout.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def big_wav(path: Path, size: int) -> None:
    """A `size`-byte 48 kHz mono 16-bit WAV: a few seconds of speech, then quiet room tone."""
    speech = (speech_mono(3.0) * 32767).astype("<i2")
    frames = (size - 44) // 2
    rng = np.random.default_rng(7)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(speech.tobytes())
        left = frames - speech.size
        while left:
            count = min(left, RATE * 10)
            out.writeframes((rng.standard_normal(count) * 10).astype("<i2").tobytes())
            left -= count
    assert path.stat().st_size == size


def upload(api: Api, user: User, route: str, file: Path | bytes) -> httpx.Response:
    """A multipart sample upload of `file` to `route`, streamed from disk when it is a path."""
    form = {"consent": "true", "language": "en"}
    with httpx.Client(base_url=api.url, headers=user.headers, timeout=30) as client:
        if isinstance(file, bytes):
            return client.post(route, data=form, files={"file": ("me.wav", file, "audio/wav")})
        with file.open("rb") as body:
            return client.post(route, data=form, files={"file": ("me.wav", body, "audio/wav")})


def measured_upload(api: Api, user: User, route: str, file: Path) -> tuple[httpx.Response, int]:
    """Upload `file` to `route`; the response and the growth of the peak RSS over the RSS before (bytes)."""
    before = api.status_kib("VmRSS") * 1024
    api.reset_peak()
    response = upload(api, user, route, file)
    peak = api.status_kib("VmHWM") * 1024
    print(f"{route}: RSS before {before / MB:.1f} MB, peak {peak / MB:.1f} MB, growth {(peak - before) / MB:.1f} MB")
    return response, peak - before


def stored_sizes(sql: Conn, api: Api, sample_id: str) -> tuple[object, ...]:
    """The sample's size as its row, its storage.objects row and its file on disk record it."""
    row = sql.execute(
        "select s.bucket_id, s.object_path, s.size_bytes, (o.metadata->>'size')::bigint from voice_samples s"
        " left join storage.objects o on o.bucket_id = s.bucket_id and o.name = s.object_path where s.id = %s",
        (sample_id,),
    ).fetchone()
    assert row is not None, f"no sample {sample_id}"
    bucket, name, *sizes = row
    return (*sizes, (api.data_dir / "storage" / str(bucket) / str(name)).stat().st_size)


def test_a_20_mb_upload_grows_the_service_peak_rss_by_under_40_mb(
    api: Api, make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    user = make_user()
    sample = tmp_path / "big.wav"
    big_wav(sample, SAMPLE_BYTES)
    with httpx.Client(base_url=api.url, headers=user.headers) as client:
        reflection = client.post("/v1/reflections", json={"name": "r"}).raise_for_status().json()
    clone = f"/v1/reflections/{reflection['id']}/voice/clone"
    # A small upload to each route first, so first-request imports and allocations do not count.
    for route in (SAMPLES, clone):
        warm = upload(api, user, route, speech_wav())
        assert warm.status_code == 202, warm.text

    accepted, growth = measured_upload(api, user, SAMPLES, sample)
    assert accepted.status_code == 202, accepted.text
    assert growth < MAX_GROWTH
    assert stored_sizes(sql, api, accepted.json()["sampleId"]) == (SAMPLE_BYTES,) * 3

    # The same through the reflection route, and once more: nothing kept from before adds up.
    for route in (clone, SAMPLES):
        accepted, growth = measured_upload(api, user, route, sample)
        assert accepted.status_code == 202, accepted.text
        assert growth < MAX_GROWTH
        body = accepted.json()
        assert stored_sizes(sql, api, body["sampleId"]) == (SAMPLE_BYTES,) * 3
    print(f"RSS after: {api.status_kib('VmRSS') * 1024 / MB:.1f} MB")
