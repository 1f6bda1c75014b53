"""The access log décret 2023-1102 asks for (`scelle audit --csv`): every consultation,
extraction and deletion done for real on both backends, and each row's every column
checked against what happened: the agent's surname, first name and role as they were
then, the date and time, the reason, the recipient, the camera and the recordings."""

from __future__ import annotations

import ast
import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custody.access import OPERATIONS, Context, Operation, describe
from custody.entry import decode_entry
from custody.timewindow import Window, local_text
from requisition import agents
from requisition.cameras import get_camera
from requisition.consult import consult
from requisition.roles import ACTION_PERMISSION
from tests.conftest import ADMIN, AUDITOR, OPERATOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cli_errors import one_line_error
from tests.test_purge import MIN, ZONE, Footage, store  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent
PV = "PV 2026/004217"
OFFICER, UNIT = "Lieutenant Claire MARTIN", "BSU Villeurbanne"
RECEIVER = "Brigadier Luc PETIT"


def local(us: int) -> str:
    return local_text(us, ZONE)


def log(env: SiteEnv, *args: str, french: bool = False) -> list[dict[str, str]]:
    """`scelle audit --csv --rfc4180`, as an auditor: the rows by their JSON names."""
    extra = {"SCELLE_LANG": "fr"} if french else {}
    result = run_cli(["audit", *args, "--csv", "--rfc4180"], env=env.env_as(AUDITOR) | extra)
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout, newline="")))


def when(env: SiteEnv, seq: str) -> tuple[str, str]:
    """The local date and time (to the second, with its offset) of entry `seq`."""
    stored = decode_entry(env.site.ledger.entry(int(seq)))["time"]
    moment = datetime.fromisoformat(stored).astimezone(ZoneInfo(ZONE)).replace(microsecond=0)
    return moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S") + moment.isoformat()[-6:]


def only(rows: list[dict[str, str]], action: str) -> dict[str, str]:
    (row,) = [r for r in rows if r["action"] == action]
    return row


@pytest.fixture
def accessed(store: Footage, tmp_path: Path) -> tuple[Footage, str, Window]:  # noqa: F811
    """Every kind of access done: a consultation, an extraction, a handover, a retention
    purge destroying footage, an export destroyed a month after its handover."""
    env, site = store.env, store.env.site
    for login, surname, first_name in (
        (OPERATOR, "DURAND", "Marie"),
        (SUPERVISOR, "MARTIN", "Paul"),
    ):
        agents.rename(site, ADMIN, login, surname, first_name, "prénom recueilli")
    window = Window(store.recent.start, store.recent.start + MIN)
    registered = run_cli(
        [
            "requisition",
            "register",
            "--legal-basis",
            "60-1",
            "--pv",
            PV,
            "--officer",
            OFFICER,
            "--unit",
            UNIT,
            "--reason",
            "vol à l'arraché",
            "--window",
            f"C-012={local(window.start)}/{local(window.end)}",
        ],
        env=env.env,
    )
    assert registered.exit_code == 0, registered.stderr
    rid = registered.stdout.split()[1]
    camera = get_camera(site, "C-012")
    consult(site, OPERATOR, camera, window, "le vol est-il filmé ?", requisition=rid)
    assert run_cli(["requisition", "approve", rid], env=env.env_as(SUPERVISOR)).exit_code == 0
    extracted = run_cli(["requisition", "extract", rid, "--out", str(tmp_path)], env=env.env)
    assert extracted.exit_code == 0, extracted.stderr
    # Approved 41 days ago, handed over 40 days ago: its export is due for destruction.
    with site.db.write() as cur:
        approved = (date.today() - timedelta(days=41)).isoformat() + "T10:00:00.000000Z"
        cur.execute("UPDATE requisition SET decided_at = ? WHERE id = ?", [approved, rid])
    handed = run_cli(
        [
            *("requisition", "handover", rid, "--officer", RECEIVER, "--unit", UNIT),
            *("--medium", "usb", "--seal", "S-1"),
            *("--at", f"{date.today() - timedelta(days=40)}T10:00"),
        ],
        env=env.env,
    )
    assert handed.exit_code == 0, handed.stderr
    purged = run_cli(["purge", "--json"], env=env.env_as(SUPERVISOR))
    assert purged.exit_code == 0, purged.stderr  # the old footage, past its 2 days
    (hold,) = json.loads(run_cli(["hold", "list", "--json"], env=env.env).stdout)
    released = run_cli(
        ["hold", "release", str(hold["id"]), "--reason", "jugement rendu"],
        env=env.env_as(SUPERVISOR),
    )
    assert released.exit_code == 0, released.stderr
    again = run_cli(["purge", "--json"], env=env.env_as(SUPERVISOR))
    assert json.loads(again.stdout)["exports_destroyed"] == [rid], again.stderr
    return store, rid, window


