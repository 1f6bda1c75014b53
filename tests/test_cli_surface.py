"""The CLI's surface: help everywhere, the README's command list, a light start-up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cli import app

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
