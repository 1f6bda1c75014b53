"""A ledger bundle's checkpoint.txt carries the cosignatures the site holds for it, from a
real `scelle witness serve` on 127.0.0.1 (tests/test_witness.py); `scelle ledger verify
--bundle --policy` checks them as `scelle verify --policy` checks an export's, and the
auditor's openssl steps on checkpoint.body and checkpoint.sig still hold."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import parse_canonical
from custody.cosignature import cosigner_vkey
from custody.keys import Signer
from custody.note import verifier_key
from tests.conftest import AUDITOR, SiteEnv, require_tool, run_cli
from tests.modules_loaded import loaded_by
from tests.test_bundle import _resum
from tests.test_witness import NAME, make_witness, one_witness_policy, spec_verify

SITE_LINE = "\u2014 csv.test "  # the site's signature line (its key name, make_site's)


@dataclass
class Cosigned:
    bundle: Path  # entries 2.. of a site whose checkpoints a witness cosigned
    policy: Path  # the site's policy: that witness, and its quorum
    witness_vkey: str
    site_vkey: str
    fingerprint: str


@pytest.fixture
def cosigned(site_env: SiteEnv, tmp_path: Path) -> Cosigned:
    site_vkey = run_cli(["keys", "show", "--vkey"], env=site_env.env).stdout.strip()
    server = make_witness(tmp_path, site_vkey)
    try:
        policy = one_witness_policy(server, tmp_path / "witnesses.txt")
        env = {**site_env.env, "SCELLE_WITNESS_POLICY": str(policy)}
        for round_ in range(2):  # two cosigned checkpoints: the bundle's is the latest
            for i in range(3):
                noted = run_cli(["ledger", "note", f"n{round_}{i}", "--reason", "r"], env=env)
                assert noted.exit_code == 0, noted.stderr
            signed = run_cli(["ledger", "checkpoint"], env=env)
            assert signed.exit_code == 0, signed.stderr
            assert "the policy's quorum is met" in signed.stderr
        bundle = tmp_path / "bundle"
        auditor = {**site_env.env_as(AUDITOR), "SCELLE_WITNESS_POLICY": str(policy)}
        made = run_cli(["ledger", "export", "--from", "2", "--out", str(bundle)], env=auditor)
        assert made.exit_code == 0, made.stderr
    finally:
        server.process.kill()
        server.process.wait()
    fingerprint = run_cli(["keys", "show", "--fingerprint"], env=site_env.env).stdout.split()[1]
    return Cosigned(bundle, policy, server.vkey, site_vkey, fingerprint)


def verify(bundle: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(["ledger", "verify", "--bundle", str(bundle), *args])
    return result.exit_code, result.stdout, result.stderr


def cosignature_flipped(bundle: Path) -> None:
    """One bit of the witness's Ed25519 signature, SHA256SUMS rewritten to match."""
    path = bundle / "checkpoint.txt"
    lines = path.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(f"\u2014 {NAME} "))
    blob = bytearray(base64.b64decode(lines[at].split(" ")[2]))
    blob[4 + 8 + 20] ^= 0x01
    lines[at] = f"\u2014 {NAME} {base64.b64encode(bytes(blob)).decode()}"
    path.write_text("\n".join(lines))
    _resum(bundle)