def test_every_access_fills_every_column_of_the_decree(
    accessed: tuple[Footage, str, Window],
) -> None:
    footage, rid, window = accessed
    env = footage.env
    rows = log(env)
    requested = f"C-012 {local(window.start)} → {local(window.end)}"
    marie = {"surname": "DURAND", "first_name": "Marie", "role": "operator", "agent": OPERATOR}
    paul = {"surname": "MARTIN", "first_name": "Paul", "role": "supervisor", "agent": SUPERVISOR}
    linked = {"requisition": rid, "procedure": PV, "unit": UNIT, "cameras": "C-012"}
    to_officer = f"{OFFICER}, {UNIT}"
    expected: dict[str, dict[str, str]] = {
        "footage.consult": {
            "operation": "consultation",
            **marie,
            "reason": "le vol est-il filmé ?",
            "recipient": "Marie DURAND, the consulting agent (consultation, no copy made)",
            "recordings": requested,
            **linked,
        },
        "footage.extract": {
            "operation": "extraction",
            **marie,
            "reason": f"extraction for requisition {rid}",
            "recipient": to_officer,
            "recordings": requested,
            **linked,
        },
        "requisition.export": {
            "operation": "extraction",
            **marie,
            "reason": f"export sealed for requisition {rid}",
            "recipient": to_officer,
            "recordings": requested,
            **linked,
        },
        "requisition.handover": {
            "operation": "extraction",
            **marie,
            "reason": f"sealed export handed over to {RECEIVER} ({UNIT})",
            "recipient": f"{RECEIVER}, {UNIT}",
            "recordings": requested,
            **linked,
        },
        "footage.destroy": {
            "operation": "deletion",
            **paul,
            "reason": "retention period expired (CSI L252-5)",
            "recipient": "none (destroyed)",
            "cameras": "C-012",
            "recordings": f"C-012 {local(footage.old.start)} → {local(footage.old.end)}",
            "requisition": "",
            "procedure": "",
            "unit": "",
        },
        "export.destroy": {
            "operation": "deletion",
            **paul,
            "reason": "export kept one month after transmission (CSI L252-3)",
            "recipient": "none (destroyed)",
            "recordings": requested,
            **linked,
        },
    }
    for action, wanted in expected.items():
        row = only(rows, action)
        day, time = when(env, row["seq"])
        assert row == {"seq": row["seq"], "action": action, "date": day, "time": time} | wanted
        assert all(row.values()) or action == "footage.destroy", row  # every field filled
    # The other entries are other, and name their agent too.
    approve = only(rows, "requisition.approve")
    assert (approve["operation"], approve["surname"], approve["role"]) == (
        "other",
        "MARTIN",
        "supervisor",
    )
    assert approve["recipient"] == ""


