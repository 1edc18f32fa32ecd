"""`voicegate up --fake-providers` runs the checkout's provider fakes (`python -m fakes all`): found from any
working directory of a checkout, and refused in one line where there are none (an installed voicegate: the
fakes are in no wheel and no image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import settings_from_env
from voicegate import cli

REPO = Path(__file__).resolve().parents[2]


def test_a_checkout_runs_its_own_fakes_whatever_the_working_directory() -> None:
    assert cli._fakes_checkout() == REPO
    assert (REPO / cli.FAKES_MODULE / "__main__.py").is_file()


def test_without_the_fakes_up_says_what_it_needs_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An installed voicegate, run from a folder that is no checkout.
    monkeypatch.setattr(cli, "_fakes_checkout", lambda: None)
    monkeypatch.chdir(tmp_path)
    started: list[object] = []
    monkeypatch.setattr(cli, "_up_stack", lambda *args, **kwargs: started.append(args) or 0)
    assert cli._up_with_fake_providers(settings_from_env({}), run_consumers=True) == 2
    assert not started
    said = capsys.readouterr().err
    assert "--fake-providers needs the provider fakes of a development checkout" in said
    assert "`fakes/` package, which no wheel or image holds" in said
