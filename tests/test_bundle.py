"""`scelle ledger export` bundles, checked offline by `scelle ledger verify --bundle`, by
openssl and sha256sum, and by an independent recomputation; and every forgery caught."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody import merkle
from custody.canonical import canonical_bytes, parse_canonical
from custody.entry import Record
from custody.keys import Signer, public_pem
from custody.note import Checkpoint, sign_checkpoint
from tests.conftest import AUDITOR, OPERATOR, SiteEnv, require_tool, run_cli
from tests.modules_loaded import loaded_by


@pytest.fixture
def bundle(site_env: SiteEnv, tmp_path: Path) -> tuple[SiteEnv, Path, str]:
    """Entries 3..14 of a 30-entry ledger, against its latest checkpoint."""
    ledger = site_env.site.ledger
    while ledger.size() < 30:
        ledger.append(OPERATOR, Record("ledger.note", f"n{ledger.size()}", "r"))
    assert run_cli(["ledger", "checkpoint"], env=site_env.env).exit_code == 0
    out = tmp_path / "bundle"
    made = run_cli(
        ["ledger", "export", "--from", "3", "--to", "14", "--out", str(out)],
        env=site_env.env_as(AUDITOR),
    )
    assert made.exit_code == 0, made.stderr
    assert "entries 3 to 14, proved against the signed checkpoint of 30 entries" in made.stdout
    fingerprint = run_cli(["keys", "show", "--fingerprint"], env=site_env.env).stdout.split()[1]
    return site_env, out, fingerprint


def verify(path: Path, key: str | None) -> tuple[int, str, str]:
    args = ["ledger", "verify", "--bundle", str(path)] + (["--key", key] if key else [])
    result = run_cli(args)
    return result.exit_code, result.stdout, result.stderr


def test_scelle_verifies_a_bundle_offline(bundle: tuple[SiteEnv, Path, str]) -> None:
    env, path, fingerprint = bundle
    code, out, err = verify(path, fingerprint)
    assert code == 0, out + err
    assert "VERIFIED against the expected key: 12 ledger entries in the signed tree" in out
    code, out, err = verify(path, None)
    assert code == 0 and "WARNING: signed by" in err
    entries = (path / "entries.jsonl").read_bytes().split(b"\n")[:-1]
    assert entries == [body for _, body in env.site.ledger.entries(3, 15)]
    assert env.site.ledger.entries  # the export itself was recorded
    last = env.site.ledger.entry(env.site.ledger.size() - 1)
    assert b'"action":"ledger.export"' in last and f'"actor":"{AUDITOR}"'.encode() in last


def test_bundle_verify_loads_no_database_layer(
    bundle: tuple[SiteEnv, Path, str], tmp_path: Path
) -> None:
    """An auditor's `ledger verify --bundle` runs without the site, and must not import
    the database layer; the site's own `ledger verify` does (the probe can see it)."""
    env, path, fingerprint = bundle
    args = ["ledger", "verify", "--bundle", str(path), "--key", fingerprint]
    code, loaded = loaded_by(args, tmp_path / "bundle.json")
    assert code == 0 and loaded == []
    code, loaded = loaded_by(["ledger", "verify"], tmp_path / "site.json", env.env)
    assert code == 0 and {"custody.db", "custody.ledger"} <= set(loaded)


def test_stock_tools_and_a_recomputation_verify_a_bundle(bundle: tuple[SiteEnv, Path, str]) -> None:
    _env, path, _ = bundle
    openssl = require_tool("openssl")
    checked = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "key.pub.pem",
            "-rawin",
            "-in",
            "checkpoint.body",
            "-sigfile",
            "checkpoint.sig",
        ],
        cwd=path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    sums = subprocess.run(
        [require_tool("sha256sum"), "-c", "SHA256SUMS"], cwd=path, capture_output=True
    )
    assert sums.returncode == 0
    # By hand, as README.txt says, without scelle's merkle module: leaf and node hashes
    # with hashlib, the binary-counter merge, then the fold from the right.
    proof = parse_canonical((path / "proof.json").read_bytes())
    stack = [(None, base64.b64decode(h)) for h in proof["left"]]
    size = proof["first"]

    def push(width: int, h: bytes) -> None:
        nonlocal size
        index = size // width
        while index & 1:
            h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
            index >>= 1
        stack.append((None, h))
        size += width

    for line in (path / "entries.jsonl").read_bytes().split(b"\n")[:-1]:
        push(1, hashlib.sha256(b"\x00" + line).digest())
    for node in proof["right"]:
        push(1 << node["level"], base64.b64decode(node["hash"]))
    acc = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        acc = hashlib.sha256(b"\x01" + h + acc).digest()
    body = (path / "checkpoint.body").read_text().split("\n")
    assert size == int(body[1]) == 30
    assert base64.b64encode(acc).decode() == body[2]