def test_a_login_nobody_had_designated_reads_unknown_never_blank(
    accessed: tuple[Footage, str, Window],
) -> None:
    """Entry 0 is the site's creation, by the login that designated itself just after
    (with one name: no first name), and then designated the others."""
    footage, _rid, _window = accessed
    rows = log(footage.env)
    created, itself, designated = rows[0], *[r for r in rows if r["action"] == "agent.add"][:2]
    assert (created["seq"], created["action"], created["agent"]) == ("0", "site.init", ADMIN)
    for before in (created, itself):  # its own designation comes into force after its entry
        assert (before["surname"], before["first_name"], before["role"]) == (
            f"unknown (login {ADMIN})",
            "unknown",
            "unknown: not a designated agent at that time",
        )
    assert (designated["surname"], designated["first_name"], designated["role"]) == (
        "Alice Admin",
        "not recorded",
        "admin",
    )
    french = log(footage.env, "--action", "site", french=True)[0]
    assert (french["surname"], french["first_name"], french["role"]) == (
        f"inconnu (identifiant {ADMIN})",
        "inconnu",
        "inconnue : pas un agent désigné à cette date",
    )


def test_a_rename_never_rewrites_earlier_rows(accessed: tuple[Footage, str, Window]) -> None:
    footage, _rid, window = accessed
    env = footage.env
    before = log(env, "--agent", OPERATOR)
    agents.rename(env.site, ADMIN, OPERATOR, "LEROY", "Marie", "mariage")
    consult(env.site, OPERATOR, get_camera(env.site, "C-012"), window, "contrôle")
    after = log(env, "--agent", OPERATOR)
    assert after[: len(before)] == before  # the same rows, word for word
    assert {r["surname"] for r in before if r["operation"] != "other"} == {"DURAND"}
    newest = after[-1]
    assert (newest["action"], newest["surname"], newest["first_name"]) == (
        "footage.consult",
        "LEROY",
        "Marie",
    )
    assert newest["recipient"].startswith("Marie LEROY, ")
    assert newest["reason"] == "contrôle" and newest["requisition"] == ""
    held = next(r for r in after if r["action"] == "hold.place")  # at the registration
    assert (held["surname"], held["first_name"], held["role"]) == ("DURAND", "Marie", "operator")
    designated = log(env, "--action", "agent.add")
    operator = next(r for r in designated if r["reason"].startswith("designated as operator"))
    assert operator["agent"] == ADMIN  # the row of a designation is the administrator's
    json_rows = json.loads(
        run_cli(["audit", "--agent", OPERATOR, "--json"], env=env.env_as(AUDITOR)).stdout
    )
    assert [r["surname"] for r in json_rows if r["action"] == "footage.consult"] == [
        "DURAND",
        "LEROY",
    ]
    assert json_rows[0]["role"] == "operator"  # stored values in JSON, in every language


def test_french_spreadsheet_speaks_the_decrees_words(
    accessed: tuple[Footage, str, Window],
) -> None:
    footage, _rid, _window = accessed
    result = run_cli(["audit", "--csv"], env=footage.env.env_as(AUDITOR) | {"SCELLE_LANG": "fr"})
    assert result.exit_code == 0, result.stderr
    body = io.StringIO(result.stdout.removeprefix("\ufeff"), newline="")
    headers, *rows = list(csv.reader(body, delimiter=";"))
    assert headers == [
        "n°",
        "opération",
        "nom",
        "prénom",
        "qualité",
        "identifiant",
        "date",
        "heure",
        "motif",
        "destinataire",
        "caméras",
        "enregistrements",
        "action",
        "réquisition",
        "procédure",
        "service",
    ]
    by_action = {row[12]: row for row in rows}
    assert by_action["footage.destroy"][1] == "suppression"
    assert by_action["footage.destroy"][9] == "aucun (images détruites)"
    assert by_action["footage.consult"][1:5] == ["consultation", "DURAND", "Marie", "opérateur"]
    assert by_action["footage.consult"][9] == (
        "Marie DURAND, l'agent qui a consulté (consultation, sans copie)"
    )
    assert by_action["requisition.handover"][1] == "extraction"
    assert by_action["requisition.approve"][1:5] == ["autre", "MARTIN", "Paul", "superviseur"]


