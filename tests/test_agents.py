"""Designated agents (CSI L252-2) through the CLI, on both backends: who may act, in
which role, and every refusal written to the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custody.entry import decode_entry
from tests.conftest import ADMIN, AUDITOR, OPERATOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cli_errors import one_line_error
from tests.test_requisitions import REGISTER, filmed, register  # noqa: F401 - fixture

INTRUDER = "intruder"  # a login (and PostgreSQL role) that nobody designated


def last_entry(env: SiteEnv) -> dict[str, Any]:
    ledger = env.site.ledger
    return decode_entry(ledger.entry(ledger.size() - 1))


def refused(env: SiteEnv, login: str, args: list[str], message: str) -> dict[str, Any]:
    """Run `args` as `login`: refused with exit 5 and `message`, recorded in the ledger."""
    size = env.site.ledger.size()
    result = run_cli(args, env=env.env_as(login))
    assert result.exit_code == 5, (args, result.stdout, result.stderr)
    assert one_line_error(result.stderr) == f"scelle: error: refused: {message}"
    assert "Traceback" not in result.stderr
    assert env.site.ledger.size() == size + 1
    entry = last_entry(env)
    assert entry["action"] == "access.refused"
    assert entry["actor"] == login
    assert entry["subject"] == {"agent": login, "command": " ".join(args[:2])}
    assert entry["reason"] == message
    return entry


def test_the_register_lists_who_may_act(site_env: SiteEnv) -> None:
    listed = run_cli(["agent", "list", "--json"], env=site_env.env_as(AUDITOR))
    assert listed.exit_code == 0, listed.stderr
    agents = {a["login"]: (a["role"], a["active"]) for a in json.loads(listed.stdout)}
    assert agents == {
        ADMIN: ("admin", True),
        AUDITOR: ("auditor", True),
        OPERATOR: ("operator", True),
        SUPERVISOR: ("supervisor", True),
    }
    table = run_cli(["agent", "list"], env=site_env.env_as(ADMIN)).stdout
    assert "Alice Admin" in table and "AR-1" in table


def test_an_administrator_designates_and_disables(site_env: SiteEnv) -> None:
    admin = site_env.env_as(ADMIN)
    add = ["agent", "add", "dupont", "--surname", "DUPONT", "--first-name", "Jeanne"]
    add += ["--role", "opératrice"]
    made = run_cli([*add, "--designation", "arrêté 2026-114"], env=admin)
    assert made.exit_code == 0, made.stderr
    assert made.stdout.strip() == "agent dupont (Jeanne DUPONT) designated as operator"
    # nothing but the note that no key agent covers its entries (none runs here)
    assert made.stderr.startswith("note: ledger entr") and made.stderr.count("\n") == 1
    entry = last_entry(site_env)
    assert (entry["action"], entry["actor"], entry["subject"]) == (
        "agent.add",
        ADMIN,
        {"agent": "dupont"},
    )
    assert entry["data"] == {
        "name": "Jeanne DUPONT",
        "surname": "DUPONT",
        "first_name": "Jeanne",
        "role": "operator",
        "designation": "arrêté 2026-114",
    }
    listed = json.loads(run_cli(["agent", "list", "--json"], env=admin).stdout)
    dupont = next(a for a in listed if a["login"] == "dupont")
    assert (dupont["name"], dupont["surname"], dupont["first_name"]) == (
        "Jeanne DUPONT",
        "DUPONT",
        "Jeanne",
    )
    again = run_cli([*add, "--designation", "x"], env=admin)
    assert again.exit_code == 5 and "dupont is already in the agents register" in again.stderr
    bad_role = run_cli(
        ["agent", "add", "x", "--name", "X", "--role", "chief", "--designation", "d"], env=admin
    )
    assert bad_role.exit_code == 3
    assert "unknown role 'chief': one of operator, supervisor, auditor, admin" in bad_role.stderr
    bad_login = run_cli(
        ["agent", "add", "../x", "--name", "X", "--role", "operator", "--designation", "d"],
        env=admin,
    )
    assert bad_login.exit_code == 3 and "invalid login" in bad_login.stderr
    gone = run_cli(["agent", "disable", "dupont", "--reason", "mutée"], env=admin)
    assert gone.exit_code == 0 and gone.stdout.strip() == "agent dupont disabled"
    assert last_entry(site_env)["action"] == "agent.disable"
    listed = json.loads(run_cli(["agent", "list", "--json"], env=admin).stdout)
    dupont = next(a for a in listed if a["login"] == "dupont")
    assert (dupont["active"], dupont["disabled_by"], dupont["disabled_reason"]) == (
        False,
        ADMIN,
        "mutée",
    )
    last_admin = run_cli(["agent", "disable", ADMIN, "--reason", "x"], env=admin)
    assert last_admin.exit_code == 5
    assert "test-admin is the last active administrator" in last_admin.stderr


def test_only_an_administrator_designates(site_env: SiteEnv) -> None:
    args = ["agent", "add", "x", "--name", "X", "--role", "admin", "--designation", "d"]
    refused(
        site_env,
        SUPERVISOR,
        args,
        "test-supervisor (supervisor) may not designate or disable agents",
    )
    assert "x" not in run_cli(["agent", "list"], env=site_env.env_as(ADMIN)).stdout


def test_an_operator_cannot_approve(filmed: SiteEnv) -> None:  # noqa: F811 - fixture
    rid = register(filmed.env)
    entry = refused(
        filmed,
        OPERATOR,
        ["requisition", "approve", rid],
        "test-operator (operator) may not approve or deny requisitions",
    )
    assert entry["data"] == {"permission": "decide"}
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)
    assert shown["state"] == "received"


def test_an_auditor_cannot_extract(filmed: SiteEnv, tmp_path: Path) -> None:  # noqa: F811
    rid = register(filmed.env)
    assert run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR)).exit_code == 0
    out = tmp_path / "exports"
    refused(
        filmed,
        AUDITOR,
        ["requisition", "extract", rid, "--out", str(out)],
        "test-auditor (auditor) may not extract footage",
    )
    assert not out.exists()
    refused(
        filmed,
        AUDITOR,
        ["footage", "find", "C-012", "--from", "2026-11-24T10:00", "--to", "2026-11-24T10:05"],
        "test-auditor (auditor) may not search the footage index",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["camera", "list"],
        ["requisition", "list"],
        ["footage", "scan"],
        ["ledger", "verify"],
        ["hold", "list"],
        ["audit"],
        REGISTER,
    ],
)
def test_a_disabled_agent_cannot_do_anything(site_env: SiteEnv, args: list[str]) -> None:
    disabled = run_cli(
        ["agent", "disable", OPERATOR, "--reason", "fin de désignation"],
        env=site_env.env_as(ADMIN),
    )
    assert disabled.exit_code == 0, disabled.stderr
    entry = refused(site_env, OPERATOR, args, f"{OPERATOR} is disabled since {_since(site_env)}")
    assert entry["data"]["permission"]


def _since(env: SiteEnv) -> str:
    listed = json.loads(run_cli(["agent", "list", "--json"], env=env.env_as(ADMIN)).stdout)
    return str(next(a for a in listed if a["login"] == OPERATOR)["disabled_at"])


def test_an_unknown_login_is_refused_and_recorded(site_env: SiteEnv) -> None:
    refused(
        site_env,
        INTRUDER,
        ["requisition", "list"],
        f"{INTRUDER} is not a designated agent of this site",
    )
    audit = run_cli(["audit", "--action", "access.refused", "--json"], env=site_env.env_as(AUDITOR))
    rows = json.loads(audit.stdout)
    assert [(r["agent"], r["action"]) for r in rows] == [(INTRUDER, "access.refused")]


def test_init_makes_the_login_the_first_administrator(tmp_path: Path, database_url: str) -> None:
    env = {
        "SCELLE_HOME": str(tmp_path / "site"),
        "SCELLE_PASSPHRASE": "correct horse battery staple",
    }
    made = run_cli(["init", "--site-name", "csv.test", "--admin-name", "Alice Admin"], env=env)
    assert made.exit_code == 0, made.stderr
    assert f"administrator {ADMIN}" in made.stdout
    listed = json.loads(run_cli(["agent", "list", "--json"], env=env).stdout)
    assert [(a["login"], a["name"], a["role"]) for a in listed] == [(ADMIN, "Alice Admin", "admin")]


def test_a_name_in_one_piece_still_designates(site_env: SiteEnv) -> None:
    """`--name`, as scripts gave it before: kept whole as the surname, no first name (a
    split would guess), and a warning that the access log wants one."""
    admin = site_env.env_as(ADMIN)
    args = ["agent", "add", "durand", "--name", "Marie Durand", "--role", "operator"]
    made = run_cli([*args, "--designation", "AR-9"], env=admin)
    assert made.exit_code == 0, made.stderr
    assert made.stdout.strip() == "agent durand (Marie Durand) designated as operator"
    assert "no first name recorded for durand" in made.stderr
    data = last_entry(site_env)["data"]
    assert (data["name"], data["surname"], data["first_name"]) == (
        "Marie Durand",
        "Marie Durand",
        "",
    )


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["--name", "X", "--surname", "X"], "give --surname and --first-name, or --name, not both"),
        (
            ["--name", "X", "--first-name", "Y"],
            "give --surname and --first-name, or --name, not both",
        ),
        ([], "give the agent's --surname and --first-name"),
        (["--first-name", "Marie"], "give the agent's --surname and --first-name"),
    ],
)
@pytest.mark.backends("sqlite")
def test_the_name_is_given_one_way(site_env: SiteEnv, names: list[str], message: str) -> None:
    size = site_env.site.ledger.size()
    args = ["agent", "add", "x", *names, "--role", "operator", "--designation", "d"]
    result = run_cli(args, env=site_env.env_as(ADMIN))
    assert result.exit_code == 2
    assert one_line_error(result.stderr) == f"scelle: error: {message}"
    assert site_env.site.ledger.size() == size


def test_an_agent_is_renamed_and_the_ledger_says_so(site_env: SiteEnv) -> None:
    admin = site_env.env_as(ADMIN)
    rename = ["agent", "rename", OPERATOR, "--surname", "DURAND", "--first-name", "Marie"]
    done = run_cli([*rename, "--reason", "prénom recueilli"], env=admin)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == f"agent {OPERATOR} now named Marie DURAND"
    entry = last_entry(site_env)
    assert (entry["action"], entry["actor"], entry["subject"], entry["reason"]) == (
        "agent.rename",
        ADMIN,
        {"agent": OPERATOR},
        "prénom recueilli",
    )
    assert entry["data"] == {
        "name": "Marie DURAND",
        "surname": "DURAND",
        "first_name": "Marie",
        "role": "operator",
        "designation": "AR-2",
        "was": OPERATOR,
    }
    again = run_cli([*rename, "--reason", "x"], env=admin)
    assert again.exit_code == 5 and "is already named Marie DURAND" in again.stderr
    unknown = ["agent", "rename", "nobody", "--surname", "A", "--first-name", "B", "--reason", "r"]
    assert run_cli(unknown, env=admin).exit_code == 3
    refused(
        site_env,
        SUPERVISOR,
        [*rename[:3], "--surname", "X", "--first-name", "Y", "--reason", "r"],
        "test-supervisor (supervisor) may not designate or disable agents",
    )


def test_identity_names_an_agent_for_the_papers(site_env: SiteEnv) -> None:
    from custody import i18n
    from requisition.agents import AgentIdentity, identity

    admin = site_env.env_as(ADMIN)
    add = ["agent", "add", "mdurand", "--surname", "DURAND", "--first-name", "Marie"]
    made = run_cli([*add, "--role", "operator", "--designation", "arrêté 2026-7"], env=admin)
    assert made.exit_code == 0, made.stderr
    found = identity(site_env.site, "mdurand")
    assert found == AgentIdentity("mdurand", "DURAND", "Marie", "operator", "arrêté 2026-7")
    assert found.full_name == "Marie DURAND"
    assert found.role_text == "operator"
    i18n.use("fr")
    try:
        assert found.role_text == "opérateur"
    finally:
        i18n.use("en")
    assert identity(site_env.site, INTRUDER) is None
    old = identity(site_env.site, ADMIN)  # designated with one name: the surname
    assert old is not None and (old.surname, old.first_name) == ("Alice Admin", "")
    assert old.full_name == "Alice Admin"
