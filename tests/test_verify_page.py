"""VERIFY.html in a real browser: Debian's headless Chromium driven by selenium.

The page is opened from file:// as an investigator opens it from the USB key, the export's
folder is picked through `<input id="export-folder" webkitdirectory>`, and the verdict is
read from `#verdict` (`data-status`, `data-first-failure`): for a real demo export, for each
case of the export tamper matrix (the first failure must be the one `scelle verify` names),
for a ledger bundle, and again with WebCrypto's Ed25519 removed so that the vendored
implementation does the work. Every request the page makes is logged: none may leave
file://.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from custody.checks import PAGE
from exporters.verify_export import TIMESTAMP_CHECKS
from exporters.verify_page import VENDOR, page_bytes
from tests.conftest import ADMIN, require_tool, run_cli
from tests.test_export import TAMPERS, Export, export, flip

__all__ = ["export"]  # the module-scoped demo export fixture, shared with test_export

# WebCrypto as a browser without Ed25519 has it (before Chrome 137, Firefox 129, Safari 17).
NO_ED25519 = """
(() => {
  const subtle = crypto.subtle;
  const named = (alg) => (typeof alg === "string" ? alg : alg && alg.name);
  for (const method of ["importKey", "verify", "generateKey"]) {
    const original = subtle[method].bind(subtle);
    subtle[method] = (...args) =>
      [args[0], args[2]].some((a) => named(a) === "Ed25519") || named(args[0]) === "Ed25519"
        ? Promise.reject(new DOMException("Ed25519 not supported", "NotSupportedError"))
        : original(...args);
  }
})();
"""


class Page:
    """One browser, opening VERIFY.html files and picking folders."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def verify(self, page: Path, folder: Path, expected_key: str = "") -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        self.driver.get_log("performance")  # forget the previous page's requests
        self.driver.get(page.as_uri())
        if expected_key:
            self.driver.find_element(By.ID, "expected-key").send_keys(expected_key)
        self.driver.find_element(By.ID, "export-folder").send_keys(str(folder))
        verdict = self.driver.find_element(By.ID, "verdict")
        deadline = time.monotonic() + 120
        while verdict.get_attribute("data-status") in ("waiting", "running"):
            assert time.monotonic() < deadline, "the page never reached a verdict"
            time.sleep(0.05)
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#checks tr")
        return {
            "status": verdict.get_attribute("data-status"),
            "first_failure": verdict.get_attribute("data-first-failure") or None,
            "ed25519": verdict.get_attribute("data-ed25519"),
            "text": verdict.text,
            "checks": [
                (r.get_attribute("data-check"), r.get_attribute("data-ok") == "true") for r in rows
            ],
            "facts": self.driver.find_element(By.ID, "facts").text,
            "gaps": self.driver.find_element(By.ID, "gaps").text,
            "requests": self.requests(),
        }

    def requests(self) -> set[str]:
        urls = set()
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.add(message["params"]["request"]["url"])
        return urls


@pytest.fixture(scope="module", params=["webcrypto", "tweetnacl"])
def browser(request: pytest.FixtureRequest) -> Iterator[Page]:
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        if request.param == "tweetnacl":
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NO_ED25519})
        page = Page(driver)
        page.implementation = request.param  # type: ignore[attr-defined]
        yield page
    finally:
        driver.quit()


def cli_verdict(root: Path, key: str | None = None) -> tuple[str, str | None]:
    """`scelle verify --json`'s verdict, as the page must state it."""
    args = ["verify", str(root), "--json"] + (["--key", key] if key else [])
    shown = json.loads(run_cli(args).stdout)
    return shown["status"], shown["first_failure"]


def test_the_page_verifies_the_demo_export(browser: Page, export: Export) -> None:
    seen = browser.verify(export.path / PAGE, export.path)
    assert seen["ed25519"] == browser.implementation  # type: ignore[attr-defined]
    assert (seen["status"], seen["first_failure"]) == cli_verdict(export.path) == ("partial", None)
    assert [ident for ident, _ok in seen["checks"]] == [  # the page leaves RFC 3161 to them
        c["id"]
        for c in json.loads(run_cli(["verify", str(export.path), "--json"]).stdout)["checks"]
        if c["id"] not in TIMESTAMP_CHECKS
    ]
    assert all(ok for _ident, ok in seen["checks"])
    assert export.fingerprint in seen["facts"]  # both printed forms, to compare with the PV
    der = (export.path / "VERIFY.txt").read_text().split("openssl DER sha256  : ")[1][:64]
    assert der in seen["facts"]
    # Each camera's window, complete or not, then the gap, as the cover sheet states them.
    day = "29/11/2026 "
    assert (
        f"C-012 : {day}14:00:30 (UTC+01:00) → {day}14:02:30 (UTC+01:00) — complète"
        in (seen["gaps"])
    )
    assert (
        f"C-044 : {day}14:01:00 (UTC+01:00) → {day}14:03:00 (UTC+01:00) — 1 interruption"
        in (seen["gaps"])
    )
    assert "C-044 : 29/11/2026 14:02:10 (UTC+01:00)" in seen["gaps"]  # the gap, as on the PV
    assert "no footage recorded" in seen["gaps"] and "aucun enregistrement" in seen["gaps"]
    assert "PARTIEL" in seen["text"] and "PARTIAL" in seen["text"]
    assert {url.split(":", 1)[0] for url in seen["requests"]} == {"file"}, seen["requests"]
    pinned = browser.verify(export.path / PAGE, export.path, expected_key=export.fingerprint)
    assert pinned["checks"][0] == ("expected-key", True) and pinned["status"] == "partial"


