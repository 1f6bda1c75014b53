"""The CLI's surface: help everywhere, the README's command list, a light start-up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cli import app, narrowed
from tests.conftest import ADMIN, OPERATOR, SiteEnv
from tests.modules_loaded import ORM, loaded_by
from tests.test_requisitions import DAY, filmed, register  # noqa: F401 - a fixture

ROOT = Path(__file__).parent.parent


def leaf_commands() -> dict[str, str | None]:
    """Every runnable command path with its help text."""
    found: dict[str, str | None] = {}

    def walk(command: object, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = getattr(command, "help", None)

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_help() -> None:
    missing = [name for name, text in leaf_commands().items() if not (text or "").strip()]
    assert missing == []


def test_readme_lists_exactly_the_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    listed = {m.strip() for m in re.findall(r"`scelle ((?:[a-z]+ ?)+)", section)}
    assert listed == set(leaf_commands())


def test_readme_documents_every_exit_code() -> None:
    from custody.errors import ExitCode

    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", readme, re.M), code


def test_help_does_not_import_the_database_layer() -> None:
    probe = (
        "import sys, cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'custody.db') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines()[-1] == "[]"
    assert "Exit codes:" in out.stdout


def test_everyday_commands_do_not_import_the_orm(
    filmed: SiteEnv,  # noqa: F811 - a fixture
    tmp_path: Path,
) -> None:
    """The commands people type dozens of times a day (issue 19) read through the driver
    layer: SQLAlchemy and SQLModel (half a second of start-up) never load for them, nor
    pydantic (typer's checks of their options). `footage find` and `audit` record an entry
    too: the probe sees their whole run, coverage included."""
    rid = register(filmed.env)
    commands = [
        (ADMIN, ["requisition", "list"]),
        (ADMIN, ["requisition", "show", rid, "--json"]),
        (ADMIN, ["status"]),
        (ADMIN, ["hold", "list"]),
        (ADMIN, ["audit", "--camera", "C-012"]),
        (ADMIN, ["ledger", "show"]),
        (OPERATOR, ["footage", "find", "C-012", "--from", f"{DAY}T10:00", "--to", f"{DAY}T10:03"]),
    ]
    for login, args in commands:
        code, loaded = loaded_by(args, tmp_path / "modules.json", filmed.env_as(login), ORM)
        assert (args, code, loaded) == (args, 0, [])
    # The probe sees them when they load: a command that changes the schema.
    code, loaded = loaded_by(
        ["db", "upgrade"], tmp_path / "modules.json", filmed.env_as(ADMIN), ORM
    )
    assert "sqlalchemy" in loaded


@pytest.mark.parametrize(
    "args",
    [
        ["requisition", "list"],
        ["--debug", "requisition", "show", "--help"],
        ["--home=/nowhere", "ledger", "proof", "inclusion", "--help"],
        ["requisition", "lst"],
        ["requisition"],
        ["requisition", "--help"],
        ["statu"],
        ["--version"],
        [],
        ["ledger", "show", "x"],
        ["ledger", "show", "--limit"],
    ],
)
def test_the_narrowed_app_says_what_the_whole_app_says(args: list[str]) -> None:
    """`scelle` makes only the command it runs (cli.narrowed): help, usage errors and
    suggestions read as the whole app's."""
    from typer.testing import CliRunner

    whole, narrow = (CliRunner().invoke(a, args) for a in (app, narrowed(args)))
    assert (narrow.exit_code, narrow.stdout, narrow.stderr) == (
        whole.exit_code,
        whole.stdout,
        whole.stderr,
    )


def test_narrowed_keeps_only_the_command_named() -> None:
    def names(group: typer.Typer) -> list[str]:
        return [c.name or "" for c in group.registered_commands] + [
            g.name or "" for g in group.registered_groups
        ]

    before = names(app)
    assert names(narrowed(["--home", "x", "requisition", "show", "2026-00001"])) == ["requisition"]
    requisition = narrowed(["requisition", "show"]).registered_groups[0].typer_instance
    assert requisition is not None and names(requisition) == ["show"]
    assert names(narrowed(["status"])) == ["status"]
    assert narrowed(["--help"]) is app and narrowed(["nothing"]) is app
    assert names(app) == before and len(before) > 10  # the whole app is left as it was


def test_version_prints_the_package_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """`scelle --version`, documented; from the installed package's metadata, else from
    pyproject.toml (a checkout run without installing it)."""
    import importlib.metadata
    import tomllib

    from typer.testing import CliRunner

    installed = importlib.metadata.version("scelle")
    shown = CliRunner().invoke(app, ["--version"])
    assert (shown.exit_code, shown.stdout) == (0, f"scelle {installed}\n")

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = CliRunner().invoke(app, ["--version"])
    assert (shown.exit_code, shown.stdout) == (0, f"scelle {declared}\n")
    assert "`scelle --version`" in (ROOT / "README.md").read_text()