@pytest.mark.backends("sqlite")
def test_a_bundle_carries_the_cosignatures_of_its_checkpoint(cosigned: Cosigned) -> None:
    """checkpoint.txt: the site's note, then the witness's cosignature of exactly that
    checkpoint; checkpoint.body and checkpoint.sig are the site's alone, as before."""
    bundle = cosigned.bundle
    note = (bundle / "checkpoint.txt").read_text()
    body, _sep, signatures = note.partition("\n\n")
    lines = signatures.splitlines()
    assert lines[0].startswith(SITE_LINE) and len(lines) == 2, note
    spec_verify(cosigned.witness_vkey, body + "\n", lines[1])  # over this body, by the spec
    proof = parse_canonical((bundle / "proof.json").read_bytes())
    assert body.split("\n")[1:] == [str(proof["tree_size"]), proof["root"]]
    assert (bundle / "checkpoint.body").read_text() == body + "\n"
    assert base64.b64decode(lines[0].split()[-1])[4:] == (bundle / "checkpoint.sig").read_bytes()
    readme = (bundle / "README.txt").read_text()
    assert f"cosignature/v1) of the witnesses that vouch\n   for this checkpoint: {NAME}." in readme
    assert "scelle ledger verify --bundle . --policy witnesses.txt" in readme

    openssl = require_tool("openssl")
    checked = subprocess.run(
        [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "key.pub.pem", "-rawin",
         "-in", "checkpoint.body", "-sigfile", "checkpoint.sig"],
        cwd=bundle, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    sums = subprocess.run([require_tool("sha256sum"), "-c", "SHA256SUMS"], cwd=bundle)
    assert sums.returncode == 0

    # Without a policy: verified, the witness named as not checked.
    code, out, err = verify(bundle, "--key", cosigned.fingerprint)
    assert code == 0, out + err
    assert "witnesses (cosignatures" not in out  # no policy, no such check
    assert f"its checkpoint carries cosignatures by {NAME}: not checked (give --policy" in out
    assert "VERIFIED against the expected key: " in out
    code, out, _err = verify(bundle, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "ok" and shown["verified"]
    assert shown["cosignatures_not_checked"] == [NAME] and shown["witnesses"] == []
    assert shown["entries"] == proof["last"] - proof["first"] + 1


@pytest.mark.backends("sqlite")
def test_ledger_verify_checks_a_bundles_cosignatures_against_a_policy(
    cosigned: Cosigned, tmp_path: Path
) -> None:
    bundle, policy = cosigned.bundle, cosigned.policy
    code, out, err = verify(bundle, "--key", cosigned.fingerprint, "--policy", str(policy))
    assert code == 0, out + err
    assert "OK    witnesses (cosignatures of the witness policy's quorum)" in out
    assert f"witnesses that vouch for its checkpoint: {NAME}" in out
    assert "not checked" not in out
    code, out, _err = verify(bundle, "--policy", str(policy), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["checks"][-1]["id"] == "witnesses"
    assert [w["name"] for w in shown["witnesses"]] == [NAME]
    assert shown["cosignatures_not_checked"] == []
    # The bundle check loads no database layer, policy or not.
    args = ["ledger", "verify", "--bundle", str(bundle), "--policy", str(policy)]
    assert loaded_by(args, tmp_path / "loaded.json") == (0, [])

    # A policy that names its logs vouches for those only: a key of the same name is not it.
    stranger = verifier_key("csv.test", Signer(Ed25519PrivateKey.generate()).public_key)
    for log, expected in ((cosigned.site_vkey, 0), (stranger, 4)):
        named = tmp_path / f"logs-{expected}.txt"
        named.write_text(f"log {log}\nwitness p {cosigned.witness_vkey}\nquorum p\n")
        code, out, err = verify(bundle, "--policy", str(named))
        assert code == expected, out + err
    assert "the site's key is not one of the policy's logs" in err

    # Quorums it does not meet: another key under the witness's name; both of two witnesses.
    other = cosigner_vkey(NAME, Signer(Ed25519PrivateKey.generate()).public_key)
    another = cosigner_vkey("witness.other.test/w", Signer(Ed25519PrivateKey.generate()).public_key)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(f"witness w {other}\nquorum w\n")
    both = tmp_path / "both.txt"
    both.write_text(
        f"witness p {cosigned.witness_vkey}\nwitness o {another}\ngroup both all p o\nquorum both\n"
    )
    for strict, names in ((wrong, "no witness of the policy"), (both, NAME)):
        code, out, err = verify(bundle, "--key", cosigned.fingerprint, "--policy", str(strict))
        assert code == 4, out + err
        assert "FAIL  witnesses (cosignatures of the witness policy's quorum): " in out
        assert f"the checkpoint is cosigned by {names}: not the policy's quorum" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, _err = verify(bundle, "--policy", str(both), "--json")
    shown = json.loads(out)
    assert code == 4 and (shown["status"], shown["first_failure"]) == ("failed", "witnesses")
    assert [w["name"] for w in shown["witnesses"]] == [NAME] and "entries" not in shown
    assert all(c["ok"] for c in shown["checks"] if c["id"] != "witnesses")

    # One bit of the cosignature flipped: not counted with the policy; listed without it.
    forged = tmp_path / "forged"
    shutil.copytree(bundle, forged)
    cosignature_flipped(forged)
    code, out, err = verify(forged, "--policy", str(policy))
    assert code == 4, out + err
    assert "the checkpoint is cosigned by no witness of the policy: not the policy's quorum" in err
    code, out, err = verify(forged)
    assert code == 0, out + err
    assert f"carries cosignatures by {NAME}: not checked" in out

    # The option's usage, and a policy scelle cannot read: as `scelle verify --policy`.
    alone = run_cli(["ledger", "verify", "--policy", str(policy)])
    assert alone.exit_code == 2 and "--policy only with --bundle" in alone.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("witness w not-a-key\nquorum w\n")
    assert verify(bundle, "--policy", str(bad))[0] == 3
    assert verify(bundle, "--policy", str(tmp_path / "missing.txt"))[0] == 6


@pytest.mark.backends("sqlite")
def test_a_bundle_without_cosignatures_is_as_before(site_env: SiteEnv, tmp_path: Path) -> None:
    """A policy whose witness was never reached: the checkpoint as the site signed it,
    README.txt without the witnesses' step; the policy's check says no witness vouches."""
    policy = tmp_path / "witnesses.txt"
    key = Signer(Ed25519PrivateKey.generate()).public_key
    policy.write_text(f"witness w {cosigner_vkey(NAME, key)} http://127.0.0.1:9\nquorum w\n")
    env = {**site_env.env, "SCELLE_WITNESS_POLICY": str(policy)}
    signed = run_cli(["ledger", "checkpoint"], env=env)
    assert signed.exit_code == 0 and "NOT met" in signed.stderr, signed.stderr
    bundle = tmp_path / "bundle"
    auditor = {**site_env.env_as(AUDITOR), "SCELLE_WITNESS_POLICY": str(policy)}
    made = run_cli(["ledger", "export", "--out", str(bundle)], env=auditor)
    assert made.exit_code == 0, made.stderr
    assert (bundle / "checkpoint.txt").read_text() == signed.stdout
    assert signed.stdout.partition("\n\n")[2].count("\n") == 1
    assert "witness" not in (bundle / "README.txt").read_text()
    code, out, err = verify(bundle)
    assert code == 0 and "cosignatures" not in out, out + err
    code, out, err = verify(bundle, "--policy", str(policy))
    assert code == 4
    assert "the checkpoint is cosigned by no witness of the policy" in err
