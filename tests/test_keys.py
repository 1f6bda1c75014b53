"""The site key at rest, and the fingerprints people compare, against the stock tools."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from custody.errors import InvalidStateError, SigningKeyError, WrongPassphraseError
from custody.keys import create_key, der_sha256, load_signer, ssh_fingerprint
from tests.conftest import PASSPHRASE, SiteEnv, require_tool, run_cli


@pytest.mark.production_kdf
def test_key_file_is_0600_with_600000_rounds(site_env: SiteEnv, tmp_path: Path) -> None:
    key = site_env.settings.key_file
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(key.parent.glob(".*.tmp"))  # atomic write left no temporary file
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASSPHRASE)
    info = subprocess.run(
        [
            require_tool("openssl"),
            "pkcs12",
            "-info",
            "-in",
            str(key),
            "-noout",
            "-passin",
            f"file:{pass_file}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    shrouded = [line for line in info.stderr.splitlines() if "Shrouded Keybag" in line]
    assert shrouded and "Iteration 600000" in shrouded[0], info.stderr
    assert "AES-256-CBC" in shrouded[0]


def test_fingerprints_equal_ssh_keygen_and_openssl(site_env: SiteEnv, tmp_path: Path) -> None:
    ssh_line = run_cli(["keys", "show", "--ssh"], env=site_env.env).stdout
    (tmp_path / "k.pub").write_text(ssh_line)
    ssh_keygen = subprocess.run(
        [require_tool("ssh-keygen"), "-lf", str(tmp_path / "k.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pem = run_cli(["keys", "show", "--pem"], env=site_env.env).stdout
    der = subprocess.run(
        [require_tool("openssl"), "pkey", "-pubin", "-outform", "DER"],
        input=pem.encode(),
        capture_output=True,
        check=True,
    ).stdout
    sha = subprocess.run(["sha256sum"], input=der, capture_output=True, check=True).stdout.decode()
    shown = run_cli(["keys", "show", "--fingerprint"], env=site_env.env).stdout.splitlines()
    assert shown == [ssh_keygen.strip(), sha.strip()]
    key = load_signer(site_env.settings.key_file, PASSPHRASE).public_key
    assert ssh_fingerprint(key) in ssh_keygen
    assert sha.startswith(der_sha256(key))


def test_vkey_is_name_keyid_key(site_env: SiteEnv) -> None:
    from custody.note import parse_verifier_key

    vkey = run_cli(["keys", "show", "--vkey"], env=site_env.env).stdout.strip()
    name, key = parse_verifier_key(vkey)
    assert name == "csv.test"
    assert key == load_signer(site_env.settings.key_file, PASSPHRASE).public_key


def test_wrong_passphrase_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.p12"
    create_key(path, b"right", "n")
    with pytest.raises(WrongPassphraseError):
        load_signer(path, b"wrong")
    with pytest.raises(InvalidStateError):
        create_key(path, b"other", "n")
    with pytest.raises(SigningKeyError, match="empty"):
        create_key(tmp_path / "k2.p12", b"", "n")
    assert load_signer(path, b"right").sign(b"x")