def test_the_table_names_each_agent(accessed: tuple[Footage, str, Window]) -> None:
    footage, _rid, _window = accessed
    table = run_cli(["audit", "--action", "footage"], env=footage.env.env_as(AUDITOR))
    assert table.exit_code == 0, table.stderr
    consulted = next(line for line in table.stdout.splitlines() if "footage.consult" in line)
    assert "Marie DURAND" in consulted and OPERATOR in consulted


def test_a_third_party_recomputes_the_log_from_a_bundle_offline(
    accessed: tuple[Footage, str, Window], tmp_path: Path
) -> None:
    """Nothing but the bundle's entries and custody/access.py: the same agents, roles,
    recipients and recordings as `scelle audit` shows."""
    footage, _rid, _window = accessed
    env = footage.env.env_as(AUDITOR)
    assert run_cli(["ledger", "checkpoint"], env=env).exit_code == 0
    bundle = tmp_path / "bundle"
    assert run_cli(["ledger", "export", "--out", str(bundle)], env=env).exit_code == 0
    entries = [json.loads(line) for line in (bundle / "entries.jsonl").read_text().splitlines()]
    context = Context()
    for entry in entries:
        context.learn(entry)
    offline = {e["seq"]: describe(e, context) for e in entries}
    shown = json.loads(run_cli(["audit", "--json"], env=env).stdout)
    checked = 0
    for row in shown:
        if row["seq"] not in offline:
            continue  # the queries after the bundle
        access = offline[row["seq"]]
        who = access.designation
        assert row["operation"] == access.operation.value
        assert row["surname"] == (who.surname if who else None)
        assert row["first_name"] == (who.first_name if who else None)
        assert row["role"] == (who.role if who else None)
        assert row["recipient"] == (access.recipient.as_json() if access.recipient else None)
        assert row["recordings"] == [r.text() for r in access.recordings] or access.summary
        checked += 1
    assert checked == len(entries)


def test_every_action_is_classified_once() -> None:
    """Every action an agent's role may record, those only the tables' owner records, and
    every literal a `Record(` in the code names: one operation each."""
    owner_only = {"site.init", "db.copy", "hold.restate", "access.refused"}
    assert set(ACTION_PERMISSION) | owner_only <= set(OPERATIONS)
    named: set[str] = set()
    for folder in ("custody", "exporters", "requisition"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "Record"
                ):
                    continue
                given = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "action")]
                named |= {str(a.value) for a in given if isinstance(a, ast.Constant)}
    assert named and named <= set(OPERATIONS), named - set(OPERATIONS)
    assert set(OPERATIONS) <= set(ACTION_PERMISSION) | owner_only | named  # none left over
    kinds = {op: sorted(a for a, o in OPERATIONS.items() if o is op) for op in Operation}
    assert kinds[Operation.CONSULTATION] == ["footage.consult"]
    assert kinds[Operation.EXTRACTION] == [
        "export.copy",
        "footage.extract",
        "requisition.export",
        "requisition.handover",
    ]
    assert kinds[Operation.DELETION] == ["attachment.destroy", "export.destroy", "footage.destroy"]


def _entry(seq: int, actor: str, action: str, subject: Any, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "actor": actor, "action": action, "subject": subject, "data": data}


def test_older_ledgers_read_the_same_way() -> None:
    """Designations written before surnames were recorded apart (one `name`), a
    purge outcome that named no span, a requisition registered outside the entries."""
    context = Context()
    old = _entry(1, "root", "agent.add", {"agent": "jd"}, name="Jeanne Dupont", role="operator")
    context.learn(old)
    destroyed = _entry(5, "jd", "footage.destroy", {"camera": "C-1", "purge": 3}, segments=7)
    seen = describe(destroyed, context)
    assert seen.designation is not None
    assert (seen.designation.surname, seen.designation.first_name) == ("Jeanne Dupont", "")
    assert seen.recordings == () and seen.summary == "7 segments of camera C-1 (purge 3)"
    assert seen.cameras == ("C-1",)
    handed = describe(_entry(6, "jd", "export.copy", {"requisition": "2026-00009"}), context)
    assert handed.recipient is not None and handed.recipient.text() == (
        "unknown: the registration of requisition 2026-00009 is not in these entries"
    )
    assert describe(_entry(0, "jd", "site.init", "csv"), context).designation is None


