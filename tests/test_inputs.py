"""Bad input gets one clear line and loses nothing (issue 12): every text a person types
or a file provides, every number, every file format, on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from custody.entry import Record
from custody.errors import InputError, InvalidStateError
from custody.text import line, prose, whole_number
from custody.timewindow import parse_time, to_us
from requisition.agents import NewAgent
from requisition.cameras import CameraSpec, read_csv
from requisition.handover import Handover
from requisition.requisitions import RequisitionRequest, WindowRequest, register
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cameras import ADD, HEADER
from tests.test_cli_errors import one_line_error, snapshot

ROOT = Path(__file__).parent.parent
DAY = (date.today() - timedelta(days=1)).isoformat()
FIELDS = {
    "legal_basis": "60-1",
    "pv_number": "PV 2026/000123",
    "officer_name": "Brigadier Durand",
    "officer_unit": "BSU Villeurbanne",
    "reason": "rixe",
}
WINDOW = {"camera": "C-012", "from": f"{DAY}T10:00", "to": f"{DAY}T10:02"}
REGISTER = ["requisition", "register", "--legal-basis", "60-1", "--pv", "PV 2026/000123"]
REGISTER += ["--officer", "Brigadier Durand", "--unit", "BSU Villeurbanne", "--reason", "rixe"]
REGISTER += ["--window", f"C-012={DAY}T10:00/{DAY}T10:02"]


@pytest.fixture
def camera(site_env: SiteEnv) -> Iterator[SiteEnv]:
    """A site with camera C-012 (no footage: registering holds it all the same)."""
    result = run_cli(ADD, env=site_env.env_as(ADMIN))
    assert result.exit_code == 0, result.stderr
    site_env.site.close()
    yield site_env


def refused(env: SiteEnv, args: list[str], login: str, code: int) -> str:
    """Run `args`; assert the exit code, one line, nothing written, the ledger verifies."""
    size = env.site.ledger.size()
    before = snapshot(env.settings.home)
    result = run_cli(args, env=env.env_as(login))
    assert result.exit_code == code, (result.stdout, result.stderr)
    message = one_line_error(result.stderr)
    assert env.site.ledger.size() == size
    assert snapshot(env.settings.home) == before
    verified = run_cli(["ledger", "verify"], env=env.env_as(AUDITOR))
    assert verified.exit_code == 0, verified.stderr
    return message


def requisition_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


# 1. Nesting without end: a RecursionError traceback before.


@pytest.mark.parametrize(
    ("name", "body", "kind"),
    [
        ("deep.json", '{"pv_number": ' + "[" * 100_000 + "]" * 100_000 + "}", "JSON"),
        ("deep.toml", "pv_number = " + "[" * 100_000 + "]" * 100_000 + "\n", "TOML"),
    ],
)
def test_a_requisition_file_nested_100000_deep(
    camera: SiteEnv, tmp_path: Path, name: str, body: str, kind: str
) -> None:
    path = requisition_file(tmp_path, name, body)
    with pytest.raises(InputError, match="nested too deeply"):
        RequisitionRequest.from_file(path)
    message = refused(camera, ["requisition", "register", "--file", str(path)], "test-operator", 3)
    assert message == f"scelle: error: {path}: not valid {kind}: nested too deeply"


def test_a_requisition_file_too_large_to_be_one(camera: SiteEnv, tmp_path: Path) -> None:
    path = requisition_file(tmp_path, "big.json", json.dumps({**FIELDS, "reason": "x" * 2**20}))
    message = refused(camera, ["requisition", "register", "--file", str(path)], "test-operator", 3)
    assert message == (
        f"scelle: error: {path} is larger than 1,000,000 bytes: not a requisition file"
    )


# 2. Numbers beyond what a database holds: OverflowError before.


@pytest.mark.parametrize(
    ("args", "login", "message"),
    [
        (
            ["hold", "release", "9223372036854775808", "--reason", "x"],
            SUPERVISOR,
            "HOLD must be between 0 and 9223372036854775807, not '9223372036854775808'",
        ),
        (
            ["ledger", "show", "--limit", "99999999999999999999"],
            AUDITOR,
            "--limit must be between 0 and 9223372036854775807, not '99999999999999999999'",
        ),
        (
            ["ledger", "proof", "inclusion", "--index", "9223372036854775808"],
            AUDITOR,
            "--index must be between 0 and 9223372036854775807, not '9223372036854775808'",
        ),
        (
            ["ledger", "proof", "inclusion", "--index", "0", "--size", "-1"],
            AUDITOR,
            "--size must be a whole number (digits 0-9 only), not '-1'",
        ),
        (
            ["ledger", "proof", "consistency", "--from", "1", "--to", "9" * 5000],
            AUDITOR,
            f"--to must be between 0 and 9223372036854775807, not {'9' * 30!r}… (5,000 characters)",
        ),
        (
            ["ledger", "export", "--from", "9223372036854775808"],
            AUDITOR,
            "--from must be between 0 and 9223372036854775807, not '9223372036854775808'",
        ),
        (
            ["ledger", "export", "--to", "18446744073709551616"],
            AUDITOR,
            "--to must be between 0 and 9223372036854775807, not '18446744073709551616'",
        ),
        (
            ["ledger", "disavow", "9223372036854775808", "--reason", "forged"],
            ADMIN,
            "CHECKPOINT must be between 0 and 9223372036854775807, not '9223372036854775808'",
        ),
        (
            ["ledger", "show", "1_0"],
            AUDITOR,
            "N must be a whole number (digits 0-9 only), not '1_0'",
        ),
        (
            [
                "footage",
                "generate",
                "--camera",
                "C-012",
                "--from",
                f"{DAY}T10:00",
                "--to",
                f"{DAY}T10:01",
                "--segment-seconds",
                "99999999999999999999",
            ],
            ADMIN,
            "--segment-seconds must be between 1 and 3600, not '99999999999999999999'",
        ),
    ],
)
def test_out_of_range_numbers_are_one_line(
    camera: SiteEnv, args: list[str], login: str, message: str
) -> None:
    assert refused(camera, args, login, 3) == f"scelle: error: {message}"


# 3. Control characters: a NUL stored by SQLite broke `db copy` to PostgreSQL before.


@pytest.mark.parametrize(
    ("args", "login", "message"),
    [
        (
            [*REGISTER[:5], "PV\x00123", *REGISTER[6:]],
            "test-operator",
            "--pv contains the control character U+0000 at character 3",
        ),
        (
            [*REGISTER[:11], "rixe \x1b[2Jeffacé", *REGISTER[12:]],
            "test-operator",
            "--reason contains the control character U+001B at character 6",
        ),
        (
            [*ADD[:2], "C-013", "--name", "Place\x00", *ADD[5:]],
            ADMIN,
            "--name contains the control character U+0000 at character 6",
        ),
        (
            [
                "hold",
                "place",
                "--camera",
                "C-012",
                "--from",
                f"{DAY}T10:00",
                "--to",
                f"{DAY}T10:01",
                "--reason",
                "appel\x00du parquet",
            ],
            "test-operator",
            "--reason contains the control character U+0000 at character 6",
        ),
        (
            ["ledger", "note", "scellé n°\u202e42", "--reason", "ouvert"],
            ADMIN,
            "SUBJECT contains the control character U+202E at character 10",
        ),
        (
            [
                "agent",
                "add",
                "dupont",
                "--name",
                "Jean\nDupont",
                "--role",
                "operator",
                "--designation",
                "AR-3",
            ],
            ADMIN,
            "--name contains the control character U+000A at character 5",
        ),
        (
            [
                "requisition",
                "handover",
                "2026-00001",
                "--officer",
                "OPJ\rDurand",
                "--unit",
                "BSU",
                "--medium",
                "usb",
                "--seal",
                "S-1",
            ],
            "test-operator",
            "--officer contains the control character U+000D at character 4",
        ),
        (
            ["--database-url", "sqlite:///x\x1b[2J", "ledger", "show"],
            AUDITOR,
            "--database-url contains the control character U+001B at character 12",
        ),
        (
            ["requisition", "deny", "2026-00001", "--reason", "x\x00"],
            SUPERVISOR,
            "--reason contains the control character U+0000 at character 2",
        ),
    ],
)
def test_control_characters_are_refused_where_typed(
    camera: SiteEnv, args: list[str], login: str, message: str
) -> None:
    shown = refused(camera, args, login, 3)
    assert shown == f"scelle: error: {message}: only printable text is accepted"


def test_a_reason_may_span_lines_and_tabs(camera: SiteEnv) -> None:
    result = run_cli(
        ["ledger", "note", "scellé S-1", "--reason", "ouvert\n\tpar l'OPJ"], env=camera.env
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(run_cli(["ledger", "show", "--json"], env=camera.env_as(AUDITOR)).stdout)
    assert shown[-1]["reason"] == "ouvert\n\tpar l'OPJ"


def test_control_characters_are_refused_in_the_library(camera: SiteEnv, tmp_path: Path) -> None:
    site = camera.site
    size = site.ledger.size()
    with pytest.raises(InputError, match=r"^officer_unit contains the control character U\+0000"):
        register(site, RequisitionRequest(**{**FIELDS, "officer_unit": "BSU\x00"}, windows=()), "x")
    with pytest.raises(InputError, match=r"^window 1: from contains the control character"):
        request = RequisitionRequest(**FIELDS, windows=(WindowRequest("C-012", "\x00", "x"),))
        register(site, request, "x")
    with pytest.raises(InputError, match=r"^seal number contains the control character U\+0007"):
        Handover("OPJ Durand", "BSU", "usb", ["S-\x07"])
    with pytest.raises(InputError, match=r"^the agent's name contains the control character"):
        NewAgent("dupont", "Jean\x00", "operator", "AR-3").checked()
    with pytest.raises(InputError, match=r"^camera C-1: location contains the control char"):
        CameraSpec("C-1", "a", "rue\x85", "c", "AP-1", "2029-05-01").row(tmp_path)
    path = requisition_file(
        tmp_path, "nul.json", json.dumps({**FIELDS, "pv_number": "PV\x00", "windows": [WINDOW]})
    )
    with pytest.raises(InputError, match=r"nul.json: pv_number contains the control character"):
        RequisitionRequest.from_file(path)
    csv_file = tmp_path / "nul.csv"
    csv_file.write_text(HEADER + "C-1,Gare\x00,Parvis,Lyon,AP-1,2028-01-01,30,0\n")
    with pytest.raises(InputError, match=r"nul.csv line 2: camera C-1: name contains the contr"):
        read_csv(csv_file, tmp_path)
    assert site.ledger.size() == size


def test_text_rules() -> None:
    assert line("Brigadier Durand — BSU", "x") == "Brigadier Durand — BSU"
    assert prose("ligne 1\nligne 2\ttab", "x") == "ligne 1\nligne 2\ttab"
    for bad in ("a\x00", "a\x7f", "a\x9b", "a\u2028", "a\u2066", "\ud800"):
        with pytest.raises(InputError):
            line(bad, "x")
        with pytest.raises(InputError):
            prose(bad, "x")
    with pytest.raises(InputError):
        line("a\nb", "x")


@pytest.mark.backends("sqlite")
def test_db_copy_names_a_row_postgresql_cannot_store(
    camera: SiteEnv, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.conftest import fresh_database, raw_connection

    conn = raw_connection(camera)  # a row written before the input was checked
    conn.execute("UPDATE camera SET name = 'Place' || char(0) || 'Mairie' WHERE id = 'C-012'")
    conn.close()
    target = fresh_database("postgresql", request, tmp_path / "pg")
    result = run_cli(["db", "copy", "--to", target], env=camera.env_as(ADMIN))
    assert result.exit_code == 5, result.stderr
    assert one_line_error(result.stderr) == (
        "scelle: error: table camera, row id='C-012': name holds a NUL character, which "
        "PostgreSQL cannot store; nothing was copied"
    )
    assert "hint: correct that value in the source database" in result.stderr
    assert run_cli(["ledger", "verify"], env=camera.env_as(AUDITOR)).exit_code == 0
    import psycopg

    with psycopg.connect(target.replace("+psycopg", "")) as pg:
        assert pg.execute("SELECT COUNT(*) FROM ledger_entry").fetchone() == (0,)


# 4, 5, 11. Requisition files: flags beside --file, a key twice, a field missing.


def test_file_and_field_flags_together_are_refused(camera: SiteEnv, tmp_path: Path) -> None:
    path = requisition_file(tmp_path, "r.json", json.dumps({**FIELDS, "windows": [WINDOW]}))
    args = ["requisition", "register", "--file", str(path), "--pv", "PV 9", "--officer", "X"]
    assert refused(camera, args, "test-operator", 2) == (
        "scelle: error: --file holds the whole requisition: --pv, --officer cannot be added to "
        "it (edit the file, or give every field as an option without --file)"
    )


def test_a_key_given_twice_in_json(camera: SiteEnv, tmp_path: Path) -> None:
    body = json.dumps({**FIELDS, "windows": [WINDOW]})
    path = requisition_file(tmp_path, "twice.json", body[:-1] + ', "pv_number": "PV 666"}')
    message = refused(camera, ["requisition", "register", "--file", str(path)], "test-operator", 3)
    assert message == f"scelle: error: {path}: the key 'pv_number' is given twice"
    inner = body.replace('"to":', '"from": "x", "to":')
    path = requisition_file(tmp_path, "twice-window.json", inner)
    with pytest.raises(InputError, match="the key 'from' is given twice"):
        RequisitionRequest.from_file(path)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({k: v for k, v in FIELDS.items() if k != "pv_number"}, "missing field 'pv'"),  # as --pv
        ({**FIELDS, "windows": [{"camera": "C-012", "from": "x"}]}, "window 1: missing field 'to'"),
        ({**FIELDS, "pv_number": 123}, "pv_number must be text, not a number"),
        ({**FIELDS, "colour": "blue"}, "unknown field 'colour'"),
        ({**FIELDS, "windows": [{**WINDOW, "zoom": "x"}]}, "window 1: unknown field 'zoom'"),
    ],
)
def test_requisition_file_fields_are_named_as_written(
    camera: SiteEnv, tmp_path: Path, doc: dict[str, object], message: str
) -> None:
    path = requisition_file(tmp_path, "r.json", json.dumps(doc))
    shown = refused(camera, ["requisition", "register", "--file", str(path)], "test-operator", 3)
    assert shown == f"scelle: error: {path}: {message}"


# 6, 7, 14. Numbers in ASCII digits, a column once, an authorisation in force.


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--retention-days", "1_0"],
            "camera C-012: retention_days must be a whole number (digits 0-9 only), not '1_0'",
        ),
        (
            ["--retention-days", "٣"],
            "camera C-012: retention_days must be a whole number (digits 0-9 only), not '٣'",
        ),
        (
            ["--clock-offset-ms", "1_200"],
            "camera C-012: clock_offset_ms must be a whole number (digits 0-9, after a sign if "
            "need be), not '1_200'",
        ),
        (
            ["--authorisation-expires", "2001-01-01"],
            "camera C-012: authorisation AP-2024-117 expired on 2001-01-01: a camera is "
            "registered under an authorisation in force",
        ),
        (
            ["--store-path", "/etc/passwd"],
            "camera C-012: store /etc/passwd exists and is not a directory",
        ),
    ],
)
def test_camera_fields(site_env: SiteEnv, extra: list[str], message: str) -> None:
    assert refused(site_env, [*ADD, *extra], ADMIN, 3) == f"scelle: error: {message}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + "C-1,a,b,c,d,2028-01-01,1_0,0\n", "line 2: camera C-1: retention_days must be"),
        (HEADER + "C-1,a,b,c,d,2028-01-01,٣,0\n", "line 2: camera C-1: retention_days must be"),
        (HEADER + "C-1,a,b,c,d,2028-01-01,3,-٣\n", "line 2: camera C-1: clock_offset_ms must be"),
        (
            HEADER.replace("retention_days", "name") + "C-1,a,b,c,d,2028-01-01,3,0\n",
            "line 1: column 'name' appears twice",
        ),
        (
            HEADER + "C-1,a,b,c,AP-7,2028-01-01,3,0\nC-2,a,b,c,AP-8,2001-01-01,3,0\n",
            "line 3: camera C-2: authorisation AP-8 expired on 2001-01-01",
        ),
    ],
)
def test_camera_inventories(site_env: SiteEnv, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(content, encoding="utf-8")
    shown = refused(site_env, ["camera", "import", str(path)], ADMIN, 3)
    assert shown.startswith(f"scelle: error: {path} {message}"), shown


def test_numbers_and_times_in_ascii_digits_only() -> None:
    assert whole_number(" 30 ", "x") == 30
    assert whole_number("-1200", "x", signed=True, low=-(10**6)) == -1200
    for bad in ("1_0", "٣", "３", "+3", "3.0", "", "0x1f"):
        with pytest.raises(InputError):
            whole_number(bad, "x")
    with pytest.raises(InputError, match="malformed time"):
        parse_time("2026-03-14T09:30+٠١:00", "Europe/Paris")


# 8. A store that is a file: accepted before, then every scan broke.


def test_a_scan_names_an_unusable_store_and_indexes_the_others(camera: SiteEnv) -> None:
    from exporters.index import camera_store
    from requisition.cameras import get_camera

    other = [*ADD[:2], "C-099", *ADD[3:], "--store-path", "elsewhere"]
    assert run_cli(other, env=camera.env_as(ADMIN)).exit_code == 0
    good = get_camera(camera.site, "C-012")
    store = camera_store(good)
    start = to_us(parse_time(f"{DAY}T10:00", good.timezone))
    for i in range(3):
        path = store.segment_path(good.store_camera, start + i * 60_000_000, 60_000_000)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"segment %d" % i)
        os.utime(path, (0, 0))  # long settled
    (camera.settings.home / "elsewhere").write_text("a file where a store should be")
    result = run_cli(["footage", "scan"], env=camera.env)
    assert result.exit_code == 6
    assert one_line_error(result.stderr) == (
        f"scelle: error: camera C-099 not indexed: store {camera.settings.home / 'elsewhere'} "
        "exists and is not a directory"
    )
    assert result.stdout.startswith("3 new segments (27 bytes) in 1 directories of 1 cameras")
    assert run_cli(["ledger", "verify"], env=camera.env_as(AUDITOR)).exit_code == 0


# 9. A password holding '@' leaked in `config show` and in errors.


def test_no_part_of_a_password_is_ever_shown(tmp_path: Path) -> None:
    from custody.db import hide_password

    for url, shown in [
        ("postgresql://scelle:s3cr@t-PW@db:5432/csv", "postgresql://scelle:***@db:5432/csv"),
        ("postgresql://scelle:s3cr/t-PW@db/csv", "postgresql://scelle:***@***"),
        ("postgresql://scelle:s3cr?t-PW@db/csv", "postgresql://scelle:***@***"),
        ("postgresql://scelle:s3cr#t-PW@db/csv", "postgresql://scelle:***@***"),
        ("postgresql://scelle@db/csv?password=s3cr@t-PW", "postgresql://scelle@db/csv"),
        ("postgresql://db:5432/csv?password=s3cr@t-PW", "postgresql://db:***@***"),
        ("sqlite:////srv/csv@site/scelle.db", "sqlite:////srv/csv@site/scelle.db"),
    ]:
        assert hide_password(url) == shown, url
    env = {"SCELLE_HOME": str(tmp_path)}
    for url in ("postgresql://scelle:s3cr@t-PW@127.0.0.1:1/csv", "postgresql://u:s3cr/t-PW@h/d"):
        for args in (["config", "show"], ["ledger", "show"], ["db", "copy", "--to", url]):
            result = run_cli(args, env={**env, "SCELLE_DATABASE_URL": url})
            assert result.exit_code == 3, (args, result.stderr)
            assert "s3cr" not in result.stderr + result.stdout
            assert "t-PW" not in result.stderr + result.stdout
            assert "the password holds an unencoded '@' or '/'" in one_line_error(result.stderr)
    url = "postgresql://u:s3cr?t-PW@127.0.0.1:1/d"  # '?' is read right: accepted, and hidden
    result = run_cli(["config", "show"], env={**env, "SCELLE_DATABASE_URL": url})
    assert result.exit_code == 0
    assert "s3cr" not in result.stdout and "t-PW" not in result.stdout


# 10. `| head -1`: "Broken pipe" and exit 6 before.


def test_a_reader_that_closes_the_pipe_early(camera: SiteEnv) -> None:
    filler = [Record("ledger.note", f"note {i}", "filler") for i in range(2000)]
    camera.site.ledger.append_many(ADMIN, filler)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "ledger", "show", "--limit", "2000"],
        cwd=ROOT,
        env={**os.environ, **camera.env_as(AUDITOR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # as `head -1` does: one line, then it is gone
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


# 12, 13. Values quoted as typed; lengths stated.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["audit", "--from", "garbage"],
            "--from 'garbage' is not a date or a local time: write it as 29/11/2026, "
            "29/11/2026 14:00 or 2026-11-29T14:00",
        ),
        (
            ["audit", "--to", "2026-02-30"],
            "--to '2026-02-30' is not a date or a local time: write it as 29/11/2026, "
            "29/11/2026 14:00 or 2026-11-29T14:00",
        ),
        (
            ["doc", "register", "--from", "2026-01-01", "--to", "demain"],
            "--to 'demain' is not a day: write it as 29/11/2026 or 2026-11-29",
        ),
    ],
)
def test_bad_dates_are_quoted_as_typed(camera: SiteEnv, args: list[str], message: str) -> None:
    login = AUDITOR if args[0] == "audit" else "test-operator"
    assert refused(camera, args, login, 3) == f"scelle: error: {message}"


def test_lengths_are_bounded_and_stated(camera: SiteEnv, tmp_path: Path) -> None:
    long_pv = [*REGISTER[:5], "P" * 301, *REGISTER[6:]]
    assert refused(camera, long_pv, "test-operator", 3) == (
        "scelle: error: --pv is 301 characters long: at most 300"
    )
    long_reason = [*REGISTER[:11], "r" * 4001, *REGISTER[12:]]
    assert refused(camera, long_reason, "test-operator", 3) == (
        "scelle: error: --reason is 4,001 characters long: at most 4,000"
    )
    size = camera.site.ledger.size()
    windows = (WindowRequest("C-012", f"{DAY}T10:00", f"{DAY}T10:02"),)
    huge = RequisitionRequest(**{**FIELDS, "pv_number": "9" * 20_000_000}, windows=windows)
    with pytest.raises(InputError) as caught:
        register(camera.site, huge, "x")
    assert caught.value.message == "pv_number is 20,000,000 characters long: at most 300"
    assert camera.site.ledger.size() == size


# 16. A manifest far larger than any export's: 2.4 minutes and 1.5 GB before.


def test_verify_refuses_a_huge_manifest_at_once(tmp_path: Path) -> None:
    import time

    with (tmp_path / "manifest.json").open("wb") as handle:
        handle.truncate(264 * 1024 * 1024)  # sparse: the size is what matters
    start = time.monotonic()
    result = run_cli(["verify", str(tmp_path)])
    assert time.monotonic() - start < 10
    assert result.exit_code == 4
    assert one_line_error(result.stderr) == (
        "scelle: error: 1 check(s) failed; first: manifest (manifest.json readable, canonical, "
        "of a format this scelle reads): manifest.json is 276,824,064 bytes, far more than an "
        "export's manifest (at most 67,108,864): not a scelle manifest"
    )
    assert "FAIL  manifest (" in result.stdout  # named as VERIFY.html names it


# 17, 18. The same requisition twice; a window in the future.


def test_the_same_requisition_twice_is_refused_unless_forced(camera: SiteEnv) -> None:
    first = run_cli(REGISTER, env=camera.env)
    assert first.exit_code == 0, first.stderr
    rid = first.stdout.split()[1]
    message = refused(camera, REGISTER, "test-operator", 5)
    assert message == (
        f"scelle: error: requisition {rid} (received) already has PV number 'PV 2026/000123' "
        "and the same windows"
    )
    forced = run_cli([*REGISTER, "--force"], env=camera.env)
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.split()[1] != rid
    with pytest.raises(InvalidStateError, match=f"requisition {rid}"):
        windows = (WindowRequest("C-012", f"{DAY}T10:00", f"{DAY}T10:02"),)
        register(camera.site, RequisitionRequest(**FIELDS, windows=windows), "test-operator")


def test_a_window_in_the_future_is_refused(camera: SiteEnv) -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    args = [*REGISTER[:-1], f"C-012={tomorrow}T10:00/{tomorrow}T11:00"]
    message = refused(camera, args, "test-operator", 3)
    prefix = (
        f"scelle: error: the window C-012={tomorrow}T10:00/{tomorrow}T11:00 ends in the future: "
        "only footage already recorded can be requested, e.g. C-012="
    )
    assert message.startswith(prefix), message
    example = message.removeprefix(prefix)
    start, end = example.split("/")
    assert parse_time(end, "Europe/Paris") > parse_time(start, "Europe/Paris")


# 19. `config show` named the default site name after `init --site-name`.


def test_config_show_names_the_site_as_initialised(site_env: SiteEnv) -> None:
    site_env.site.close()
    env = {**site_env.env, "SCELLE_SITE_NAME": "another.name"}
    shown = run_cli(["config", "show", "--json"], env=env)
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["site_name"] == {
        "value": "csv.test",
        "source": "ledger entry 0, set at init; env SCELLE_SITE_NAME says 'another.name', ignored",
    }
    plain = run_cli(["config", "show"], env=site_env.env)
    assert "site_name          csv.test  (ledger entry 0, set at init)" in plain.stdout


@pytest.mark.backends("sqlite")
def test_config_show_after_init_with_a_site_name(tmp_path: Path) -> None:
    env = {"SCELLE_HOME": str(tmp_path / "site"), "SCELLE_PASSPHRASE": "x"}
    assert run_cli(["init", "--site-name", "csv.villeurbanne.fr"], env=env).exit_code == 0
    shown = run_cli(["config", "show"], env=env)
    assert "csv.villeurbanne.fr  (ledger entry 0, set at init)" in shown.stdout
