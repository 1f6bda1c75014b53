"""Requisitions through the CLI: registration with holds, four eyes, bad input refused
with nothing written, and extraction killed mid-way leaving all or nothing."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from custody.timewindow import parse_window
from exporters.generate import generate_footage
from exporters.index import scan
from requisition.cameras import get_camera
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cameras import ADD
from tests.test_cli_errors import one_line_error, snapshot

DAY = (date.today() - timedelta(days=1)).isoformat()
REGISTER = [
    "requisition",
    "register",
    "--legal-basis",
    "60-1",
    "--pv",
    "PV 2026/000123",
    "--officer",
    "Brigadier Durand",
    "--unit",
    "BSU Villeurbanne",
    "--reason",
    "rixe",
    "--window",
    f"C-012=={DAY}T10:00/{DAY}T10:02".replace("==", "="),
]


@pytest.fixture
def filmed(site_env: SiteEnv) -> Iterator[SiteEnv]:
    """A site with camera C-012 and three minutes of yesterday's footage, indexed."""
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    site = site_env.site
    camera = get_camera(site, "C-012")
    generate_footage(
        site, camera, parse_window(f"{DAY}T10:00", f"{DAY}T10:03", camera.timezone, 24)
    )
    scan(site, [camera], "op")
    yield site_env


def register(env: dict[str, str], *extra: str) -> str:
    result = run_cli([*REGISTER, *extra], env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout.split()[1]


def test_register_holds_at_once_and_the_ledger_says_who(filmed: SiteEnv) -> None:
    rid = register(filmed.env)
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)
    assert shown["state"] == "received"
    assert shown["registered_by"] == "test-operator"
    assert [h["camera"] for h in shown["holds"]] == ["C-012"]
    assert shown["windows"][0]["from_utc"].endswith("T09:00:00Z")
    actions = [
        e["action"]
        for e in json.loads(
            run_cli(["ledger", "show", "--json"], env=filmed.env_as(AUDITOR)).stdout
        )
    ]
    assert actions[-2:] == ["requisition.register", "hold.place"]


def test_urgent_and_unavailable_windows_are_flagged(filmed: SiteEnv) -> None:
    short = [*ADD[:2], "C-099", *ADD[3:], "--retention-days", "2"]
    assert run_cli(short, env=filmed.env_as(ADMIN)).exit_code == 0
    old = (date.today() - timedelta(days=10)).isoformat()
    result = run_cli(
        [
            *REGISTER[:-2],
            "--window",
            f"C-099={DAY}T10:00/{DAY}T10:05",
            "--window",
            f"C-012={old}T10:00/{old}T10:05",
        ],
        env=filmed.env,
    )
    assert result.exit_code == 0, result.stderr
    assert "URGENT C-099" in result.stdout
    assert "held C-012" in result.stdout
    gone = run_cli([*REGISTER[:-2], "--window", f"C-099={old}T10:00/{old}T10:05"], env=filmed.env)
    assert "UNAVAILABLE C-099" in gone.stdout
    assert "(video unavailable)" in gone.stdout


def test_four_eyes(filmed: SiteEnv, tmp_path: Path) -> None:
    """An operator may not approve; a supervisor may, but not what they registered."""
    rid = register(filmed.env)
    by_operator = run_cli(["requisition", "approve", rid], env=filmed.env)
    assert by_operator.exit_code == 5
    assert one_line_error(by_operator.stderr) == (
        "scelle: error: refused: test-operator (operator) may not approve or deny requisitions"
    )
    own = register(filmed.env_as(SUPERVISOR), "--force")  # same PV and window, on purpose
    same = run_cli(["requisition", "approve", own], env=filmed.env_as(SUPERVISOR))
    assert same.exit_code == 5
    assert "cannot also approve it: a second person (a supervisor) must" in one_line_error(
        same.stderr
    )
    early = run_cli(["requisition", "extract", rid, "--out", str(tmp_path)], env=filmed.env)
    assert early.exit_code == 5
    assert "only an approved requisition is extracted" in one_line_error(early.stderr)
    supervisor = filmed.env_as(SUPERVISOR)
    approved = run_cli(["requisition", "approve", rid], env=supervisor)
    assert approved.exit_code == 0 and "approved by test-supervisor" in approved.stdout
    again = run_cli(["requisition", "deny", rid, "--reason", "late"], env=supervisor)
    assert again.exit_code == 5 and "is approved, not received" in again.stderr


