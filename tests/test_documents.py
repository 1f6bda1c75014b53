"""Documents read back from their PDF text: the hashes, fingerprints, times and gaps of a
real export are on the page; names are text, never markup."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from exporters.documents import render
from requisition.demo import OPERATOR, run_demo
from tests.conftest import ADMIN, logged_in_as, require_tool, run_cli


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def flat(text: str) -> str:
    """Without white space: long hashes wrap across lines in table cells."""
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    with logged_in_as(ADMIN):  # the demo site's administrator
        result = run_demo(tmp_path_factory.mktemp("docs") / "site", lambda _line: None)
    yield result.home, result.export.path, result.day


def test_cover_sheet_states_what_the_export_proves(demo: tuple[Path, Path, str]) -> None:
    _, export, day = demo
    text = pdf_text(export / "documents" / "cover.pdf")
    manifest = (export / "manifest.json").read_bytes()
    sha = hashlib.sha256(manifest).hexdigest()
    assert sha in flat(text)
    entry = json.loads((export / "ledger" / "entry.json").read_text())
    assert f"entrée n° {entry['seq']}" in text
    d, m, y = day[8:], day[5:7], day[:4]
    assert f"du {d}/{m}/{y} à 14:00:30 (UTC+01:00)" in text  # C-012's window, local
    assert f"{day}T13:00:30Z" in flat(text)  # and in UTC
    assert "(20 s) : aucun enregistrement" in text  # the gap left in C-044's footage
    assert "décalage +1,500 s" in text  # C-012's recorder clock
    assert "AP-69-2024-117" in text
    for f in json.loads(manifest)["files"]:
        assert f["sha256"] in flat(text)


def test_cover_fingerprints_equal_the_stock_tools(demo: tuple[Path, Path, str]) -> None:
    _, export, _ = demo
    text = flat(pdf_text(export / "documents" / "cover.pdf"))
    ssh = subprocess.run(
        f"cut -d' ' -f3- keys/allowed_signers | {require_tool('ssh-keygen')} -lf -",
        shell=True,
        cwd=export,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    der = subprocess.run(
        f"{require_tool('openssl')} pkey -pubin -in keys/signer.pub.pem -outform DER | sha256sum",
        shell=True,
        cwd=export,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert ssh.startswith("SHA256:") and ssh in text
    assert der in text


def test_a_tampered_cover_sheet_fails_verification(
    demo: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, export, _ = demo
    copy = tmp_path / export.name
    shutil.copytree(export, copy)
    html = copy / "documents" / "cover.html"
    html.write_text(html.read_text().replace("Lieutenant Claire Martin", "Lieutenant Untel"))
    result = run_cli(["verify", str(copy)])
    assert result.exit_code == 4
    assert "FAIL  signed cover sheet and VERIFY.txt" in result.stdout


def test_label_and_register_through_the_cli(demo: tuple[Path, Path, str], tmp_path: Path) -> None:
    home, export, day = demo
    env = {"SCELLE_HOME": str(home), "LOGNAME": OPERATOR}
    rid = export.name
    handed = run_cli(
        [
            "requisition",
            "handover",
            rid,
            "--officer",
            "Lt Martin",
            "--unit",
            "BSU Villeurbanne",
            "--medium",
            "usb",
            "--seal",
            "S-2026-0042",
        ],
        env=env,
    )
    assert handed.exit_code == 0, handed.stderr
    made = run_cli(["doc", "label", rid, "--out", str(tmp_path)], env=env)
    assert made.exit_code == 0, made.stderr
    label = pdf_text(tmp_path / f"{rid}-label.pdf")
    assert "SCELLÉ n° S-2026-0042" in label and "clé USB" in label
    assert "PV2026/004217" in flat(label)
    manifest_sha = hashlib.sha256((export / "manifest.json").read_bytes()).hexdigest()
    assert manifest_sha[:16] in label
    # footage from yesterday, handed over today, in the site's time zone
    today = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
    made = run_cli(
        ["doc", "register", "--from", day, "--to", today, "--out", str(tmp_path)], env=env
    )
    assert made.exit_code == 0, made.stderr
    register = pdf_text(tmp_path / f"register-{day}-{today}.pdf")
    assert "Registre des enregistrements (art. R252-11 CSI)" in register
    assert "Caméra C-044" in register
    sent = f"réquisition {rid} (PV 2026/004217) remise à Lt Martin, BSU Villeurbanne"
    assert flat(sent) in flat(register)
    assert flat(register).count(flat(sent)) == 2  # both cameras of the requisition
    audit = {**env, "LOGNAME": ADMIN}
    last = json.loads(run_cli(["ledger", "show", "--json", "--limit", "1"], env=audit).stdout)[0]
    pdf = tmp_path / f"register-{day}-{today}.pdf"
    assert last["action"] == "document.issue"
    assert last["data"]["sha256"]["pdf"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    again = run_cli(["doc", "cover", rid, "--out", str(tmp_path)], env=env)
    assert again.exit_code == 0 and (tmp_path / f"{rid}-cover.pdf").is_file()


def test_names_are_text_never_markup() -> None:
    hostile = "<script>alert(1)</script> {{ 7*7 }} & Cie"
    doc = render(
        "label",
        {
            "centre": {"name": hostile},
            "r": {"id": "2026-00001", "pv_number": hostile, "officer_unit": hostile},
            "seal": "<b>S</b>",
            "medium": None,
            "manifest_sha256": "ab" * 32,
            "qr": "",
        },
    )
    assert "<script>" not in doc.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc.html
    assert "{{ 7*7 }}" in doc.html and "49" not in doc.html
    text = pdf_text_bytes(doc.pdf)
    assert "<script>alert(1)</script> {{ 7*7 }} & Cie" in text
    assert "<b>S</b>" in text


def pdf_text_bytes(data: bytes) -> str:

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_destruction_certificate_template_renders() -> None:
    doc = render(
        "destruction",
        {
            "centre": {"name": "CSV", "authorisation": "arrêté 2024-117"},
            "run_at": "25/11/2026 à 03:00:00 (UTC+01:00)",
            "actor": "cron",
            "destroyed": [
                {"camera": "C-012", "from": "a", "to": "b", "segments": 1440, "bytes": 9}
            ],
            "held": ["C-044 : réquisition 2026-00001"],
            "merkle_root": "cd" * 32,
            "ledger_entries": "120-121",
            "ssh_fingerprint": "SHA256:x",
        },
    )
    text = pdf_text_bytes(doc.pdf)
    assert "Certificat de destruction" in text and "1440" in text and "cd" * 32 in flat(text)