def test_a_deletion_is_logged_in_reference_time() -> None:
    """A recorder 1.5 s fast: its destroyed span is logged as every other access is, in
    reference time; an outcome written before reference times were recorded keeps the
    recorder's."""
    context = Context()
    span = {
        "first_utc": "2026-11-01T13:00:01.500000Z",
        "last_end_utc": "2026-11-01T13:01:01.500000Z",
    }
    reference = {
        "first_reference_utc": "2026-11-01T13:00:00.000000Z",
        "last_end_reference_utc": "2026-11-01T13:01:00.000000Z",
    }
    subject = {"camera": "C-1", "purge": 3}
    now = describe(_entry(5, "jd", "footage.destroy", subject, **span, **reference), context)
    assert [(r.start, r.end) for r in now.recordings] == [
        ("2026-11-01T13:00:00.000000Z", "2026-11-01T13:01:00.000000Z")
    ]
    before = describe(_entry(6, "jd", "footage.destroy", subject, **span), context)
    assert [(r.start, r.end) for r in before.recordings] == [
        ("2026-11-01T13:00:01.500000Z", "2026-11-01T13:01:01.500000Z")
    ]


def test_footage_find_records_a_consultation(accessed: tuple[Footage, str, Window]) -> None:
    """Through the CLI: the reason given or the default one, the requisition's PV, and a
    procedure that is not the requisition's refused with nothing recorded."""
    footage, rid, window = accessed
    env = footage.env
    find = ["footage", "find", "C-012", "--from", local(window.start), "--to", local(window.end)]
    plain = run_cli(find, env=env.env)
    assert plain.exit_code == 0, plain.stderr
    entry = decode_entry(env.site.ledger.entry(env.site.ledger.size() - 1))
    assert (entry["action"], entry["actor"], entry["reason"], entry["procedure"]) == (
        "footage.consult",
        OPERATOR,
        "search for recordings",
        None,
    )
    assert entry["subject"] == {"camera": "C-012"}
    assert (entry["data"]["from"], entry["data"]["to"]) == (local(window.start), local(window.end))
    assert entry["data"]["segments"] == 1
    french = run_cli(find, env=env.env | {"SCELLE_LANG": "fr"})
    assert french.exit_code == 0, french.stderr
    said = decode_entry(env.site.ledger.entry(env.site.ledger.size() - 1))["reason"]
    assert said == "recherche d'enregistrements"
    linked = run_cli([*find, "--reason", "vérifier l'angle", "--requisition", rid], env=env.env)
    assert linked.exit_code == 0, linked.stderr
    entry = decode_entry(env.site.ledger.entry(env.site.ledger.size() - 1))
    assert (entry["reason"], entry["procedure"], entry["subject"]) == (
        "vérifier l'angle",
        PV,
        {"camera": "C-012", "requisition": rid},
    )
    size = env.site.ledger.size()
    wrong = run_cli([*find, "--requisition", rid, "--procedure", "PV 1"], env=env.env)
    assert wrong.exit_code == 3
    assert one_line_error(wrong.stderr) == (
        f"scelle: error: requisition {rid} is for procedure {PV}, not PV 1"
    )
    assert env.site.ledger.size() == size
    by_pv = log(env, "--procedure", "PV 9", "--action", "footage.consult")
    assert by_pv == []
    assert run_cli([*find, "--procedure", "PV 9"], env=env.env_as(SUPERVISOR)).exit_code == 0
    (row,) = log(env, "--procedure", "PV 9", "--action", "footage.consult")
    assert (row["surname"], row["role"], row["procedure"]) == ("MARTIN", "supervisor", "PV 9")
    refused = run_cli(find, env=env.env_as(AUDITOR))
    assert refused.exit_code == 5  # an auditor never reads the footage, nor its index
