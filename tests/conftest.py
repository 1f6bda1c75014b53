"""Fixtures: an isolated environment, real sites on real SQLite files, a CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from custody.config import Settings, load_settings
from custody.site import Site, init_site

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SCELLE_* variable, home or terminal width leaks in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("SCELLE_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("SCELLE_AGENT", "test-operator")


@dataclass
class SiteEnv:
    """A real site on disk and the environment the CLI needs to use it."""

    site: Site
    settings: Settings
    passphrase_file: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "SCELLE_HOME": str(self.settings.home),
            "SCELLE_PASSPHRASE_FILE": str(self.passphrase_file),
        }


def make_site(root: Path, name: str = "csv.test") -> SiteEnv:
    home = root / "site"
    settings = load_settings({"home": str(home), "site_name": name})
    site, _ = init_site(settings, PASSPHRASE)
    pass_file = root / "passphrase"
    pass_file.write_bytes(PASSPHRASE + b"\n")
    return SiteEnv(site, settings, pass_file)


@pytest.fixture
def site_env(tmp_path: Path) -> Iterator[SiteEnv]:
    env = make_site(tmp_path)
    yield env
    env.site.close()


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process, stdout and stderr apart."""
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def require_tool(name: str) -> str:
    """A stock tool the test runs for real: skipped with a reason if absent, failed in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
