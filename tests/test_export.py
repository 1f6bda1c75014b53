"""A real export, checked by the real stock tools and by `scelle verify`, then tampered
with in every way an investigator must catch."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.keys import Signer, public_pem
from custody.signatures import (
    allowed_signers,
    minisign_public_key,
    sign_minisign,
    sign_raw,
    sign_sshsig,
)
from requisition.demo import OPERATOR, run_demo
from tests.conftest import ADMIN, logged_in_as, require_tool, run_cli
from tests.modules_loaded import loaded_by


@dataclass(frozen=True)
class Export:
    path: Path
    fingerprint: str
    identity: str
    site: Path


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Export]:
    with logged_in_as(ADMIN):  # the demo site's administrator
        result = run_demo(tmp_path_factory.mktemp("demo") / "site", lambda _line: None)
    identity = (result.export.path / "keys" / "allowed_signers").read_text().split()[0]
    assert result.verified.fingerprint is not None
    yield Export(result.export.path, result.verified.fingerprint, identity, result.home)


def run(args: list[str], cwd: Path, stdin: bytes | None = None) -> int:
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True).returncode


def stock_checks(root: Path, identity: str, keys: Path | None = None) -> dict[str, int]:
    """Every stock tool's verdict, with the export's own keys or with pinned ones."""
    keys = keys or root / "keys"
    manifest = (root / "manifest.json").read_bytes()
    return {
        "openssl": run(
            [
                require_tool("openssl"),
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                str(keys / "signer.pub.pem"),
                "-rawin",
                "-in",
                "manifest.json",
                "-sigfile",
                "manifest.json.sig",
            ],
            root,
        ),
        "ssh-keygen": run(
            [
                require_tool("ssh-keygen"),
                "-Y",
                "verify",
                "-f",
                str(keys / "allowed_signers"),
                "-I",
                identity,
                "-n",
                "scelle-export",
                "-s",
                "manifest.json.sshsig",
            ],
            root,
            stdin=manifest,
        ),
        "minisign": run(
            [
                require_tool("minisign"),
                "-Vm",
                "manifest.json",
                "-p",
                str(keys / "minisign.pub"),
                "-x",
                "manifest.json.minisig",
            ],
            root,
        ),
        "sha256sum": run([require_tool("sha256sum"), "--quiet", "-c", "SHA256SUMS"], root),
    }


def test_stock_tools_verify_a_real_export(export: Export) -> None:
    assert stock_checks(export.path, export.identity) == {
        "openssl": 0,
        "ssh-keygen": 0,
        "minisign": 0,
        "sha256sum": 0,
    }
    listed = (export.path / "SHA256SUMS").read_text()
    assert "master/01-C-012/" in listed and "working/02-C-044/" in listed


def test_fingerprints_in_verify_txt_match_the_tools(export: Export) -> None:
    text = (export.path / "VERIFY.txt").read_text()
    line = subprocess.run(
        f"cut -d' ' -f3- keys/allowed_signers | {require_tool('ssh-keygen')} -lf -",
        shell=True,
        cwd=export.path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert export.fingerprint in line
    assert f"ssh-keygen -lf      : {export.fingerprint}" in text
    der = subprocess.run(
        f"{require_tool('openssl')} pkey -pubin -in keys/signer.pub.pem -outform DER | sha256sum",
        shell=True,
        cwd=export.path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert f"openssl DER sha256  : {der}" in text


def test_scelle_verify_passes_and_warns_without_key(export: Export) -> None:
    result = run_cli(["verify", str(export.path)])
    assert result.exit_code == 10  # the demo export states a gap: authentic, partial
    assert result.stdout.count("  OK  ") == 11  # with timestamp: none configured, stated
    assert "proves nothing until this fingerprint is compared" in result.stderr
    pinned = run_cli(["verify", str(export.path), "--key", export.fingerprint])
    assert pinned.exit_code == 10 and "warning" not in pinned.stderr.lower()


def flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def flipped_byte_in_master_segment(root: Path) -> None:
    flip(next((root / "master").rglob("*.mp4")))


def flipped_byte_in_working_copy(root: Path) -> None:
    flip(next((root / "working").rglob("*.mp4")))


def flipped_byte_in_manifest(root: Path) -> None:
    """One bit of the PV number: still canonical JSON, no longer what was signed."""
    manifest = root / "manifest.json"
    flip(manifest, at=manifest.read_bytes().index(b"PV 2026/004217") + 13)


def file_added(root: Path) -> None:
    (root / "working" / "02-C-044" / "extra.mp4").write_bytes(b"planted")


def file_removed(root: Path) -> None:
    next((root / "master").rglob("*.mp4")).unlink()


def manifest_resigned_with_another_key(root: Path) -> None:
    other = Signer(Ed25519PrivateKey.generate())
    manifest = (root / "manifest.json").read_bytes()
    identity = (root / "keys" / "allowed_signers").read_text().split()[0]
    (root / "manifest.json.sig").write_bytes(sign_raw(other, manifest))
    (root / "manifest.json.sshsig").write_text(sign_sshsig(other, manifest))
    (root / "manifest.json.minisig").write_text(sign_minisign(other, manifest, "forged"))
    (root / "keys" / "signer.pub.pem").write_text(public_pem(other.public_key))
    (root / "keys" / "allowed_signers").write_text(allowed_signers(other.public_key, identity))
    (root / "keys" / "minisign.pub").write_text(minisign_public_key(other.public_key))


def inclusion_proof_for_another_entry(root: Path, site: Path) -> None:
    """Swap in entry 1 of the same ledger, with its own valid proof."""
    env = {"SCELLE_HOME": str(site), "LOGNAME": ADMIN}
    body = run_cli(["ledger", "show", "1", "--raw"], env=env).stdout
    proof = run_cli(["ledger", "proof", "inclusion", "--index", "1"], env=env).stdout
    (root / "ledger" / "entry.json").write_text(body)
    (root / "ledger" / "inclusion.json").write_text(proof)


TAMPERS: dict[str, tuple[Callable[..., None], str, set[str]]] = {
    # name: (how, the id of scelle verify's first failing check, stock tools that must fail)
    "flipped_byte_in_master_segment": (
        flipped_byte_in_master_segment,
        "files",
        {"sha256sum"},
    ),
    "flipped_byte_in_working_copy": (
        flipped_byte_in_working_copy,
        "files",
        {"sha256sum"},
    ),
    "flipped_byte_in_manifest": (
        flipped_byte_in_manifest,
        "signature",
        {"openssl", "ssh-keygen", "minisign"},
    ),
    "file_added": (file_added, "inventory", set()),
    "file_removed": (file_removed, "files", {"sha256sum"}),
    "manifest_resigned_with_another_key": (
        manifest_resigned_with_another_key,
        "expected-key",
        {"openssl", "ssh-keygen", "minisign"},  # with the key pinned from the cover sheet
    ),
    "inclusion_proof_for_another_entry": (
        inclusion_proof_for_another_entry,
        "inclusion",
        set(),
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_exports_fail(export: Export, tmp_path: Path, case: str) -> None:
    tamper, first_failure, stock_fail = TAMPERS[case]
    root = tmp_path / export.path.name
    shutil.copytree(export.path, root)
    pinned = tmp_path / "pinned-keys"
    shutil.copytree(export.path / "keys", pinned)
    if case == "inclusion_proof_for_another_entry":
        tamper(root, export.site)
    else:
        tamper(root)
    result = run_cli(["verify", str(root), "--key", export.fingerprint])
    assert result.exit_code == 4, (case, result.stdout)
    assert f"first: {first_failure} (" in result.stderr, (case, result.stderr)
    assert "FAIL" in result.stdout
    verdicts = stock_checks(root, export.identity, keys=pinned)
    failed = {tool for tool, code in verdicts.items() if code != 0}
    assert stock_fail <= failed, (case, verdicts)
    if not stock_fail:
        assert failed == set(), (case, verdicts)  # nothing they cover was changed


def test_verify_loads_no_database_layer(export: Export, tmp_path: Path) -> None:
    """An investigator's `scelle verify` runs without the site: it must not even import
    the database layer. The same probe on a site command sees it, so the probe works."""
    code, loaded = loaded_by(["verify", str(export.path)], tmp_path / "verify.json")
    assert code == 10 and loaded == []  # verified, partial
    site = {"SCELLE_HOME": str(export.site), "LOGNAME": ADMIN}
    code, loaded = loaded_by(["ledger", "verify"], tmp_path / "site.json", site)
    assert code == 0 and {"custody.db", "custody.ledger"} <= set(loaded)


def test_verify_refuses_a_directory_that_is_not_an_export(tmp_path: Path) -> None:
    result = run_cli(["verify", str(tmp_path)])
    assert result.exit_code == 3
    assert "is not a scelle export" in result.stderr


def test_export_copy_reads_back_and_is_recorded(export: Export, tmp_path: Path) -> None:
    env = {"SCELLE_HOME": str(export.site), "LOGNAME": OPERATOR}
    medium = tmp_path / "usb"
    medium.mkdir()
    result = run_cli(["export", "copy", export.path.name, "--to", str(medium)], env=env)
    assert result.exit_code == 0, result.stderr
    assert "read back: 12 checks passed" in result.stdout
    assert run_cli(["verify", str(medium / export.path.name)]).exit_code == 10  # partial
    audit = {**env, "LOGNAME": ADMIN}
    last = json.loads(run_cli(["ledger", "show", "--json", "--limit", "1"], env=audit).stdout)[0]
    assert last["action"] == "export.copy"
    again = run_cli(["export", "copy", export.path.name, "--to", str(medium)], env=env)
    assert again.exit_code == 5
    assert "already exists on the medium" in again.stderr
