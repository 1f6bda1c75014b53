"""VERIFY.html in a real browser: Debian's headless Chromium driven by selenium.

The page is opened from file:// as an investigator opens it from the USB key, the export's
folder is picked through `<input id="export-folder" webkitdirectory>`, and the verdict is
read from `#verdict` (`data-status`, `data-first-failure`): for a real demo export, for each
case of the export tamper matrix (the first failure must be the one `scelle verify` names),
for a ledger bundle, for an export whose checkpoint a real witness cosigned (with and without
the witness policy, `<input id="witness-policy">`), and again with WebCrypto's Ed25519
removed so that the vendored implementation does the work. Every request the page makes is
logged: none may leave file://.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from itertools import combinations
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.checks import PAGE
from custody.cosignature import cosigner_vkey, parse_cosigner_vkey
from custody.errors import InputError
from custody.keys import Signer
from custody.note import verifier_key
from custody.policy import read_policy
from exporters.verify_export import TIMESTAMP_CHECKS
from exporters.verify_page import VENDOR, page_bytes
from tests.conftest import ADMIN, require_tool, run_cli
from tests.test_export import TAMPERS, Export, export, flip
from tests.test_witness import NAME as WITNESS
from tests.test_witness import make_witness, one_witness_policy

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

    def verify(
        self, page: Path, folder: Path, expected_key: str = "", policy: Path | None = None
    ) -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        self.driver.get_log("performance")  # forget the previous page's requests
        self.driver.get(page.as_uri())
        if expected_key:
            self.driver.find_element(By.ID, "expected-key").send_keys(expected_key)
        if policy is not None:
            self.driver.find_element(By.ID, "witness-policy").send_keys(str(policy))
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
            "table": self.driver.find_element(By.ID, "checks").text,
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
def browser(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # Its profile and scratch files in pytest's own directory: left in /tmp, every run
    # added two org.chromium.Chromium.* directories that nothing removed.
    scratch = tmp_path_factory.mktemp("chromium")
    options.add_argument(f"--user-data-dir={scratch / 'profile'}")
    service = Service(chromedriver, env={**os.environ, "TMPDIR": str(scratch)})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        if request.param == "tweetnacl":
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NO_ED25519})
        page = Page(driver)
        page.implementation = request.param  # type: ignore[attr-defined]
        yield page
    finally:
        driver.quit()


def cli_verdict(
    root: Path, key: str | None = None, policy: Path | None = None
) -> tuple[str, str | None]:
    """`scelle verify --json`'s verdict, as the page must state it."""
    args = ["verify", str(root), "--json"] + (["--key", key] if key else [])
    args += ["--policy", str(policy)] if policy else []
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
    day, tz = demo_day() + " ", demo_offset()
    assert f"C-012 : {day}14:00:30 ({tz}) → {day}14:02:30 ({tz}) — complète" in (seen["gaps"])
    assert f"C-044 : {day}14:01:00 ({tz}) → {day}14:03:00 ({tz}) — 1 interruption" in (seen["gaps"])
    assert f"C-044 : {day}14:02:10 ({tz})" in seen["gaps"]  # the gap, as on the PV
    assert "no footage recorded" in seen["gaps"] and "aucun enregistrement" in seen["gaps"]
    assert "PARTIEL" in seen["text"] and "PARTIAL" in seen["text"]
    assert {url.split(":", 1)[0] for url in seen["requests"]} == {"file"}, seen["requests"]
    pinned = browser.verify(export.path / PAGE, export.path, expected_key=export.fingerprint)
    assert pinned["checks"][0] == ("expected-key", True) and pinned["status"] == "partial"


def demo_day() -> str:
    """The day of the demo's footage, as French papers write it: the day before the one
    it was built (requisition/demo.py); never a fixed date, which expires."""
    return (date.today() - timedelta(days=1)).strftime("%d/%m/%Y")


def demo_offset() -> str:
    """Paris's offset at the demo's footage (UTC+01:00 in winter, UTC+02:00 in summer)."""
    moment = datetime.combine(date.today() - timedelta(days=1), dtime(14), ZoneInfo("Europe/Paris"))
    hours = int(moment.utcoffset().total_seconds()) // 3600  # type: ignore[union-attr]
    return f"UTC+{hours:02d}:00"


def demo_env(export: Export) -> dict[str, str]:
    return {
        "SCELLE_HOME": str(export.site),
        "SCELLE_PASSPHRASE_FILE": str(export.site / "demo-passphrase"),
        "LOGNAME": "demo-operator",
    }