def _resum(path: Path) -> None:
    """A forger who also rewrites SHA256SUMS."""
    names = sorted(p.name for p in path.iterdir() if p.name != "SHA256SUMS")
    (path / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256((path / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    )


def entry_edited(path: Path) -> None:
    lines = (path / "entries.jsonl").read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b'"r"', b'"x"')
    (path / "entries.jsonl").write_bytes(b"\n".join(lines))
    _resum(path)


def entry_removed(path: Path) -> None:
    lines = (path / "entries.jsonl").read_bytes().split(b"\n")
    (path / "entries.jsonl").write_bytes(b"\n".join(lines[:4] + lines[5:]))
    _resum(path)


def entries_swapped(path: Path) -> None:
    lines = (path / "entries.jsonl").read_bytes().split(b"\n")
    lines[4], lines[5] = lines[5], lines[4]
    (path / "entries.jsonl").write_bytes(b"\n".join(lines))
    _resum(path)


def proof_hash_flipped(path: Path) -> None:
    proof = parse_canonical((path / "proof.json").read_bytes())
    raw = bytearray(base64.b64decode(proof["left"][0]))
    raw[0] ^= 1
    proof["left"][0] = base64.b64encode(bytes(raw)).decode()
    (path / "proof.json").write_bytes(canonical_bytes(proof))
    _resum(path)


def file_tampered_without_resum(path: Path) -> None:
    with (path / "README.txt").open("a") as handle:
        handle.write("trust me\n")


def proof_reformatted(path: Path) -> None:
    """Same JSON, other bytes: not the bytes the bundle's SHA256SUMS and scelle wrote."""
    import json

    proof = json.loads((path / "proof.json").read_bytes())
    (path / "proof.json").write_text(json.dumps(proof, indent=2))
    _resum(path)


def file_added(path: Path) -> None:
    (path / "extra.txt").write_text("x")


def resigned_with_another_key(path: Path) -> None:
    """Everything rebuilt and re-signed consistently, by a key that is not the CSV's."""
    forger = Signer(Ed25519PrivateKey.generate())
    proof = parse_canonical((path / "proof.json").read_bytes())
    lines = (path / "entries.jsonl").read_bytes().split(b"\n")[:-1]
    lines[2] = lines[2].replace(b'"r"', b'"forged"')
    (path / "entries.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))
    root = merkle.range_root(
        proof["first"],
        [base64.b64decode(h) for h in proof["left"]],
        [merkle.leaf_hash(x) for x in lines],
        [base64.b64decode(n["hash"]) for n in proof["right"]],
        proof["last"] + 1,
        proof["tree_size"],
    )
    proof["root"] = base64.b64encode(root).decode()
    note = sign_checkpoint(
        Checkpoint(proof["origin"], proof["tree_size"], root), proof["key_name"], forger
    )
    (path / "proof.json").write_bytes(canonical_bytes(proof))
    (path / "checkpoint.txt").write_text(note)
    body, _, sig_line = note.partition("\n\n")
    (path / "checkpoint.body").write_text(body + "\n")
    (path / "checkpoint.sig").write_bytes(base64.b64decode(sig_line.split()[-1])[4:])
    (path / "key.pub.pem").write_text(public_pem(forger.public_key))
    _resum(path)


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "entry_edited": (entry_edited, "the entries do not rebuild the signed root"),
    "entry_removed": (entry_removed, "entries.jsonl holds 11 entries, not 12"),
    "entries_swapped": (entries_swapped, "line 5 is entry 8, not 7"),
    "proof_hash_flipped": (proof_hash_flipped, "the entries do not rebuild the signed root"),
    "file_tampered_without_resum": (file_tampered_without_resum, "README.txt does not match"),
    "file_added": (file_added, "file(s) added or missing: extra.txt"),
    "proof_reformatted": (proof_reformatted, "proof.json is not canonical JSON"),
    "resigned_with_another_key": (resigned_with_another_key, "signed by SHA256:"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forged_bundles_fail(bundle: tuple[SiteEnv, Path, str], tmp_path: Path, case: str) -> None:
    _env, original, fingerprint = bundle
    path = tmp_path / case
    shutil.copytree(original, path)
    tamper, message = CASES[case]
    tamper(path)
    code, out, err = verify(path, fingerprint)
    assert code == 4, (case, out, err)
    assert message in err, (case, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_export_refuses_what_no_checkpoint_covers(
    bundle: tuple[SiteEnv, Path, str], tmp_path: Path
) -> None:
    env, path, _ = bundle
    auditor = env.env_as(AUDITOR)
    beyond = run_cli(
        ["ledger", "export", "--from", "0", "--to", "40", "--out", str(tmp_path / "b")], env=auditor
    )
    assert beyond.exit_code == 5
    assert "entries up to 40 are not yet covered by a signed checkpoint" in beyond.stderr
    assert not (tmp_path / "b").exists()
    exists = run_cli(["ledger", "export", "--out", str(path)], env=auditor)
    assert exists.exit_code == 5 and "already exists" in exists.stderr
    by_operator = run_cli(["ledger", "export", "--out", str(tmp_path / "c")], env=env.env)
    assert by_operator.exit_code == 5
    assert "may not query or export the ledger" in by_operator.stderr
