"""`make up PORT=… PG_PORT=…`, as the quickstart says: the ports reach `voicegate up` as its variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_up_command(*variables: str) -> str:
    """The command `make up` would run last (`make -n` prints its recipes and runs none of them)."""
    # Run by `make test`, make is a sub-make (MAKELEVEL): it would print "Entering/Leaving directory" lines.
    inherited = {"PORT", "PG_PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {key: value for key, value in os.environ.items() if key not in inherited}
    printed = subprocess.run(
        ["make", "--no-print-directory", "-n", "up", *variables],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return printed.stdout.strip().splitlines()[-1]


def test_make_up_passes_the_ports_it_is_given_to_voicegate_up() -> None:
    assert make_up_command("PORT=8123", "PG_PORT=54399") == (
        "VOICEGATE_PORT=8123 VOICEGATE_PG_PORT=54399 .venv/bin/voicegate up"
    )
    assert make_up_command("PG_PORT=54399") == "VOICEGATE_PG_PORT=54399 .venv/bin/voicegate up"
    assert make_up_command() == ".venv/bin/voicegate up"


def test_voicegate_up_takes_the_embedded_postgres_port_as_a_flag() -> None:
    shown = subprocess.run(
        [str(REPO / ".venv" / "bin" / "voicegate"), "up", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "--pg-port PG_PORT" in shown
    assert "VOICEGATE_PG_PORT" in shown
    # A port no server can take is refused by the settings, naming the flag's variable, before anything starts.
    refused = subprocess.run(
        [str(REPO / ".venv" / "bin" / "voicegate"), "up", "--pg-port", "70000", "--data-dir", str(REPO / "build")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "VOICEGATE_PG_PORT" in refused.stderr