def extract_complete(out: Path, env: dict[str, str], pv: str = "PV 2026/009999") -> Path:
    """Another requisition on the demo site, for the demo camera whose footage has no gap,
    extracted into `out`: a complete export."""
    made = run_cli(
        [
            "requisition", "register", "--legal-basis", "60-1", "--pv", pv,
            "--officer", "Brigadier Test", "--unit", "BSU Villeurbanne", "--reason", "test",
            "--window", f"C-012={demo_day()} 14h00/14h02",
        ],
        env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    rid = made.stdout.split()[1]
    approved = run_cli(["requisition", "approve", rid], env=env | {"LOGNAME": "demo-supervisor"})
    assert approved.exit_code == 0, approved.stderr
    extracted = run_cli(["requisition", "extract", rid, "--out", str(out)], env=env)
    assert extracted.exit_code == 0 and "complete: no gap" in extracted.stdout, extracted.stderr
    return out / rid


@pytest.fixture(scope="module")
def complete_export(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_complete(tmp_path_factory.mktemp("complete"), demo_env(export))


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


def tlog_proof_index_changed(root: Path) -> None:
    """The C2SP tlog-proof naming another index than inclusion.json does."""
    path = root / "ledger" / "entry.tlog-proof"
    head, sep, rest = path.read_text().partition("\n\n")
    header, index, *hashes = head.split("\n")
    number = int(index.removeprefix("index "))
    path.write_text("\n".join([header, f"index {number + 1}", *hashes]) + sep + rest)


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
    "tlog_proof_index_changed": (tlog_proof_index_changed, "checkpoint"),
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


# --- witnesses: the checkpoint's cosignatures (C2SP tlog-cosignature), as `scelle verify
# --policy` checks them -----------------------------------------------------------------


@dataclass
class Witnessed:
    path: Path  # a complete export whose checkpoint the witness cosigned
    policy: Path  # the site's witness policy: that witness, and its quorum
    witness_vkey: str
    site_vkey: str


@pytest.fixture(scope="module")
def witnessed(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Witnessed:
    """An export of the demo site once a witness follows it: a real `scelle witness serve`
    on 127.0.0.1 (tests/test_witness.py), named in the site's policy."""
    root = tmp_path_factory.mktemp("witnessed")
    env = demo_env(export)
    site_vkey = run_cli(["keys", "show", "--vkey"], env=env).stdout.strip()
    server = make_witness(root, site_vkey)
    try:
        policy = one_witness_policy(server, root / "witnesses.txt")
        witnessing = env | {"SCELLE_WITNESS_POLICY": str(policy)}
        path = extract_complete(root / "out", witnessing, pv="PV 2026/009998")
    finally:
        server.process.kill()
        server.process.wait()
    assert f"\u2014 {WITNESS} " in (path / "ledger" / "checkpoint.txt").read_text()
    return Witnessed(path, policy, server.vkey, site_vkey)


def another_witness(name: str = "witness.other.test/w") -> str:
    return cosigner_vkey(name, Signer(Ed25519PrivateKey.generate()).public_key)


def test_the_page_names_the_witnesses_that_vouch(
    browser: Page, witnessed: Witnessed, tmp_path: Path
) -> None:
    """With the policy, the cosignature is checked and the witness named; without it, the
    name is listed, not checked, and the verdict is the same: as `scelle verify`."""
    root, policy = witnessed.path, witnessed.policy
    seen = browser.verify(root / PAGE, root, policy=policy)
    assert (seen["status"], seen["first_failure"]) == ("ok", None), seen
    assert cli_verdict(root, policy=policy) == ("ok", None)
    assert seen["checks"][-1] == ("witnesses", True)
    assert f"witnesses that vouch for its checkpoint: {WITNESS}" in seen["table"]
    assert "not checked" not in seen["facts"]

    plain = browser.verify(root / PAGE, root)
    assert (plain["status"], plain["first_failure"]) == cli_verdict(root) == ("ok", None)
    assert "witnesses" not in [ident for ident, _ok in plain["checks"]]
    assert f"contresignatures de {WITNESS} : non vérifiées" in plain["facts"]
    assert f"cosignatures by {WITNESS}: not checked (give the witness policy)" in plain["facts"]
    # The policy given after the folder: the folder is checked again, with it.
    from selenium.webdriver.common.by import By

    browser.driver.find_element(By.ID, "witness-policy").send_keys(str(policy))
    deadline = time.monotonic() + 60
    while not browser.driver.find_elements(By.CSS_SELECTOR, '#checks tr[data-check="witnesses"]'):
        assert time.monotonic() < deadline, "the page did not check the folder again"
        time.sleep(0.05)
    verdict = browser.driver.find_element(By.ID, "verdict")
    assert verdict.get_attribute("data-status") == "ok"
    assert "not checked" not in browser.driver.find_element(By.ID, "facts").text

    # A policy that names its logs vouches for those only: a key of the same name is not it.
    site = witnessed.site_vkey.split("+")[0]
    stranger = verifier_key(site, Signer(Ed25519PrivateKey.generate()).public_key)
    for log, verdict in ((witnessed.site_vkey, ("ok", None)), (stranger, ("failed", "witnesses"))):
        named = tmp_path / f"logs-{verdict[0]}.txt"
        named.write_text(
            f"log {log}\nwitness prefecture {witnessed.witness_vkey}\nquorum prefecture\n"
        )
        seen = browser.verify(root / PAGE, root, policy=named)
        assert (seen["status"], seen["first_failure"]) == verdict, seen
        assert cli_verdict(root, policy=named) == verdict


def cosignature_flipped(root: Path) -> None:
    """One bit of the witness's Ed25519 signature, on its line of the checkpoint, and
    alike in the tlog-proof that carries the checkpoint verbatim (else that mismatch is
    what fails first)."""
    for path in (root / "ledger" / "checkpoint.txt", root / "ledger" / "entry.tlog-proof"):
        lines = path.read_text().split("\n")
        at = next(i for i, line in enumerate(lines) if line.startswith(f"\u2014 {WITNESS} "))
        blob = bytearray(base64.b64decode(lines[at].split(" ")[2]))
        blob[4 + 8 + 20] ^= 0x01
        lines[at] = f"\u2014 {WITNESS} {base64.b64encode(bytes(blob)).decode()}"
        path.write_text("\n".join(lines))


def test_the_page_fails_when_the_cosignatures_miss_the_quorum(
    browser: Page, witnessed: Witnessed, tmp_path: Path
) -> None:
    root = witnessed.path
    both = tmp_path / "both.txt"  # the witness, and another that never cosigned
    both.write_text(
        f"witness prefecture {witnessed.witness_vkey}\nwitness other {another_witness()}\n"
        "group both all prefecture other\nquorum both\n"
    )
    other = tmp_path / "other.txt"
    other.write_text(f"witness other {another_witness(WITNESS)}\nquorum other\n")
    for policy, names in ((both, WITNESS), (other, "no witness of the policy")):
        seen = browser.verify(root / PAGE, root, policy=policy)
        assert (seen["status"], seen["first_failure"]) == ("failed", "witnesses"), seen
        assert cli_verdict(root, policy=policy) == ("failed", "witnesses")
        assert f"the checkpoint is cosigned by {names}: not the policy's quorum" in seen["text"]
        assert all(ok for ident, ok in seen["checks"] if ident != "witnesses")

    # A cosignature altered by one bit does not count; unchecked, its name is still listed.
    forged = tmp_path / root.name
    shutil.copytree(root, forged)
    cosignature_flipped(forged)
    seen = browser.verify(forged / PAGE, forged, policy=witnessed.policy)
    assert (seen["status"], seen["first_failure"]) == ("failed", "witnesses"), seen
    assert cli_verdict(forged, policy=witnessed.policy) == ("failed", "witnesses")
    assert "aucun témoin de la politique" in seen["text"]
    plain = browser.verify(forged / PAGE, forged)
    assert (plain["status"], plain["first_failure"]) == cli_verdict(forged) == ("ok", None)
    assert f"cosignatures by {WITNESS}: not checked" in plain["facts"]

    # A policy scelle refuses to read (one key under two names): the page refuses it too.
    twice = tmp_path / "twice.txt"
    _name, key = parse_cosigner_vkey(witnessed.witness_vkey)
    twice.write_text(
        f"witness a {witnessed.witness_vkey}\nwitness b {cosigner_vkey('w.test/b', key)}\n"
        "quorum a\n"
    )
    seen = browser.verify(root / PAGE, root, policy=twice)
    assert (seen["status"], seen["first_failure"]) == ("failed", "witnesses"), seen
    assert (
        "twice.txt: witness policy, line 2: a witness's key or key name is listed" in seen["text"]
    )
    assert run_cli(["verify", str(root), "--policy", str(twice)]).exit_code == 3


def test_the_page_checks_a_bundles_cosignatures(
    browser: Page, export: Export, tmp_path: Path
) -> None:
    """A ledger bundle whose checkpoint a real witness cosigned (its checkpoint.txt carries
    the cosignatures the site holds): checked as an export's, with the verdict of `scelle
    ledger verify --bundle --policy`."""
    env = demo_env(export)
    server = make_witness(tmp_path, run_cli(["keys", "show", "--vkey"], env=env).stdout.strip())
    try:
        policy = one_witness_policy(server, tmp_path / "policy.txt", "w")
        witnessing = env | {"SCELLE_WITNESS_POLICY": str(policy)}
        signed = run_cli(["ledger", "checkpoint"], env=witnessing)
        assert signed.exit_code == 0 and "the policy's quorum is met" in signed.stderr, signed
        bundle = tmp_path / "bundle"
        made = run_cli(
            ["ledger", "export", "--out", str(bundle), "--reason", "contrôle"],
            env=witnessing | {"LOGNAME": ADMIN},
        )
        assert made.exit_code == 0, made.stderr
    finally:
        server.process.kill()
        server.process.wait()
    assert f"\u2014 {WITNESS} " in (bundle / "checkpoint.txt").read_text()
    checked = run_cli(["ledger", "verify", "--bundle", str(bundle), "--policy", str(policy)])
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    seen = browser.verify(bundle / PAGE, bundle, policy=policy)
    assert (seen["status"], seen["first_failure"]) == ("ok", None), seen
    assert seen["checks"][-1] == ("witnesses", True)
    assert f"witnesses that vouch for its checkpoint: {WITNESS}" in seen["table"]
    plain = browser.verify(bundle / PAGE, bundle)
    assert (plain["status"], plain["first_failure"]) == ("ok", None), plain
    assert f"cosignatures by {WITNESS}: not checked" in plain["facts"]
    other = tmp_path / "other.txt"
    other.write_text(f"witness w {another_witness(WITNESS)}\nquorum w\n")
    seen = browser.verify(bundle / PAGE, bundle, policy=other)
    assert (seen["status"], seen["first_failure"]) == ("failed", "witnesses"), seen
    refused = run_cli(["ledger", "verify", "--bundle", str(bundle), "--policy", str(other)])
    assert refused.exit_code == 4


READ = """
const [text, file, subsets, done] = arguments;
parsePolicy(text, file).then(
  (p) => done({
    quorum: p.quorum,
    witnesses: [...p.witnesses].map(([label, w]) => [label, w.name]),
    groups: [...p.groups].map(([label, g]) => [label, g.threshold, g.members]),
    logs: p.logs.map((l) => l.name),
    met: subsets.map((names) => quorumMet(p, new Set(names))),
  }),
  (e) => done({ refused: e.en }),
);
"""


def test_the_page_reads_witness_policies_as_scelle_does(
    browser: Page, export: Export, tmp_path: Path
) -> None:
    """custody/policy.py's rules, case by case: the same policies accepted, read alike (their
    quorum met by the same witnesses), the others refused for the same reason."""
    key = Signer(Ed25519PrivateKey.generate()).public_key
    a, b, c = (
        cosigner_vkey("w.test/a", key),
        another_witness("w.test/b"),
        another_witness("w.test/c"),
    )
    log = verifier_key("csv.test", Signer(Ed25519PrivateKey.generate()).public_key)
    name, kid, raw = a.split("+", 2)
    cases = [
        f"witness a {a}\nquorum a\n",
        f"# the prefecture\nwitness a {a} https://w.test # it\n\nwitness b {b}\ngroup g any a b\n"
        "quorum g\n",
        f"witness a {a}\nwitness b {b}\nwitness c {c}\ngroup g 2 a b c\ngroup h all g c\n"
        "quorum h\n",
        f"log {log} https://csv.test\nwitness a {a}\ngroup g 001 a\nquorum none\n",
        f"witness a {a}\r\nquorum a # a comment ends at a lone CR\rwitness b {b}\r\n",
        f"witness a {a}\u00a0https://w.test\u3000\nquorum a\n",  # Unicode spaces
        f"witness __proto__ {a}\ngroup constructor all __proto__\nquorum constructor\n",
        f"witness a {another_witness('témoin.test/é')}\nquorum a\n",
        f"witness a {name}+{kid.upper()}+{raw}\nquorum a\n",
        # refused
        f"\ufeffwitness a {a}\nquorum a\n",
        f"witness a {a}\nwitness b {cosigner_vkey('w.test/b', key)}\nquorum a\n",  # one key
        f"witness a {a}\nwitness b {a.replace('w.test/a', 'w.test/b', 1)}\nquorum a\n",
        f"witness a {a}\nwitness b {another_witness('w.test/a')}\nquorum a\n",
        f"witness a {a}\nwitness a {b}\nquorum a\n",
        f"witness none {a}\nquorum none\n",
        f"witness a {a} ftp://w.test\nquorum a\n",
        f"witness a {a}\ngroup g \u00b2 a\nquorum g\n",
        f"witness a {a}\ngroup g 0 a\nquorum g\n",
        f"witness a {a}\ngroup g 2 a\nquorum g\n",
        f"witness a {a}\ngroup g 1 a a\nquorum g\n",
        f"witness a {a}\ngroup g 1 b\nquorum g\n",
        f"witness a {a}\ngroup a 1 a\nquorum a\n",
        f"quorum a\nwitness a {a}\n",
        f"witness a {a}\nquorum a\nquorum a\n",
        f"witness a {a}\n",
        "",
        f"witness a {name}+{kid}+{raw[:-4]}AAA=\nquorum a\n",
        f"witness a {name}+{kid}+{raw[:-2]}\nquorum a\n",  # not base64: padding missing
        f"witness a {log}\nquorum a\n",
        f"log {a}\nquorum none\n",
        f"log {log} x y\nquorum none\n",
        "witness a w.test+abcd\nquorum a\n",
        "witness a +abcd+AAAA\nquorum a\n",
        "witness a w.test+abcd+AA=A\nquorum a\n",
        f"witness a {a}\nfrobnicate\nquorum a\n",
        "".join(f"witness w{i} {another_witness(f'w.test/{i}')}\n" for i in range(33))
        + "quorum none\n",
    ]
    browser.driver.get((export.path / PAGE).as_uri())
    browser.driver.set_script_timeout(30)
    for number, text in enumerate(cases):
        path = tmp_path / f"policy-{number}.txt"
        path.write_bytes(text.encode())
        try:
            policy = read_policy(path)
        except InputError as refused:
            seen = browser.driver.execute_async_script(READ, text, str(path), [])
            # The page holds no URL, even in a message (see the test above): it words that
            # rule without one.
            said = refused.message.replace(
                "starts with http:// or https://", "is not http or https"
            )
            assert seen == {"refused": said}, (number, text)
            continue
        names = [w.name for w in policy.witnesses.values()]
        subsets = [list(s) for k in range(len(names) + 1) for s in combinations(names, k)]
        seen = browser.driver.execute_async_script(READ, text, str(path), subsets)
        assert seen == {
            "quorum": policy.quorum,
            "witnesses": [[label, w.name] for label, w in policy.witnesses.items()],
            "groups": [[label, g.threshold, list(g.members)] for label, g in policy.groups.items()],
            "logs": [n for n, _key, _url in policy.logs],
            "met": [policy.satisfied(s) for s in subsets],
        }, (number, text)


@pytest.fixture(scope="module")
def timestamped(export: Export, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete export of the demo site stamped by a local TSA (tests/tsa.py)."""
    from tests.tsa import local_tsa

    root = tmp_path_factory.mktemp("timestamped")
    with local_tsa(root / "tsa") as tsa:
        stamped = demo_env(export) | {
            "SCELLE_TIMESTAMP_URL": tsa.url,
            "SCELLE_TIMESTAMP_CA": str(tsa.ca_pem),
        }
        path = extract_complete(root / "out", stamped, pv="PV 2026/009997")
    assert (path / "manifest.json.tsr").is_file()
    return path


def test_the_page_takes_a_timestamped_export(
    browser: Page, timestamped: Path, tmp_path: Path
) -> None:
    """A TSA's token and CA beside the manifest are the export's own files, not strays:
    the page says ok as `scelle verify` does (it leaves the token to openssl and the CLI),
    and a stray file beside them still fails its inventory."""
    seen = browser.verify(timestamped / PAGE, timestamped)
    assert (seen["status"], seen["first_failure"]) == ("ok", None), seen
    assert cli_verdict(timestamped) == ("ok", None)
    path = tmp_path / timestamped.name
    shutil.copytree(timestamped, path)
    (path / "keys" / "other.pem").write_bytes((path / "keys" / "tsa-ca.pem").read_bytes())
    seen = browser.verify(path / PAGE, path)
    assert (seen["status"], seen["first_failure"]) == ("failed", "inventory"), seen
    assert cli_verdict(path) == ("failed", "inventory")
