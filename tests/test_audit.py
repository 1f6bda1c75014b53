"""`scelle audit`: auditors' questions answered from the ledger, on both backends, and an
index that cannot show a row the ledger does not hold."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from custody.entry import decode_entry
from tests.conftest import ADMIN, AUDITOR, OPERATOR, SUPERVISOR, SiteEnv, raw_connection, run_cli
from tests.test_requisitions import filmed, register  # noqa: F401 - fixture

PV = "PV 2026/000123"


@pytest.fixture
def worked(filmed: SiteEnv, tmp_path: Path) -> SiteEnv:  # noqa: F811 - fixture
    """A requisition registered, approved, extracted and handed over: footage accessed."""
    rid = register(filmed.env)
    assert run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR)).exit_code == 0
    out = tmp_path / "exports"
    extracted = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert extracted.exit_code == 0, extracted.stderr
    return filmed


def audit(env: SiteEnv, *args: str) -> list[dict[str, Any]]:
    result = run_cli(["audit", *args, "--json"], env=env.env_as(AUDITOR))
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_who_accessed_which_recordings_for_which_procedure(worked: SiteEnv) -> None:
    rows = audit(worked, "--camera", "C-012", "--action", "footage.extract")
    assert len(rows) == 1
    (row,) = rows
    assert row["agent"] == OPERATOR
    assert row["cameras"] == ["C-012"]
    assert row["procedure"] == PV
    assert row["unit"] == "BSU Villeurbanne"
    assert row["reason"] == f"extraction for requisition {row['requisition']}"
    assert row["recordings"][0].startswith("C-012 ")
    entry = decode_entry(worked.site.ledger.entry(row["seq"]))
    assert (entry["action"], entry["actor"]) == ("footage.extract", OPERATOR)
    assert entry["subject"]["requisition"] == row["requisition"]


def test_every_filter_agrees_with_a_scan_of_the_entries(worked: SiteEnv) -> None:
    """Each answer equals what reading every entry would give (the index is only a
    shortcut), and the filters combine."""
    entries = [decode_entry(body) for _, body in worked.site.ledger.entries()]

    def seqs(predicate: Any) -> list[int]:
        return [e["seq"] for e in entries if predicate(e)]

    rid = next(
        e["subject"]["requisition"] for e in entries if e["action"] == "requisition.register"
    )
    assert [r["seq"] for r in audit(worked, "--agent", SUPERVISOR)] == seqs(
        lambda e: e["actor"] == SUPERVISOR
    )
    assert [r["seq"] for r in audit(worked, "--requisition", rid)] == seqs(
        lambda e: isinstance(e["subject"], dict) and e["subject"].get("requisition") == rid
    )
    assert [r["seq"] for r in audit(worked, "--action", "hold")] == seqs(
        lambda e: e["action"].startswith("hold.")
    )
    by_pv = audit(worked, "--procedure", PV)
    assert {r["action"] for r in by_pv} >= {
        "requisition.register",
        "hold.place",
        "requisition.approve",
        "footage.extract",
        "requisition.export",
    }
    both = audit(worked, "--agent", OPERATOR, "--procedure", PV, "--action", "footage")
    assert [r["action"] for r in both] == ["footage.extract"]
    assert audit(worked, "--agent", "nobody") == []
    assert audit(worked, "--from", "2000-01-01", "--to", "2000-01-02") == []
    everything = audit(worked, "--from", "2000-01-01")
    assert len(everything) >= len(entries)  # earlier audit queries are entries too


def test_each_query_is_itself_recorded(worked: SiteEnv) -> None:
    audit(worked, "--camera", "C-012")
    entry = decode_entry(worked.site.ledger.entry(worked.site.ledger.size() - 1))
    assert (entry["action"], entry["actor"]) == ("audit.query", AUDITOR)
    assert entry["subject"] == {"filter": {"camera": "C-012"}}


def test_table_and_csv_outputs(worked: SiteEnv) -> None:
    table = run_cli(["audit", "--camera", "C-012"], env=worked.env_as(AUDITOR))
    assert table.exit_code == 0
    assert "footage.extract" in table.stdout and "BSU Villeurbanne" in table.stdout
    assert "entries" in table.stderr
    out = run_cli(
        ["audit", "--camera", "C-012", "--csv", "--rfc4180"], env=worked.env_as(AUDITOR)
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    extract = next(r for r in rows if r["action"] == "footage.extract")
    assert extract["procedure"] == PV and extract["agent"] == OPERATOR
    assert extract["time"].endswith(("+01:00", "+02:00"))
    both = run_cli(["audit", "--json", "--csv"], env=worked.env_as(AUDITOR))
    assert both.exit_code == 2


def test_only_auditors_supervisors_and_admins_query(worked: SiteEnv) -> None:
    result = run_cli(["audit"], env=worked.env)
    assert result.exit_code == 5
    assert "test-operator (operator) may not query or export the ledger" in result.stderr
    assert run_cli(["audit"], env=worked.env_as(SUPERVISOR)).exit_code == 0
    assert run_cli(["audit"], env=worked.env_as(ADMIN)).exit_code == 0


def test_a_doctored_index_cannot_show_a_false_row(worked: SiteEnv) -> None:
    """Someone with the database rewrites an index row: the query refuses, and
    `ledger verify --audit-index` names the entry."""
    extract = audit(worked, "--action", "footage.extract")[0]["seq"]
    conn = raw_connection(worked, None if worked.site.db.is_sqlite else "postgres")
    if worked.site.db.is_sqlite:
        conn.execute("DROP TRIGGER ledger_audit_no_update")
    else:
        conn.execute("SET session_replication_role = replica")
    conn.execute(f"UPDATE ledger_audit SET actor = 'test-auditor' WHERE seq = {extract}")
    conn.close()
    lied = run_cli(["audit", "--agent", AUDITOR, "--json"], env=worked.env_as(AUDITOR))
    assert lied.exit_code == 4
    assert f"the audit index disagrees with ledger entry {extract}" in lied.stderr
    checked = run_cli(["ledger", "verify", "--audit-index"], env=worked.env_as(AUDITOR))
    assert checked.exit_code == 4
    assert f"the audit index disagrees with ledger entry {extract}" in checked.stderr


def test_an_index_behind_the_ledger_is_refused(worked: SiteEnv) -> None:
    conn = raw_connection(worked, None if worked.site.db.is_sqlite else "postgres")
    if worked.site.db.is_sqlite:
        conn.execute("DROP TRIGGER ledger_audit_no_delete")
    else:
        conn.execute("SET session_replication_role = replica")
    conn.execute("DELETE FROM ledger_audit WHERE seq = (SELECT MAX(seq) FROM ledger_audit)")
    conn.close()
    result = run_cli(["audit"], env=worked.env_as(AUDITOR))
    assert result.exit_code == 4
    assert "the audit index covers" in result.stderr


@pytest.mark.backends("postgresql")
def test_families_and_periods_whatever_the_database_locale(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A French-locale database orders '.' and '/' its own way; the index compares bytes."""
    from tests.conftest import make_site

    server = request.getfixturevalue("pg_server")
    name = f"fr{tmp_path.name[-8:].replace('-', '_')}".lower()
    server.execute(
        f'CREATE DATABASE {name} OWNER "{ADMIN}" TEMPLATE template0 '
        "LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR-u-ka-shifted' LOCALE 'C'"
    )
    env = make_site(tmp_path, database_url=server.url(name, user=ADMIN))
    rows = audit(env, "--action", "agent")
    assert [r["action"] for r in rows] == ["agent.add"] * 4
    assert audit(env, "--action", "agent", "--from", "2000-01-01T00:00") == rows
    env.site.close()