@pytest.fixture(scope="module")
def complete_export(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second requisition on the demo site, for the demo camera whose footage has no
    gap: a complete export."""
    env = {
        "SCELLE_HOME": str(export.site),
        "SCELLE_PASSPHRASE_FILE": str(export.site / "demo-passphrase"),
        "LOGNAME": "demo-operator",
    }
    made = run_cli(
        [
            "requisition", "register", "--legal-basis", "60-1", "--pv", "PV 2026/009999",
            "--officer", "Brigadier Test", "--unit", "BSU Villeurbanne", "--reason", "test",
            "--window", "C-012=29/11/2026 14h00/14h02",
        ],
        env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    rid = made.stdout.split()[1]
    approved = run_cli(["requisition", "approve", rid], env=env | {"LOGNAME": "demo-supervisor"})
    assert approved.exit_code == 0, approved.stderr
    out = tmp_path_factory.mktemp("complete")
    extracted = run_cli(["requisition", "extract", rid, "--out", str(out)], env=env)
    assert extracted.exit_code == 0 and "complete: no gap" in extracted.stdout, extracted.stderr
    return out / rid


def test_the_page_reports_ok_for_a_complete_export(browser: Page, complete_export: Path) -> None:
    seen = browser.verify(complete_export / PAGE, complete_export)
    assert (seen["status"], seen["first_failure"]) == ("ok", None), seen
    assert cli_verdict(complete_export) == ("ok", None)
    assert run_cli(["verify", str(complete_export)]).exit_code == 0
    assert "Chaque fenêtre demandée est couverte en entier" in seen["gaps"]


def cover_sheet_tampered(root: Path) -> None:
    flip(root / "documents" / "cover.pdf")


def page_tampered(root: Path) -> None:
    """A swapped page that still works: it must catch itself, as any other file."""
    page = root / PAGE
    page.write_bytes(page.read_bytes().replace(b"<title>", b"<title>Officiel - ", 1))


def manifest_reformatted(root: Path) -> None:
    """The same JSON, other bytes: no longer canonical, refused before any signature."""
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_bytes()), indent=1))


ED25519_L = 2**252 + 27742317777372353535851937790883648493


def signature_malleated(root: Path) -> None:
    """S + L: the same point equation holds, yet RFC 8032 refuses S >= L (OpenSSL and
    WebCrypto do; tweetnacl alone would not, so the page checks it)."""
    path = root / "manifest.json.sig"
    sig = path.read_bytes()
    s = int.from_bytes(sig[32:], "little") + ED25519_L
    path.write_bytes(sig[:32] + s.to_bytes(32, "little"))


def bom_before_ssh_signature(root: Path) -> None:
    path = root / "manifest.json.sshsig"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def checkpoint_line_with_extra_field(root: Path) -> None:
    path = root / "ledger" / "checkpoint.txt"
    path.write_bytes(path.read_bytes()[:-1] + b" x\n")


def public_key_with_text_around(root: Path) -> None:
    path = root / "keys" / "signer.pub.pem"
    path.write_bytes(path.read_bytes() + b"junk\n")


def inclusion_index_as_float(root: Path) -> None:
    path = root / "ledger" / "inclusion.json"
    doc = json.loads(path.read_bytes())
    path.write_text(
        json.dumps(doc).replace(f'"index": {doc["index"]}', f'"index": {doc["index"]}.0')
    )


def manifest_huge(root: Path) -> None:
    """Sparse junk far larger than any manifest: refused before it is read."""
    with (root / "manifest.json").open("r+b") as handle:
        handle.truncate(80 * 1024 * 1024)


MATRIX: dict[str, tuple[Callable[..., None], str]] = {
    name: (how, first) for name, (how, first, _stock) in TAMPERS.items()
} | {
    "cover_sheet_tampered": (cover_sheet_tampered, "cover"),
    "page_tampered": (page_tampered, "files"),
    "manifest_reformatted": (manifest_reformatted, "manifest"),
    "manifest_huge": (manifest_huge, "manifest"),
    # Where a browser's parsing could differ from Python's (found by an attacker review):
    # both verifiers must read every file alike.
    "signature_malleated": (signature_malleated, "signature"),
    "bom_before_ssh_signature": (bom_before_ssh_signature, "ssh-signature"),
    "checkpoint_line_with_extra_field": (checkpoint_line_with_extra_field, "checkpoint"),
    "public_key_with_text_around": (public_key_with_text_around, "keys"),
    "inclusion_index_as_float": (inclusion_index_as_float, "inclusion"),
}


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_the_page_fails_each_tampered_export_as_scelle_verify_does(
    browser: Page, export: Export, tmp_path: Path, case: str
) -> None:
    tamper, first_failure = MATRIX[case]
    root = tmp_path / export.path.name
    shutil.copytree(export.path, root)
    if case == "inclusion_proof_for_another_entry":
        tamper(root, export.site)
    else:
        tamper(root)
    seen = browser.verify(root / PAGE, root, expected_key=export.fingerprint)
    assert (seen["status"], seen["first_failure"]) == ("failed", first_failure), (case, seen)
    assert cli_verdict(root, export.fingerprint) == ("failed", first_failure)
    assert seen["ed25519"] == browser.implementation  # type: ignore[attr-defined]
    assert {url.split(":", 1)[0] for url in seen["requests"]} == {"file"}, seen["requests"]


def test_the_page_verifies_a_ledger_bundle(browser: Page, export: Export, tmp_path: Path) -> None:
    env = {"SCELLE_HOME": str(export.site), "LOGNAME": ADMIN}
    bundle = tmp_path / "bundle"
    made = run_cli(["ledger", "export", "--out", str(bundle), "--reason", "contrôle"], env=env)
    assert made.exit_code == 0, made.stderr
    assert (bundle / PAGE).read_bytes() == page_bytes()
    seen = browser.verify(bundle / PAGE, bundle)
    assert (seen["status"], seen["first_failure"]) == ("ok", None), seen
    assert [ident for ident, _ok in seen["checks"]] == [
        "checkpoint",
        "sha256sums",
        "inventory",
        "entries",
    ]
    for defect, first in (("blank_line_in_sums", "sha256sums"), ("lone_surrogate", "proof")):
        forged = tmp_path / defect
        shutil.copytree(bundle, forged)
        if defect == "blank_line_in_sums":
            (forged / "SHA256SUMS").write_bytes((forged / "SHA256SUMS").read_bytes() + b"\n")
        else:
            proof = (forged / "proof.json").read_bytes()
            (forged / "proof.json").write_bytes(b'{"a":"\\ud800",' + proof[1:])
        seen = browser.verify(bundle / PAGE, forged)
        assert (seen["status"], seen["first_failure"]) == ("failed", first), (defect, seen)
        verified = run_cli(["ledger", "verify", "--bundle", str(forged)])
        assert verified.exit_code == 4 and f"first: {first} (" in verified.stderr, defect
    lines = (bundle / "entries.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"v":1', b'"v":2')
    (bundle / "entries.jsonl").write_bytes(b"\n".join(lines))
    seen = browser.verify(bundle / PAGE, bundle)
    assert (seen["status"], seen["first_failure"]) == ("failed", "sha256sums")
    verified = run_cli(["ledger", "verify", "--bundle", str(bundle)])
    assert verified.exit_code == 4 and "first: sha256sums (" in verified.stderr


def test_the_page_takes_the_export_inside_only_when_nothing_lies_beside(
    browser: Page, export: Export, tmp_path: Path
) -> None:
    """Picking the USB key's root works; a folder with something beside the export is
    refused, as `scelle verify` refuses it (a video beside a genuine export must not be
    taken as verified)."""
    key = tmp_path / "usb"
    shutil.copytree(export.path, key / export.path.name)
    seen = browser.verify(key / export.path.name / PAGE, key)
    assert seen["status"] == "partial", seen
    (key / "C-044_14h02_HD.mp4").write_bytes(b"not from the CSV")
    seen = browser.verify(key / export.path.name / PAGE, key)
    assert (seen["status"], seen["first_failure"]) == ("failed", "manifest"), seen
    assert export.path.name in seen["text"]
    assert run_cli(["verify", str(key)]).exit_code == 3


def test_the_page_is_listed_in_the_manifest_and_inlines_its_libraries(export: Export) -> None:
    page = (export.path / PAGE).read_bytes()
    manifest = json.loads((export.path / "manifest.json").read_bytes())
    listed = {f["path"]: f for f in manifest["files"]}
    assert listed[PAGE] == {
        "path": PAGE,
        "role": "verifier",
        "size": len(page),
        "sha256": hashlib.sha256(page).hexdigest(),
    }
    assert page == page_bytes()
    text = page.decode()
    assert '<input type="file" id="export-folder" webkitdirectory>' in text
    assert 'id="verdict"' in text and "default-src 'none'" in text
    for name in ("src=", "href=", "http://", "https://"):  # nothing to fetch, anywhere
        assert name not in text.replace("https://www.npmjs.com/package/hash-wasm", ""), name
    vendor_readme = (
        Path(__file__).parent.parent / "templates" / "vendor" / "README.md"
    ).read_text()
    for name, digest in VENDOR.items():
        assert name.split("/")[1] in vendor_readme
        data = (Path(__file__).parent.parent / "templates" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        assert data.decode() in text