def test_extract_hand_over_and_refuse_an_existing_directory(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    rid = register(filmed.env)
    run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR))
    out = tmp_path / "exports"
    (out / rid).mkdir(parents=True)
    size = filmed.site.ledger.size()
    taken = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert taken.exit_code == 5
    assert f"the export directory {out / rid} already exists" in one_line_error(taken.stderr)
    assert filmed.site.ledger.size() == size and list(out.iterdir()) == [out / rid]
    (out / rid).rmdir()
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    assert "complete: no gap in the footage" in done.stdout
    assert run_cli(["verify", str(out / rid)]).exit_code == 0
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)
    assert shown["state"] == "completed" and shown["export_path"] == str(out / rid)
    # Another process in the middle of this handover (its lock held): a second one is
    # refused before it writes anything, so it can never replace or delete the first's PV.
    documents = filmed.site.settings.home / "documents"
    documents.mkdir(exist_ok=True)
    entries = filmed.site.ledger.size()
    fd = os.open(documents / f".{rid}-handover.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        argv = ["scelle", "requisition", "handover", rid, "--officer", "X", "--unit", "Y"]
        second = subprocess.run(
            [*argv, "--medium", "dvd", "--seal", "99"],
            env={**os.environ, **filmed.env},
            capture_output=True,
            text=True,
        )
    finally:
        os.close(fd)
    assert second.returncode == 5, second.stderr
    assert f"a handover of requisition {rid} is in progress" in second.stderr
    assert filmed.site.ledger.size() == entries and not list(documents.glob("*pv-remise*"))
    handed = run_cli(
        [
            "requisition",
            "handover",
            rid,
            "--officer",
            "Brigadier Durand",
            "--unit",
            "BSU",
            "--medium",
            "usb",
            "--seal",
            "S-2026-0042",
        ],
        env=filmed.env,
    )
    assert handed.exit_code == 0, handed.stderr
    last = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "2"], env=filmed.env_as(AUDITOR)).stdout
    )[0]  # the handover, then the issue of its PV
    assert last["action"] == "requisition.handover" and last["data"]["seals"] == ["S-2026-0042"]


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (["--legal-basis", "article-12"], 3, "unknown legal basis 'article-12'"),
        (["--pv", " "], 3, "has no PV or procedure number"),
        (["--legal-basis", "77-1-1"], 3, "prosecutor's authorisation (required by art. 77-1-1)"),
        (["--window", f"C-999={DAY}T10:00/{DAY}T10:02"], 3, "unknown camera 'C-999'"),
        (["--window", f"C-012={DAY}T10:00"], 3, "malformed window"),
        (["--window", f"../C-012={DAY}T10:00/{DAY}T10:02"], 3, "invalid camera id"),
        (["--received-via", "pigeon"], 3, "received via 'pigeon'"),
    ],
)
def test_bad_registrations_write_nothing(
    filmed: SiteEnv, change: list[str], code: int, message: str
) -> None:
    args = [*REGISTER]
    flag = change[0]
    if flag in args:
        at = args.index(flag)
        args[at + 1] = change[1]
    else:
        args += change
    filmed.site.close()
    size = filmed.site.ledger.size()
    before = snapshot(filmed.settings.home)
    result = run_cli(args, env=filmed.env)
    assert result.exit_code == code, result.stderr
    assert message in one_line_error(result.stderr)
    assert snapshot(filmed.settings.home) == before
    assert filmed.site.ledger.size() == size


