"""Every SQL snippet in docs/runbook.md runs against the migrated schema (placeholders filled with ids
that exist), and every `voicegate ops` command it names parses."""

from __future__ import annotations

import importlib
import re
import shlex
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

import scripts
from voicegate.cli import _parser

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
TEXT = RUNBOOK.read_text()
SQL = [block.strip() for block in re.findall(r"```sql\n(.*?)```", TEXT, re.S)]
COMMANDS = [
    line.split("#")[0].strip() for block in re.findall(r"```sh\n(.*?)```", TEXT, re.S) for line in block.splitlines()
]


def test_the_runbook_has_something_to_check() -> None:
    assert len(SQL) >= 6
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("snippet", SQL, ids=lambda snippet: snippet.splitlines()[0][:60])
def test_each_query_runs(db: psycopg.Connection[Any], snippet: str) -> None:
    filled = (
        snippet.replace("'<attempt id>'", f"'{uuid.uuid4()}'")
        .replace("'<reflection id>'", f"'{uuid.uuid4()}'")
        .replace("'<provider>'", "'local'")
    )
    assert "<" not in re.sub(r"<=|< now\(\)|lease_expires_at <", "", filled), "an unfilled placeholder"
    with db.transaction(force_rollback=True):
        for statement in (part for part in filled.split(";") if part.strip()):
            db.execute(statement)  # type: ignore[call-overload]  # the runbook's own text


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("voicegate ops ")])
def test_each_ops_command_parses(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(shlex.split(command)[1:])
    assert args.script in scripts.SCRIPT_NAMES
    module = importlib.import_module(f"scripts.{args.script.replace('-', '_')}")
    # Its flags parse; it then stops at the database it cannot reach (exit 3), not at its arguments (2).
    assert module.main([*args.args, "--database-url", "postgresql://nobody@127.0.0.1:1/none", "--json"]) == 3
    assert "usage:" not in capsys.readouterr().err
