"""`voicegate up` records where its API answers in the data directory for as long as it runs; a worker
finds it there, and not once the `up` that wrote it is gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from backend.settings import settings_from_env
from standins.api_address import ADDRESS_FILE, published, running_api_url


def test_the_address_is_found_while_published_and_gone_after(tmp_path: Path) -> None:
    assert running_api_url(tmp_path) is None
    with published(tmp_path, "http://127.0.0.1:8123"):
        assert running_api_url(tmp_path) == "http://127.0.0.1:8123"
        assert stat.S_IMODE((tmp_path / ADDRESS_FILE).stat().st_mode) == 0o600
    assert running_api_url(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_the_address_of_a_process_that_is_gone_is_not_found(tmp_path: Path) -> None:
    # As an `up` killed with SIGKILL leaves it: the file names a process that no longer runs.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    pid = int(gone.stdout)
    (tmp_path / ADDRESS_FILE).write_text(f'{{"pid": {pid}, "url": "http://127.0.0.1:8123"}}')
    assert running_api_url(tmp_path) is None


def test_an_unreadable_file_is_no_address(tmp_path: Path) -> None:
    (tmp_path / ADDRESS_FILE).write_text('{"pid": "x"')
    assert running_api_url(tmp_path) is None


def test_an_up_that_ends_leaves_the_address_of_one_started_after_it(tmp_path: Path) -> None:
    with published(tmp_path, "http://127.0.0.1:8001"):
        later = f'{{"pid": {os.getppid()}, "url": "http://127.0.0.1:8002"}}'
        (tmp_path / ADDRESS_FILE).write_text(later)
    assert running_api_url(tmp_path) == "http://127.0.0.1:8002"


def test_a_worker_takes_the_running_ups_address_unless_told_another(tmp_path: Path) -> None:
    from voicegate.cli import _beside_up  # noqa: PLC0415 - the worker's choice, without starting one

    embedded = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)})
    told = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), "VOICEGATE_PUBLIC_URL": "http://api.test:9000"})
    external = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://db.test/x"})
    assert _beside_up(embedded) == (embedded, False)  # no `up`: the settings' own address, 8000 by default
    with published(tmp_path, "http://127.0.0.1:8123"):
        found, beside = _beside_up(embedded)
        assert (found.storage_public_url, found.api_base_url, beside) == (
            "http://127.0.0.1:8123/storage/v1",
            "http://127.0.0.1:8123",
            True,
        )
        assert _beside_up(told) == (told, False)
        assert _beside_up(external) == (external, False)
