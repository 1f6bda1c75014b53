"""Bad input and broken environments: one clear line, a documented code, nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN, AUDITOR, SiteEnv, run_cli


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with its SHA-256: 'nothing written' is checked against it."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def one_line_error(stderr: str) -> str:
    # Besides the error: its hint, and what the command says of its ledger entries
    # (custody/coverage.py: not covered by a checkpoint, as no key agent runs in tests).
    besides = ("hint: ", "note: ledger entr", "remarque : les entrées ", "remarque : l'entrée ")
    lines = [line for line in stderr.splitlines() if not line.startswith(besides)]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("scelle: error: ")
    return lines[0]


def test_wrong_passphrase(site_env: SiteEnv, tmp_path: Path) -> None:
    site_env.site.close()
    bad = tmp_path / "bad"
    bad.write_text("not the passphrase\n")
    before = snapshot(site_env.settings.home)
    env = {**site_env.env, "SCELLE_PASSPHRASE_FILE": str(bad)}
    result = run_cli(["ledger", "checkpoint"], env=env)
    assert result.exit_code == 7
    assert "wrong passphrase" in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


def test_passphrase_from_environment_variable(site_env: SiteEnv) -> None:
    env = {"SCELLE_HOME": site_env.env["SCELLE_HOME"], "SCELLE_PASSPHRASE": "nope"}
    result = run_cli(["ledger", "checkpoint"], env=env)
    assert result.exit_code == 7


def test_no_passphrase_and_no_terminal(site_env: SiteEnv) -> None:
    result = run_cli(["ledger", "checkpoint"], env={"SCELLE_HOME": site_env.env["SCELLE_HOME"]})
    assert result.exit_code == 7
    assert "no passphrase" in one_line_error(result.stderr)


def test_missing_key(site_env: SiteEnv) -> None:
    site_env.site.close()
    site_env.settings.key_file.unlink()
    before = snapshot(site_env.settings.home)
    result = run_cli(["ledger", "checkpoint"], env=site_env.env)
    assert result.exit_code == 7
    assert "no signing key at" in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


@pytest.mark.backends("sqlite")
def test_unreadable_database(site_env: SiteEnv) -> None:
    site_env.site.close()
    db = site_env.settings.home / "scelle.db"
    db.write_bytes(b"this is not a database" * 100)
    before = snapshot(site_env.settings.home)
    for args in (["ledger", "verify"], ["ledger", "show"], ["ledger", "checkpoint"]):
        result = run_cli(args, env=site_env.env)
        assert result.exit_code == 6, args
        assert "file is not a database" in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


@pytest.mark.backends("postgresql")
def test_unreachable_database_server(site_env: SiteEnv) -> None:
    site_env.site.close()
    url = make_url(site_env.settings.database_url).set(port=1)  # nothing listens there
    env = {**site_env.env, "SCELLE_DATABASE_URL": url.render_as_string(hide_password=False)}
    before = snapshot(site_env.settings.home)
    result = run_cli(["ledger", "verify"], env=env)
    assert result.exit_code == 6
    assert one_line_error(result.stderr).startswith("scelle: error: cannot use the database:")
    assert "Traceback" not in result.stderr
    assert snapshot(site_env.settings.home) == before


def test_no_site(tmp_path: Path) -> None:
    result = run_cli(["ledger", "show"], env={"SCELLE_HOME": str(tmp_path / "none")})
    assert result.exit_code == 6
    assert "no database at" in one_line_error(result.stderr)
    assert not (tmp_path / "none").exists()


def test_corrupt_checkpoint_file(site_env: SiteEnv) -> None:
    site_env.site.close()
    site_env.settings.checkpoint_file.write_bytes(b"\x00\xffgarbage")
    before = snapshot(site_env.settings.home)
    for args in (["ledger", "checkpoint"], ["ledger", "verify"]):
        result = run_cli(args, env=site_env.env)
        assert result.exit_code == 4, args
        assert "checkpoint file" in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


def test_init_twice_is_refused(site_env: SiteEnv) -> None:
    site_env.site.close()
    before = snapshot(site_env.settings.home)
    result = run_cli(["init"], env=site_env.env)
    assert result.exit_code == 5
    assert "a site already exists" in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


def test_init_with_empty_passphrase_leaves_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {"SCELLE_HOME": str(tmp_path / "site"), "SCELLE_PASSPHRASE_FILE": str(empty)}
    result = run_cli(["init"], env=env)
    assert result.exit_code == 7
    assert "passphrase is empty" in one_line_error(result.stderr)
    assert not (tmp_path / "site").exists()


def test_init_with_a_bad_site_name(tmp_path: Path) -> None:
    env = {"SCELLE_HOME": str(tmp_path / "site"), "SCELLE_PASSPHRASE": "x"}
    result = run_cli(["init", "--site-name", "my site+1"], env=env)
    assert result.exit_code == 3
    assert "invalid key name" in one_line_error(result.stderr)
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ledger", "show", "99"], 3, "no ledger entry 99 (the ledger has 6)"),
        (["ledger", "show", "--raw"], 2, "--raw needs an entry number"),
        (["ledger", "proof", "inclusion", "--index", "7"], 3, "no entry 7 in a tree of 6"),
        (["ledger", "proof", "inclusion", "--index", "0", "--size", "9"], 3, "between 1 and 6"),
        (["ledger", "proof", "consistency", "--from", "0"], 3, "--from must be between 1 and 6"),
        (["ledger", "verify", "--checkpoint", "/nonexistent"], 3, "no checkpoint file at"),
        (["keys", "show", "--pem", "--ssh"], 2, "choose one of"),
    ],
)
def test_bad_arguments(site_env: SiteEnv, args: list[str], code: int, message: str) -> None:
    site_env.site.close()
    before = snapshot(site_env.settings.home)
    result = run_cli(args, env=site_env.env_as(AUDITOR))
    assert result.exit_code == code
    assert message in one_line_error(result.stderr)
    assert snapshot(site_env.settings.home) == before


def test_bad_toml_setting(site_env: SiteEnv) -> None:
    (site_env.settings.home / "scelle.toml").write_text('colour = "blue"\n')
    result = run_cli(["config", "show"], env=site_env.env)
    assert result.exit_code == 3
    assert "unknown setting 'colour'" in one_line_error(result.stderr)


def test_debug_shows_the_traceback(site_env: SiteEnv) -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(
        app, ["--debug", "ledger", "show", "99"], env=site_env.env_as(AUDITOR)
    )
    assert result.exception is not None
    assert type(result.exception).__name__ == "InputError"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ledger", "show", "99999999999999999999"], 3, "no ledger entry"),
        (["verify", "/nonexistent-export"], 3, "does not exist or is not a folder"),
        (["hold", "list", "--json"], 0, ""),
    ],
)
def test_inputs_found_by_review(
    site_env: SiteEnv, args: list[str], code: int, message: str
) -> None:
    result = run_cli(args, env=site_env.env_as(AUDITOR))
    assert result.exit_code == code, result.stderr
    if message:
        assert message in one_line_error(result.stderr)


def test_times_before_1900_are_refused(site_env: SiteEnv) -> None:
    from tests.test_cameras import ADD

    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    old = run_cli(
        ["footage", "find", "C-012", "--from", "0001-01-01T00:00", "--to", "0001-01-01T01:00"],
        env=site_env.env,
    )
    assert old.exit_code == 3
    assert "the year must be between 1900 and 9998" in one_line_error(old.stderr)


def test_an_empty_key_is_not_a_pinned_key(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    result = run_cli(["verify", str(tmp_path), "--key", " "])
    assert result.exit_code == 3
    assert "--key is empty" in one_line_error(result.stderr)
