"""Configuration precedence: flag > SCELLE_* > scelle.toml > default, and who won."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from custody.config import load_settings
from custody.errors import InputError
from tests.conftest import run_cli


def test_precedence(tmp_path: Path) -> None:
    home = tmp_path / "site"
    home.mkdir()
    (home / "scelle.toml").write_text(
        'site_name = "from.file"\ntimezone = "Europe/Brussels"\ncheckpoint_file = "cp/log.txt"\n'
    )
    env = {"SCELLE_HOME": str(home), "SCELLE_SITE_NAME": "from.env"}
    s = load_settings({"site_name": "from.flag"}, environ=env)
    assert s.site_name == "from.flag" and s.sources["site_name"] == "flag --site-name"
    s = load_settings({}, environ=env)
    assert s.site_name == "from.env" and s.sources["site_name"] == "env SCELLE_SITE_NAME"
    assert s.timezone == "Europe/Brussels" and s.sources["timezone"].startswith("file ")
    assert s.checkpoint_file == home / "cp" / "log.txt"
    with pytest.raises(InputError, match="SCELLE_AGENT is no longer read"):
        load_settings({}, environ={**env, "SCELLE_AGENT": "bob"})
    s = load_settings({}, environ={"SCELLE_HOME": str(home)})
    assert s.site_name == "from.file"
    assert s.database_url == f"sqlite:///{home / 'scelle.db'}"
    assert "database_url" not in s.sources  # a default


def test_home_flag_beats_environment(tmp_path: Path) -> None:
    s = load_settings({"home": str(tmp_path / "a")}, environ={"SCELLE_HOME": str(tmp_path / "b")})
    assert s.home == tmp_path / "a" and s.sources["home"] == "flag --home"


def test_config_show_names_sources(tmp_path: Path) -> None:
    env = {"SCELLE_HOME": str(tmp_path), "SCELLE_TIMEZONE": "UTC"}
    result = run_cli(["config", "show"], env=env)
    assert result.exit_code == 0
    assert re.search(r"^timezone +UTC  \(env SCELLE_TIMEZONE\)$", result.stdout, re.M)
    assert re.search(
        rf"^home +{re.escape(str(tmp_path))}  \(env SCELLE_HOME\)$", result.stdout, re.M
    )
    assert re.search(r"^max_window_hours +24  \(default\)$", result.stdout, re.M)
    as_json = run_cli(["--home", str(tmp_path), "config", "show", "--json"], env=env)
    assert '"source": "flag --home"' in as_json.stdout


def test_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        ["config", "show"], env={"SCELLE_HOME": str(tmp_path), "SCELLE_TIMEZONE": "Mars/Olympus"}
    )
    assert result.exit_code == 3
    assert "unknown time zone 'Mars/Olympus'" in result.stderr


def test_no_password_is_ever_shown() -> None:
    from custody.db import hide_password

    assert hide_password("postgresql://scelle:s3cret@db/csv") == "postgresql://scelle:***@db/csv"
    shown = hide_password("postgresql://scelle@db/csv?password=s3cret&sslmode=require")
    assert "s3cret" not in shown and shown == "postgresql://scelle@db/csv"
