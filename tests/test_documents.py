"""The legal papers of a demo site read back as a clerk, an officer and a judge read them:
pdftotext of each PDF holds every field the issue lists, one by one, in French, with no
English left, each page identified; the PDFs are PDF/A and signed inside (pyHanko's
validator); names are text, never markup."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from custody.errors import SignatureError
from custody.pdfsign import verify_signed_pdf
from exporters.documents import render
from requisition.demo import OPERATOR, SUPERVISOR, DemoResult, run_demo
from tests.conftest import ADMIN, logged_in_as, require_tool, run_cli
from tests.test_pdf_signatures import pdfa_findings, preflight, preflight_findings

# English the first papers printed, found by reading them (issue 15); a path such as
# `master/01-C-012/...` is a file name, not a word, and is allowed.
ENGLISH = ["master", "working", "email", "segment", "segments", "gap", "gaps", "none", "None"]
ENGLISH += ["offset", "lacune(s)", "scelle verify", "ssh-keygen", "openssl", "sha256sum"]
ENGLISH += ["NTP query", "demo designation", "usb"]


def text_of(pdf: Path, page: int | None = None) -> str:
    """pdftotext's reading (poppler, as the issue asks), spaces normalised: French
    numbers use narrow no-break spaces."""
    pages = ["-f", str(page), "-l", str(page)] if page else []
    out = subprocess.run(
        [require_tool("pdftotext"), *pages, str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.sub(r"[ \u202f\u00a0]+", " ", out)


def flat(text: str) -> str:
    """Without white space: long values wrap across lines in table cells."""
    return re.sub(r"\s+", "", text)


def has(text: str, phrase: str) -> bool:
    """The phrase is in the text, wherever the page wrapped it."""
    return flat(phrase) in flat(text)


def pages(pdf: Path) -> int:
    return len(PdfReader(pdf).pages)


def english_in(text: str) -> list[str]:
    found = []
    for word in ENGLISH:
        if re.search(rf"(?<![\w/.-]){re.escape(word)}(?![\w/])", text):
            found.append(word)
    return found


@dataclass(frozen=True)
class Site:
    result: DemoResult
    cover: Path
    pv: Path
    label: Path
    register: Path
    certificate: Path
    day: str  # the footage's day, DD/MM/YYYY
    handed_day: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with logged_in_as(ADMIN):  # the demo site's administrator
        result = run_demo(tmp_path_factory.mktemp("docs") / "site", lambda _line: None)
    p = result.papers
    day = date.fromisoformat(result.day)
    handed = datetime.now(ZoneInfo("Europe/Paris")).date()
    yield Site(
        result,
        result.export.path / "documents" / "cover.pdf",
        p.pv,
        p.label,
        p.register,
        p.certificate / "documents" / "destruction.pdf",
        f"{day:%d/%m/%Y}",
        f"{handed:%d/%m/%Y}",
    )


def manifest_sha(site: Site) -> str:
    return hashlib.sha256((site.result.export.path / "manifest.json").read_bytes()).hexdigest()


def test_the_pv_records_the_handover_field_by_field(demo: Site) -> None:
    text = text_of(demo.pv)
    assert has(text, "Procès-verbal de remise d'enregistrements vidéo")
    assert has(text, "Procès-verbal de remise n° 1")
    # the handover: when, by whom, to whom (name, grade, unit), on what, under which seal
    when = rf"Date et heure de la remise {re.escape(demo.handed_day)} à \d\d:\d\d:\d\d"
    assert re.search(when, " ".join(text.split()))
    assert has(text, "Claire Martin, lieutenant de police, officier de police judiciaire")
    assert flat("Commissariat de Villeurbanne, brigade de sûreté urbaine") in flat(text)
    assert has(text, "1 clé USB")
    assert "scellé n° 2026-0042" in text and "Scellé n° 2026-0042" not in text
    assert manifest_sha(demo) in flat(text)  # the whole manifest hash it hands over
    assert has(text, f"Fait à Villeurbanne, le {demo.handed_day}.")
    assert has(text, "L'agent du centre de supervision") and has(text, "L'officier destinataire")
    assert text.count("Signature :") == 2
    # every agent by full name, role and designation; every step with its time
    for step in ("Enregistrement", "Approbation", "Extraction et", "Remise"):
        assert step in text
    assert has(text, "Marie DURAND, opérateur de vidéoprotection")
    assert has(text, "Paul MARTIN, superviseur")
    assert flat("(désignation : arrêté du maire n° 2026-118)") in flat(text)
    assert OPERATOR not in text and SUPERVISOR not in text  # no login stands for a person
    # the requisition, its basis and the officer who asked
    assert has(text, "art. 60-1 CPP (enquête de flagrance)") and has(text, "par courriel")
    # what the working copy is, French numbers, plain words
    assert has(text, "La copie de travail") and has(text, "fait foi")
    assert re.search(r"\d \d{3} \d{3}", text)  # sizes with thousands separated
    assert has(text, "1,500 s")  # C-012's clock offset, decimal comma
    assert has(text, "1 interruption :") and has(text, "(20 s)")
    assert english_in(text) == []


def test_every_page_names_the_requisition_and_its_number(demo: Site) -> None:
    for pdf in (demo.pv, demo.cover):
        total = pages(pdf)
        assert total >= 2
        for page in range(1, total + 1):
            text = text_of(pdf, page)
            assert has(text, f"Réquisition {demo.result.requisition} — procédure PV 2026/004217")
            assert has(text, f"page {page} / {total}")


def test_file_names_break_only_where_the_name_allows(demo: Site) -> None:
    lines = [line.strip() for line in text_of(demo.pv).split("\n")]
    files = json.loads((demo.result.export.path / "manifest.json").read_bytes())["files"]
    broken = 0
    for f in files:
        path = f["path"]
        for line in lines:
            if line and line != path and path.startswith(line):
                assert line[-1] in "/_.+", f"{path} broken after {line!r}"
                broken += 1
    assert broken  # the demo's names are long enough to wrap: the test would see a bad cut


def test_the_pv_differs_from_the_cover_sheet(demo: Site) -> None:
    pv, cover = text_of(demo.pv), text_of(demo.cover)
    assert has(cover, "Bordereau de l'export scellé")
    assert "Claire Martin, lieutenant" in pv and "Claire Martin, lieutenant" not in cover
    assert "scellé n° 2026-0042" in pv and "2026-0042" not in cover
    assert "Fait à Villeurbanne" in pv and "Fait à" not in cover
    assert english_in(cover) == []


def test_a_second_handover_is_refused_and_the_pv_stays(demo: Site) -> None:
    before = demo.pv.read_bytes()
    env = {
        "SCELLE_HOME": str(demo.result.home),
        "SCELLE_PASSPHRASE_FILE": str(demo.result.passphrase_file),
        "LOGNAME": OPERATOR,
    }
    again = run_cli(
        [
            *["requisition", "handover", demo.result.requisition, "--officer", "X"],
            *["--unit", "Y", "--medium", "dvd", "--seal", "99"],
        ],
        env=env,
    )
    assert again.exit_code == 5, again.stdout + again.stderr
    assert "already handed over" in again.stderr
    assert demo.pv.read_bytes() == before
    rid = demo.result.requisition
    assert sorted(p.name for p in demo.pv.parent.glob("*pv-remise*")) == [
        f"{rid}-pv-remise-1.{ext}" for ext in ("html", "html.sig", "pdf", "pdf.sig")
    ]


def test_the_seal_label(demo: Site) -> None:
    text = text_of(demo.label)
    box = PdfReader(demo.label).pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (105, 148)
    assert "SCELLÉ N° 2026-0042" in text and "SCELLE N°" not in text and "n° Scellé" not in text
    assert has(text, f"Date de remise : {demo.handed_day}")
    assert has(text, f"Réquisition {demo.result.requisition}") and has(text, "PV 2026/004217")
    assert has(text, "C-012 Place de la Mairie") and has(text, "C-044 Gare routière")
    assert has(text, f"du {demo.day} à 14:00:30")
    sha = manifest_sha(demo)
    assert " ".join(sha[i : i + 8] for i in range(0, 32, 8)) in text  # full, grouped
    assert " ".join(sha[i : i + 8] for i in range(32, 64, 8)) in text
    assert "Cachet du centre" in text and text.count("signature") >= 2
    assert has(text, "1 clé USB")
    assert english_in(text) == []


def test_the_register(demo: Site) -> None:
    text = text_of(demo.register)
    assert has(text, f"Période du {demo.day} au {demo.day} inclus")  # --to is the last day
    assert re.search(r"\d{4}-\d\d-\d\d", text) is None  # no ISO date beside DD/MM/YYYY
    assert has(text, "1 interruption(s) de l'enregistrement")
    gap = f"du {demo.day} à 14:02:10 (UTC+01:00) au {demo.day} à 14:02:30 (UTC+01:00) (20 s)"
    assert flat(gap) in flat(text)
    assert text.count(f"le {demo.handed_day} à") == 3  # issued, and transmitted: both cameras
    assert flat(text).count(flat("remise à Claire Martin, lieutenant de police")) == 2
    assert has(text, "1 clé USB") and has(text, "scellé(s) n° 2026-0042")
    assert has(text, "Visa du responsable du système de vidéoprotection")
    assert has(text, "Signature et cachet")
    assert english_in(text) == []


def test_the_destruction_certificate_gives_both_clocks(demo: Site) -> None:
    text = text_of(demo.certificate)
    assert has(text, "Certificat de destruction d'enregistrements")
    assert has(text, "heures de référence") and has(text, "Les heures de l'enregistreur")
    old = date.fromisoformat(demo.result.day) - timedelta(days=19)
    assert has(text, f"{old:%d/%m/%Y} à 09:00:00")  # C-044: no offset, both alike
    assert has(text, "Paul MARTIN, superviseur")
    assert has(text, "conservation : 15 jours") and has(text, "art. L252-5")
    assert english_in(text) == []


@pytest.mark.parametrize("which", ["pv", "label", "register", "certificate", "cover"])
def test_pdfs_are_pdf_a_and_signed_inside(demo: Site, which: str, tmp_path: Path) -> None:
    pdf = demo.pv if which == "pv" else getattr(demo, which)
    data = pdf.read_bytes()
    xmp = PdfReader(io.BytesIO(data)).xmp_metadata
    assert xmp is not None and xmp.get_element("", "http://www.aiim.org/pdfa/ns/id/", "part")
    certificate = (demo.result.home / "keys" / "documents.crt.pem").read_bytes()
    from cryptography import x509

    trusted = x509.load_pem_x509_certificate(certificate)
    verify_signed_pdf(data, trusted)
    assert pdfa_findings(data) == []  # the structural check (partial, see its module)
    assert preflight_findings(preflight(), data, tmp_path) == []  # PDFBox Preflight
    flipped = bytearray(data)
    middle = len(flipped) // 3
    flipped[middle] ^= 0x01
    with pytest.raises(SignatureError):
        verify_signed_pdf(bytes(flipped), trusted)


def test_names_are_text_never_markup() -> None:
    hostile = "<script>alert(1)</script> {{ 7*7 }} & Cie"
    doc = render(
        "label",
        {
            "centre": {"name": hostile, "commune": hostile},
            "r": {"id": "2026-00001", "pv_number": hostile, "officer_unit": hostile}
            | {"officer_name": hostile},
            "seals": ["<b>S</b>"],
            "medium": None,
            "day": None,
            "cameras": [],
            "more": 0,
            "sha_lines": ["ab" * 16, "cd" * 16],
            "qr": "",
        },
    )
    assert "<script>" not in doc.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc.html
    assert "{{ 7*7 }}" in doc.html and "49" not in doc.html
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(doc.pdf)).pages)
    assert has(text, "<script>alert(1)</script> {{ 7*7 }} & Cie")
    assert has(text, "<b>S</b>")


def test_a_tampered_cover_sheet_fails_verification(demo: Site, tmp_path: Path) -> None:
    export = demo.result.export.path
    copy = tmp_path / export.name
    shutil.copytree(export, copy)
    html = copy / "documents" / "cover.html"
    html.write_text(html.read_text().replace("Lieutenant Claire Martin", "Lieutenant Untel"))
    result = run_cli(["verify", str(copy)])
    assert result.exit_code == 4
    assert "FAIL  cover (signed cover sheet and VERIFY.txt)" in result.stdout


def test_cover_fingerprints_equal_the_stock_tools(demo: Site) -> None:
    export = demo.result.export.path
    text = flat(text_of(demo.cover))
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


def test_a_signed_paper_of_the_site_cannot_stand_in_for_the_cover(
    demo: Site, tmp_path: Path
) -> None:
    """The PV, signed with the same site key, put in place of the bordereau's PDF: its
    signature is the site's, but documents/SHA256SUMS binds the cover to this manifest."""
    export = demo.result.export.path
    copy = tmp_path / export.name
    shutil.copytree(export, copy)
    shutil.copy(demo.pv, copy / "documents" / "cover.pdf")
    shutil.copy(demo.pv.with_name(demo.pv.name + ".sig"), copy / "documents" / "cover.pdf.sig")
    result = run_cli(["verify", str(copy)])
    assert result.exit_code == 4, result.stdout
    assert "FAIL  cover (signed cover sheet and VERIFY.txt)" in result.stdout
    assert "not this export's (documents/SHA256SUMS)" in result.stdout
    sums = subprocess.run(
        [require_tool("sha256sum"), "-c", "SHA256SUMS"],
        cwd=export / "documents",
        capture_output=True,
        text=True,
    )
    assert sums.returncode == 0, sums.stdout  # the stock tools check the original
    signed = subprocess.run(
        [
            *[require_tool("openssl"), "pkeyutl", "-verify", "-pubin"],
            *["-inkey", "keys/signer.pub.pem", "-rawin", "-in", "documents/SHA256SUMS"],
            *["-sigfile", "documents/SHA256SUMS.sig"],
        ],
        cwd=export,
        capture_output=True,
        text=True,
    )
    assert signed.returncode == 0 and "Signature Verified Successfully" in signed.stdout
    assert "(cd documents && sha256sum -c SHA256SUMS)" in (export / "VERIFY.txt").read_text()
