"""Adding a provider, traced: a copy of the tree gets a provider `dummyvox` (key `DUMMYVOX_API_KEY`) as
docs/providers.md "Adding a provider" says, and the files that changed are counted. Each step is done for
real: the migration is written from the lists the migrated schema holds and applied, `supabase/schema.sql` is
regenerated as `make schema` does, and in the copy the list names the provider, the registry builds its adapter,
the tests that hold the deploy files and the README to the list pass untouched, and the docs' Providers table
names it.

Four files: the adapter, the list, the migration and schema.sql. Counted the same way before the list there were
nine: config.py (in six places) and the registry's if-chain were two files, and docs/settings.md's Providers
table, now written from the list by docs_hooks.py, a third; then seven, as the README's provider table,
compose.yaml's environment and deploy/k8s/secret.yaml each named every provider's key. Now compose hands its
containers the whole env file, the pods read the Secret whole (envFrom), and the README points at the generated
table, so none of them names a provider. The fake of a new HTTP API (its module, fakes/__init__.py and the
`all` mode of fakes/__main__.py) is a test and is counted in none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

from backend.db.migrate import migrate
from tests.conftest import PgServer, cloned_database
from tests.integration.test_provider_list import provider_lists
from tests.integration.test_schema_file import stand_ins_database
from tools.schema import dump, render

REPO = Path(__file__).resolve().parents[2]
#: What the copy needs: the code, the schema, the tests that read the files a provider touches, and those files.
COPIED = (
    "backend",
    "standins",
    "supabase",
    "tests",
    "devkit",
    "docs",
    "deploy",
    "compose.yaml",
    "README.md",
    "pyproject.toml",
    "docs_hooks.py",
)
NAME, KEY = "dummyvox", "DUMMYVOX_API_KEY"
#: The files docs/providers.md says a provider takes, as the trace finds them (the migration's name varies).
TOUCHED = 4

ADAPTER = f'''"""Dummyvox: a provider that speaks ElevenLabs' API at its own address (the trace's example)."""

from __future__ import annotations

from collections.abc import Mapping

from backend.providers.elevenlabs import ElevenLabsSettings
from backend.providers.env import key_setting, url_setting


def settings_from_env(env: Mapping[str, str]) -> ElevenLabsSettings:
    """Dummyvox's settings."""
    base_url, _ = url_setting("DUMMYVOX_BASE_URL", env.get("DUMMYVOX_BASE_URL") or "https://api.dummyvox.test")
    return ElevenLabsSettings(api_key=key_setting("{KEY}", env.get("{KEY}")), base_url=base_url)
'''

ENTRY = f"""    ProviderEntry[elevenlabs.ElevenLabsSettings](
        name="{NAME}",
        title="Dummyvox",
        read_settings=dummyvox.settings_from_env,
        usable=lambda s: s.api_key is not None,
        key_variable="{KEY}",
        build=lambda s, client, _: elevenlabs.ElevenLabsProvider(s, client),
        sample_rules=elevenlabs.ElevenLabsProvider.sample_rules,
        documented=(SettingDoc(("{KEY}", "DUMMYVOX_BASE_URL"), "unset, `https://api.dummyvox.test`", "Dummyvox"),),
    ),
"""


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def widening(conn: psycopg.Connection[tuple[object, ...]], names: list[str]) -> str:
    """The migration: the schema's one list of providers, the `voice_provider` domain's CHECK, dropped and added
    again naming `names`."""
    assert set(provider_lists(conn)) == {"voice_provider.voice_provider_check"}
    values = ", ".join(f"'{name}'" for name in names)
    statements = [
        "set lock_timeout = '4s';",
        "-- squawk-ignore ban-drop-constraint",
        "alter domain public.voice_provider drop constraint voice_provider_check;",
        "-- squawk-ignore ban-alter-domain-with-add-constraint",
        "alter domain public.voice_provider add constraint voice_provider_check",
        f"  check (value in ({values})) not valid;",
    ]
    return "\n".join(statements) + "\n"


def run_in(tree: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_a_provider_takes_four_files(tmp_path: Path, pg_server: PgServer, template_db: str) -> None:
    tree = tmp_path / "tree"
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tree / name)
    before = snapshot(tree)

    # 1. The adapter. 2. The list.
    (tree / "backend/providers/dummyvox.py").write_text(ADAPTER)
    config = tree / "backend/providers/config.py"
    text = config.read_text()
    text = text.replace(
        "from backend.providers import cartesia, elevenlabs, qwen, selfhosted\n",
        "from backend.providers import cartesia, dummyvox, elevenlabs, qwen, selfhosted\n",
    )
    text = text.replace("\n)\n\nPROVIDER_NAMES", "\n" + ENTRY + ")\n\nPROVIDER_NAMES", 1)
    config.write_text(text)
    names = json.loads(
        run_in(
            tree, "-c", "import json; from backend.providers.config import PROVIDER_NAMES as n; print(json.dumps(n))"
        )
    )
    assert names[-1] == NAME

    # 3. The migration, applied to the migrated template's copy. 4. schema.sql, as `make schema` makes it.
    migrations = tree / "supabase/migrations"
    version = max(int(path.name.split("_")[0]) for path in migrations.glob("*.sql")) + 1
    with cloned_database(pg_server, template_db) as migrated, stand_ins_database(pg_server) as stand_ins:
        with psycopg.connect(migrated, autocommit=True) as conn:
            (migrations / f"{version}_provider_{NAME}.sql").write_text(widening(conn, names))
        migration = migrations / f"{version}_provider_{NAME}.sql"
        squawk = Path(sys.executable).parent / "squawk"
        linted = [str(squawk), "--assume-in-transaction", "--config", str(REPO / ".squawk.toml"), str(migration)]
        lint = subprocess.run(linted, capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        migrate(migrated, tree / "supabase")
        with psycopg.connect(migrated, autocommit=True) as conn:
            lists = provider_lists(conn)
        assert lists
        assert all(values == set(names) for values in lists.values()), lists
        (tree / "supabase/schema.sql").write_text(render(dump(stand_ins), dump(migrated)))

    # The copy holds together: its registry builds the adapter, its deploy files and README fit its list as they
    # are, and the docs' Providers table names the provider and its key.
    run_in(
        tree,
        "-c",
        (
            "import asyncio, httpx\n"
            "from backend.cpu import CpuExecutor\n"
            "from backend.providers.config import provider_settings_from_env\n"
            "from backend.providers.registry import build_provider\n"
            f"settings = provider_settings_from_env({{'{KEY}': 'k', 'VOICE_PROVIDER': '{NAME}'}})\n"
            "async def main():\n"
            "    async with httpx.AsyncClient() as client:\n"
            f"        assert build_provider('{NAME}', settings, client, cpu=CpuExecutor(1)).name == 'elevenlabs'\n"
            "asyncio.run(main())\n"
        ),
    )
    run_in(tree, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/unit/test_provider_list.py")
    rows = run_in(tree, "-c", "import docs_hooks; print(docs_hooks.provider_settings_rows())")
    assert f"`{NAME}`" in rows.splitlines()[0]
    assert f"`{KEY}`" in rows

    after = snapshot(tree)
    touched = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    assert touched == sorted(
        [
            "backend/providers/config.py",
            "backend/providers/dummyvox.py",
            f"supabase/migrations/{version}_provider_{NAME}.sql",
            "supabase/schema.sql",
        ]
    )
    assert len(touched) == TOUCHED
