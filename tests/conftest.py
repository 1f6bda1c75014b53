"""Fixtures: an isolated environment, real sites on both backends, a CLI runner.

Every test that touches a site database asks for `backend` (site_env does): it runs
once on a real SQLite file and once on a real PostgreSQL server that the session
starts on 127.0.0.1 and stops at the end. A test that is about one engine only says so
with `@pytest.mark.backends("sqlite")`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from cli import app
from custody import i18n, keys
from custody.config import Settings, load_settings
from custody.site import Site
from requisition import agents
from requisition.site import init_site
from tests.pgserver import PgServer, find_bindir

PASSPHRASE = b"correct horse battery staple"


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run this database test on these backends only"
    )
    config.addinivalue_line(
        "markers",
        "slow: real processes racing (minutes); skip locally with -m 'not slow', never in CI",
    )
    config.addinivalue_line(
        "markers",
        "production_kdf: keys this test writes in-process use the production PBKDF2 rounds",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        names = marker.args if marker else BACKENDS
        metafunc.parametrize("backend", names, scope="module")


# The agents every test site has, each a login on both backends: the OS login (LOGNAME)
# for SQLite, a PostgreSQL role (member of the application role) for PostgreSQL.
ADMIN, OPERATOR, SUPERVISOR, AUDITOR = (
    "test-admin",
    "test-operator",
    "test-supervisor",
    "test-auditor",
)
AGENTS = {OPERATOR: "operator", SUPERVISOR: "supervisor", AUDITOR: "auditor"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries are not installed (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = PgServer(bindir)
    # The owner of the site's tables runs init and upgrades; agents only log in.
    server.execute(
        f'CREATE ROLE "{ADMIN}" LOGIN CREATEDB CREATEROLE',
        "CREATE ROLE scelle_app NOLOGIN",
        *(f'CREATE ROLE "{login}" LOGIN IN ROLE scelle_app' for login in [*AGENTS, "intruder"]),
    )
    yield server
    server.stop()


def fresh_database(backend: str, request: pytest.FixtureRequest, root: Path) -> str:
    """A new, empty database on `backend`, as the URL its owner (ADMIN) uses."""
    if backend == "sqlite":
        return f"sqlite:///{root / 'site' / 'scelle.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.new_database()
    server.execute(f'ALTER DATABASE {name} OWNER TO "{ADMIN}"')
    server.execute(f'ALTER SCHEMA public OWNER TO "{ADMIN}"', database=name)
    return server.url(name, user=ADMIN)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = fresh_database(backend, request, tmp_path)
    yield url
    if backend != "sqlite":  # a few MB each: the session would leave gigabytes behind
        server: PgServer = request.getfixturevalue("pg_server")
        server.execute(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


def as_login(url: str, login: str) -> dict[str, str]:
    """The environment in which the CLI acts as `login` on the database at `url`."""
    if url.startswith("sqlite"):
        return {"LOGNAME": login, "SCELLE_DATABASE_URL": url}
    parsed = make_url(url).set(username=login)
    return {"LOGNAME": login, "SCELLE_DATABASE_URL": parsed.render_as_string(hide_password=False)}


# Key files the tests write in-process (every fixture site's site and document keys) use
# this many PBKDF2 rounds instead of the production 600,000: the count is stored in the
# file, so every later opening, in a `scelle` subprocess too, is cheap as well. At
# 600,000 each writing or opening costs 0.1-0.35 s, and the suite opens keys thousands
# of times. The production count is still what `scelle init` and `scelle demo` run as
# subprocesses write, and what the tests marked production_kdf check with openssl.
PRODUCTION_KDF_ROUNDS = keys.KDF_ROUNDS
TEST_KDF_ROUNDS = 2_000
keys.KDF_ROUNDS = TEST_KDF_ROUNDS  # before any fixture, module-scoped ones included


@pytest.fixture(autouse=True)
def production_kdf(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("production_kdf") is not None:
        monkeypatch.setattr(keys, "KDF_ROUNDS", PRODUCTION_KDF_ROUNDS)


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """No SCELLE_* variable, locale, home, login or terminal width leaks in from the developer's
    shell; a database test gets its backend's new database in SCELLE_DATABASE_URL, and
    acts as its owner, the site administrator, unless it says otherwise."""
    for name in list(os.environ):
        if name.startswith("SCELLE_") or name in ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
            monkeypatch.delenv(name)
    # A French run in this process (the CLI chooses per run) must not leave the library
    # speaking French to the next test, nor gettext's LANGUAGE set for its subprocesses.
    i18n.use("en")
    monkeypatch.setenv("LANGUAGE", "")
    monkeypatch.delenv("LANGUAGE")
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LOGNAME", ADMIN)
    if "backend" in request.fixturenames and request.getfixturevalue("backend") != "sqlite":
        monkeypatch.setenv("SCELLE_DATABASE_URL", request.getfixturevalue("database_url"))


@dataclass
class SiteEnv:
    """A real site on disk and the environment the CLI needs to use it."""

    site: Site
    settings: Settings
    passphrase_file: Path

    @property
    def env(self) -> dict[str, str]:
        """The CLI's environment, acting as the operator (most of the work)."""
        return self.env_as(OPERATOR)

    def env_as(self, login: str) -> dict[str, str]:
        return {
            "SCELLE_HOME": str(self.settings.home),
            "SCELLE_PASSPHRASE_FILE": str(self.passphrase_file),
            **as_login(self.settings.database_url, login),
        }


def make_site(root: Path, name: str = "csv.test", database_url: str | None = None) -> SiteEnv:
    """A site under `root`, on `database_url` (default: SCELLE_DATABASE_URL, else a
    SQLite file), created by ADMIN, with an operator, a supervisor and an auditor."""
    home = root / "site"
    settings = load_settings({"home": str(home), "site_name": name, "database_url": database_url})
    with logged_in_as(ADMIN):  # who runs init on SQLite; the URL says it on PostgreSQL
        site, _ = init_site(
            settings, PASSPHRASE, then=lambda s: agents.bootstrap(s, ADMIN, "Alice Admin", "AR-1")
        )
    for agent_login, role in AGENTS.items():
        agents.add(site, ADMIN, agents.NewAgent(agent_login, agent_login, role, "AR-2"))
    pass_file = root / "passphrase"
    pass_file.write_bytes(PASSPHRASE + b"\n")
    return SiteEnv(site, settings, pass_file)


@pytest.fixture
def site_env(tmp_path: Path, backend: str, database_url: str) -> Iterator[SiteEnv]:
    env = make_site(tmp_path, database_url=database_url)
    yield env
    env.site.close()


@contextmanager
def logged_in_as(login: str) -> Iterator[None]:
    """The OS login getpass reports, for code run in-process (SQLite identity)."""
    old = os.environ.get("LOGNAME")
    os.environ["LOGNAME"] = login
    try:
        yield
    finally:
        if old is None:
            del os.environ["LOGNAME"]
        else:
            os.environ["LOGNAME"] = old


def raw_connection(env: SiteEnv, login: str | None = None, database: str | None = None) -> Any:
    """A DB-API connection to the site's database in autocommit mode, as its owner (or
    `login`): SQLite's file itself, or a PostgreSQL session. Tests use it to attack."""
    url = make_url(env.settings.database_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")  # as scelle's own connections do
        return conn
    import psycopg

    return psycopg.connect(
        host=url.host,
        port=url.port,
        dbname=database or url.database,
        user=login or url.username,
        autocommit=True,
    )


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