@pytest.mark.parametrize("rid", ["../../etc/passwd", "2026-1", "/tmp/x", "2026-00001/.."])
def test_path_tricks_in_the_id(filmed: SiteEnv, tmp_path: Path, rid: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for args in (
        ["requisition", "show", rid],
        ["requisition", "extract", rid, "--out", str(out)],
        ["export", "copy", rid, "--to", str(out)],
    ):
        result = run_cli(args, env=filmed.env)
        assert result.exit_code == 3, args
        assert "invalid requisition id" in one_line_error(result.stderr)
    assert list(out.iterdir()) == []


def test_register_from_a_file(filmed: SiteEnv, tmp_path: Path) -> None:
    path = tmp_path / "req.toml"
    path.write_text(
        'legal_basis = "77-1-1"\n'
        'prosecutor_authorisation = "Parquet de Lyon, soit-transmis 26/118"\n'
        'pv_number = "PV 2026/000777"\nofficer_name = "Capitaine Roux"\nofficer_unit = "SD 69"\n'
        'reason = "escroquerie"\nreceived_via = "letter"\n'
        f'[[windows]]\ncamera = "C-012"\nfrom = "{DAY}T10:00"\nto = "{DAY}T10:01"\n'
    )
    result = run_cli(["requisition", "register", "--file", str(path)], env=filmed.env)
    assert result.exit_code == 0, result.stderr
    listed = run_cli(["requisition", "list"], env=filmed.env).stdout
    assert re.search(r"received +art. 77-1-1 +PV 2026/000777 +SD 69", listed)


def test_kill_during_extraction_leaves_all_or_nothing(filmed: SiteEnv, tmp_path: Path) -> None:
    rid = register(filmed.env)
    run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR))
    out = tmp_path / "exports"
    root = Path(__file__).parent.parent
    scratch = tmp_path / "tmpdir"  # the killed processes' TMPDIR: nothing may be left there
    scratch.mkdir()
    env = {**os.environ, **filmed.env, "TMPDIR": str(scratch)}
    outcomes = []
    for delay in (0.3, 0.8, 1.3, 1.8, 2.5, 3.5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "requisition", "extract", rid, "--out", str(out)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        final = out / rid
        if final.exists():
            assert run_cli(["verify", str(final)]).exit_code == 0  # complete, never half
            outcomes.append("complete")
            break
        outcomes.append("none")
        assert run_cli(["ledger", "verify"], env=filmed.env).exit_code == 0
    assert "none" in outcomes  # at least one kill landed mid-way
    if outcomes[-1] == "none":
        done = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
        assert done.exit_code == 0, done.stderr
    assert run_cli(["verify", str(out / rid)]).exit_code == 0
    assert list(out.glob(".*partial*")) == []  # the interrupted attempts' leftovers are gone
    assert list(scratch.iterdir()) == []  # their scratch was inside them, not in /tmp
    assert run_cli(["ledger", "verify"], env=filmed.env).exit_code == 0


def test_an_attempt_killed_after_the_rename_is_finished_not_redone(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    rid = register(filmed.env)
    run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR))
    out = tmp_path / "exports"
    assert (
        run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env).exit_code == 0
    )
    with filmed.site.db.write() as cur:  # the state a kill between rename and record leaves
        cur.execute("UPDATE requisition SET state = 'processing' WHERE id = ?", [rid])
    size = filmed.site.ledger.size()
    again = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert again.exit_code == 0, again.stderr
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)
    assert shown["state"] == "completed"
    assert filmed.site.ledger.size() == size  # finished, not extracted a second time
    (out / rid / "VERIFY.txt").write_text("tampered")
    with filmed.site.db.write() as cur:
        cur.execute("UPDATE requisition SET state = 'processing' WHERE id = ?", [rid])
    bad = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert bad.exit_code == 4  # a damaged package is not recorded as done


HAND = ["--officer", "Brigadier Durand", "--unit", "BSU", "--medium", "usb", "--seal", "7"]


def _extracted(filmed: SiteEnv, tmp_path: Path) -> str:
    rid = register(filmed.env)
    run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR))
    out = tmp_path / "exports"
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    return rid


def test_a_handover_killed_after_its_record_gets_its_pv_at_the_next_try(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    """Killed (a real process, os._exit) between the commit and the PV's renaming: the
    handover is recorded, its PV pending; the next handover is refused and names the PV,
    now in place, the one the ledger recorded."""
    rid = _extracted(filmed, tmp_path)
    killer = (
        "import os, sys, cli, requisition.handover as h\n"
        "h._rename = lambda *a: os._exit(137)\n"
        "sys.argv = ['scelle', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    argv = [sys.executable, "-c", killer, "requisition", "handover", rid, *HAND]
    killed = subprocess.run(argv, env={**os.environ, **filmed.env}, capture_output=True)
    assert killed.returncode == 137
    documents = filmed.site.settings.home / "documents"
    assert not (documents / f"{rid}-pv-remise-1.pdf").exists()
    assert len(list(documents.glob(f".{rid}-pv-remise-1.pending.*"))) == 4
    again = run_cli(["requisition", "handover", rid, *HAND], env=filmed.env)
    assert again.exit_code == 5 and "already handed over" in again.stderr
    pdf = documents / f"{rid}-pv-remise-1.pdf"
    record = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "2"], env=filmed.env_as(AUDITOR)).stdout
    )[0]
    assert record["action"] == "requisition.handover"
    assert record["data"]["pv"]["sha256"]["pdf"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert not list(documents.glob(f".{rid}-pv-remise-1.pending.*"))


def test_a_handover_killed_before_its_record_leaves_no_pv(filmed: SiteEnv, tmp_path: Path) -> None:
    """Killed while the PV is written, before the commit: nothing recorded, and the
    pending files never become a PV; the next handover succeeds."""
    rid = _extracted(filmed, tmp_path)
    killer = (
        "import os, sys, cli\n"
        "from exporters import documents as d\n"
        "write = d.PaperSigner.write\n"
        "def dying(self, *a):\n"
        "    write(self, *a)\n"
        "    os._exit(137)\n"
        "d.PaperSigner.write = dying\n"
        "sys.argv = ['scelle', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    size = filmed.site.ledger.size()
    argv = [sys.executable, "-c", killer, "requisition", "handover", rid, *HAND]
    killed = subprocess.run(argv, env={**os.environ, **filmed.env}, capture_output=True)
    assert killed.returncode == 137
    assert filmed.site.ledger.size() == size
    documents = filmed.site.settings.home / "documents"
    assert not list(documents.glob(f"{rid}-pv-remise-*"))
    done = run_cli(["requisition", "handover", rid, *HAND], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    assert not list(documents.glob(f".{rid}-pv-remise-1.pending.*"))
    assert (documents / f"{rid}-pv-remise-1.pdf").is_file()


def test_no_paper_is_made_from_an_export_that_is_not_the_sealed_one(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    """A manifest edited since it was sealed (even re-signed by nobody): the handover, the
    label and the cover sheet are refused (exit 4) and nothing is written or recorded."""
    rid = _extracted(filmed, tmp_path)
    manifest = tmp_path / "exports" / rid / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"test", b"TEST", 1))
    size = filmed.site.ledger.size()
    for argv in (
        ["requisition", "handover", rid, *HAND],
        ["doc", "label", rid],
        ["doc", "cover", rid],
    ):
        refused = run_cli(argv, env=filmed.env)
        assert refused.exit_code == 4, refused.stderr
        assert "not the one the ledger recorded" in refused.stderr
    assert filmed.site.ledger.size() == size
    assert not list((filmed.site.settings.home / "documents").glob(f"*{rid}*"))


def test_seals_labels_and_register_follow_the_handover(filmed: SiteEnv, tmp_path: Path) -> None:
    """Seal numbers typed with their words lose them, words alone are refused; after the
    handover a label cannot state another seal or medium; the register counts the media."""
    rid = _extracted(filmed, tmp_path)
    base = ["requisition", "handover", rid, "--officer", "Lt Roux", "--unit", "BSU"]
    for typed in ("Scellé n°", "#", "Scellé №", "S" * 41):
        refused = run_cli([*base, "--medium", "usb", "--seal", typed], env=filmed.env)
        assert refused.exit_code == 3, (typed, refused.stderr)
        assert "seal number" in refused.stderr
    done = run_cli(
        [*base, "--medium", "clé USB", "--seal", "Scellé n° : A1", "--seal", "Scellé №A2"],
        env=filmed.env,
    )
    assert done.exit_code == 0, done.stderr
    record = json.loads(
        run_cli(["ledger", "show", "--json", "--limit", "2"], env=filmed.env_as(AUDITOR)).stdout
    )[0]
    assert record["data"]["seals"] == ["A1", "A2"] and record["data"]["count"] == 2
    for extra in (["--medium", "dvd"], ["--seal", "99"]):
        label = run_cli(["doc", "label", rid, *extra], env=filmed.env)
        assert label.exit_code == 5 and "A1, A2" in label.stderr, label.stderr
    label = run_cli(["doc", "label", rid, "--seal", "A2", "--out", str(tmp_path)], env=filmed.env)
    assert label.exit_code == 0, label.stderr
    day = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)[
        "windows"
    ][0]["from"][:10]
    made = run_cli(
        ["doc", "register", "--from", day, "--to", day, "--out", str(tmp_path)], env=filmed.env
    )
    assert made.exit_code == 0, made.stderr
    text = " ".join(
        "".join(p.extract_text() for p in PdfReader(tmp_path / f"register-{day}-{day}.pdf").pages)
        .replace("\u202f", " ")
        .split()
    )
    assert "sur 2 clés USB, scellé(s) n° A1, A2" in text
    far = run_cli(["doc", "register", "--from", day, "--to", "31/12/9999"], env=filmed.env)
    assert far.exit_code == 3 and "too far ahead" in far.stderr
