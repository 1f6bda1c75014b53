"""RFC 3161 timestamps on the export manifest, from a local TSA (`openssl ts -reply`
behind a small HTTP server on 127.0.0.1, tests/tsa.py): checked by `scelle verify` and by
`openssl ts -verify`; a token for another hash, or from another TSA's CA, fails; no TSA
configured, or none reachable, and the export says so."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from custody.errors import IntegrityError
from custody.timestamps import load_ca, request, verify
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, require_tool, run_cli
from tests.test_purge import Footage, store
from tests.test_requisitions import REGISTER, filmed
from tests.tsa import local_tsa, make_certificates

__all__ = ["filmed", "store"]


def extracted(env: SiteEnv, out: Path, extra: dict[str, str]) -> Path:
    registered = run_cli(REGISTER, env={**env.env, **extra})
    assert registered.exit_code == 0, registered.stderr
    rid = registered.stdout.split()[1]
    assert run_cli(["requisition", "approve", rid], env=env.env_as(SUPERVISOR)).exit_code == 0
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env={**env.env, **extra})
    assert done.exit_code == 0, done.stderr
    return out / rid


def openssl_ts(export: Path, ca: Path) -> int:
    return subprocess.run(
        [require_tool("openssl"), "ts", "-verify", "-data", "manifest.json",
         "-in", "manifest.json.tsr", "-CAfile", str(ca)],
        cwd=export, capture_output=True,
    ).returncode  # fmt: skip


def test_a_token_verifies_for_its_data_and_its_ca_only(tmp_path: Path) -> None:
    with local_tsa(tmp_path / "tsa") as tsa:
        ca = load_ca(tsa.ca_pem.read_bytes())
        stamp = request(tsa.url, b"the manifest", ca)
        assert verify(stamp.token, b"the manifest", ca).time == stamp.time
        with pytest.raises(IntegrityError, match="does not verify"):
            verify(stamp.token, b"another manifest", ca)
        other, _cert, _key = make_certificates(tmp_path / "other", "Other")
        with pytest.raises(IntegrityError, match="does not verify"):
            verify(stamp.token, b"the manifest", load_ca(other.read_bytes()))


@pytest.mark.backends("sqlite")
def test_an_export_is_timestamped_and_checked_by_scelle_and_openssl(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    with local_tsa(tmp_path / "tsa") as tsa:
        tsa_env = {"SCELLE_TIMESTAMP_URL": tsa.url, "SCELLE_TIMESTAMP_CA": str(tsa.ca_pem)}
        export = extracted(filmed, tmp_path / "out", tsa_env)
        forged = request(tsa.url, b"another manifest", load_ca(tsa.ca_pem.read_bytes()))
    assert (export / "manifest.json.tsr").is_file() and (export / "keys" / "tsa-ca.pem").is_file()
    checked = run_cli(["verify", str(export), "--tsa-ca", str(tsa.ca_pem)], env=filmed.env)
    assert checked.exit_code == 0, checked.stdout
    assert f"timestamped by {tsa.url}: the manifest existed on 20" in checked.stdout
    assert openssl_ts(export, tsa.ca_pem) == 0
    own = run_cli(["verify", str(export)], env=filmed.env)  # the export's own CA copy
    assert own.exit_code == 0
    assert "give --tsa-ca with the authority's own to make it independent" in own.stdout
    text = (export / "VERIFY.txt").read_text()
    assert "openssl ts -verify -data manifest.json -in manifest.json.tsr" in text
    # the step for after the TSA's certificate expires, run as VERIFY.txt writes it
    attime = text[text.index("openssl ts -verify -attime") :].split("\n")[:2]
    command = " ".join(attime).replace("\\", " ")
    command = command.replace("keys/tsa-ca.pem", str(tsa.ca_pem))
    assert subprocess.run(command, shell=True, cwd=export, capture_output=True).returncode == 0

    other, _cert, _key = make_certificates(tmp_path / "other", "Other")
    refused = run_cli(["verify", str(export), "--tsa-ca", str(other), "--json"], env=filmed.env)
    assert refused.exit_code == 4
    assert json.loads(refused.stdout)["first_failure"] == "timestamp"
    assert openssl_ts(export, other) != 0

    (export / "manifest.json.tsr").write_bytes(forged.token)  # a token for another hash
    swapped = run_cli(["verify", str(export), "--json"], env=filmed.env)
    assert swapped.exit_code == 4
    shown = json.loads(swapped.stdout)
    assert shown["first_failure"] == "timestamp"  # not the token its ledger entry records
    assert openssl_ts(export, tsa.ca_pem) != 0


@pytest.mark.backends("sqlite")
def test_no_tsa_or_an_unreachable_one_is_stated(filmed: SiteEnv, tmp_path: Path) -> None:
    plain = extracted(filmed, tmp_path / "plain", {})
    assert not (plain / "manifest.json.tsr").exists()
    said = run_cli(["verify", str(plain)], env=filmed.env)
    assert said.exit_code == 0
    assert "no timestamp: no TSA was configured when it was sealed" in said.stdout
    assert (
        "Aucun : le CSV n'avait pas d'autorité d'horodatage" in (plain / "VERIFY.txt").read_text()
    )
    assert "None: the CSV had no witnesses configured." in " ".join(
        (plain / "VERIFY.txt").read_text().split()
    )

    ca, _cert, _key = make_certificates(tmp_path / "ca")
    down = {"SCELLE_TIMESTAMP_URL": "http://127.0.0.1:9/", "SCELLE_TIMESTAMP_CA": str(ca)}
    registered = run_cli([*REGISTER, "--force"], env={**filmed.env, **down})
    rid = registered.stdout.split()[1]
    assert run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR)).exit_code == 0
    out = tmp_path / "down"
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env={**filmed.env, **down})
    assert done.exit_code == 0, done.stderr  # the TSA's outage does not stop an export
    stated = run_cli(["verify", str(out / rid)], env=filmed.env)
    assert stated.exit_code == 0
    assert "no timestamp: the TSA http://127.0.0.1:9/ could not stamp it when it was sealed" in (
        stated.stdout
    )


def test_a_destruction_certificate_is_timestamped(store: Footage, tmp_path: Path) -> None:
    """The nightly purge's certificate carries the TSA's token on certificate.json:
    `scelle verify` and `openssl ts -verify` check it; another CA's, or a token for other
    bytes, fails."""
    with local_tsa(tmp_path / "tsa") as tsa:
        tsa_env = {"SCELLE_TIMESTAMP_URL": tsa.url, "SCELLE_TIMESTAMP_CA": str(tsa.ca_pem)}
        purged = run_cli(["purge", "--json"], env={**store.env.env_as(ADMIN), **tsa_env})
        assert purged.exit_code == 0, purged.stderr
        forged = request(tsa.url, b"another certificate", load_ca(tsa.ca_pem.read_bytes()))
    [made] = json.loads(purged.stdout)["certificates"]
    folder = Path(made)
    assert (folder / "certificate.json.tsr").is_file() and (folder / "keys/tsa-ca.pem").is_file()
    checked = run_cli(["verify", made, "--tsa-ca", str(tsa.ca_pem)], env=store.env.env)
    assert checked.exit_code == 0, checked.stdout
    assert "timestamped: the certificate existed on 20" in checked.stdout

    def openssl(ca: Path) -> int:
        return subprocess.run(
            [require_tool("openssl"), "ts", "-verify", "-data", "certificate.json",
             "-in", "certificate.json.tsr", "-CAfile", str(ca)],
            cwd=folder, capture_output=True,
        ).returncode  # fmt: skip

    assert openssl(tsa.ca_pem) == 0
    other, _cert, _key = make_certificates(tmp_path / "other", "Other")
    refused = run_cli(["verify", made, "--tsa-ca", str(other), "--json"], env=store.env.env)
    assert refused.exit_code == 4 and json.loads(refused.stdout)["first_failure"] == "timestamp"
    assert openssl(other) != 0
    (folder / "certificate.json.tsr").write_bytes(forged.token)
    swapped = run_cli(["verify", made, "--json"], env=store.env.env)
    assert swapped.exit_code == 4 and json.loads(swapped.stdout)["first_failure"] == "timestamp"
    (folder / "certificate.json.tsr").unlink()  # half of the pair gone: the inventory says so
    halved = run_cli(["verify", made, "--json"], env=store.env.env)
    assert halved.exit_code == 4 and json.loads(halved.stdout)["first_failure"] == "inventory"


@pytest.mark.backends("sqlite")
def test_checkpoints_are_timestamped_and_ledger_verify_says_when(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    """`ledger checkpoint` has the TSA stamp the checkpoint's body: the token is kept,
    `openssl ts -verify` checks it against the body, and `ledger verify` says the log's
    first N entries existed by then; a planted token for other bytes counts for nothing."""
    with local_tsa(tmp_path / "tsa") as tsa:
        tsa_env = {"SCELLE_TIMESTAMP_URL": tsa.url, "SCELLE_TIMESTAMP_CA": str(tsa.ca_pem)}
        env = {**site_env.env_as(ADMIN), **tsa_env}
        assert run_cli(["ledger", "note", "n", "--reason", "r"], env=env).exit_code == 0
        signed = run_cli(["ledger", "checkpoint"], env=env)
        assert signed.exit_code == 0, signed.stderr
        forged = request(tsa.url, b"another body", load_ca(tsa.ca_pem.read_bytes()))
    size = int(signed.stdout.splitlines()[1])
    assert f"checkpoint of {size} entries timestamped by {tsa.url}: 20" in signed.stderr
    body = tmp_path / "checkpoint.body"
    body.write_text(signed.stdout.partition("\n\n")[0] + "\n")
    with site_env.site.db.read() as cur:
        [(token,)] = cur.execute(
            "SELECT token FROM ledger_timestamp WHERE tree_size = ?", [size]
        ).fetchall()
    (tmp_path / "checkpoint.tsr").write_bytes(bytes(token))
    assert subprocess.run(
        [require_tool("openssl"), "ts", "-verify", "-data", str(body),
         "-in", str(tmp_path / "checkpoint.tsr"), "-CAfile", str(tsa.ca_pem)],
        capture_output=True,
    ).returncode == 0  # fmt: skip
    with site_env.site.db.write() as cur:  # an insider plants a token for a longer log
        cur.execute(
            "INSERT INTO ledger_timestamp (tree_size, root, tsa, token, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [size + 5, b"\0" * 32, tsa.url, forged.token, "2026-11-30T00:00:00.000000Z"],
        )
    verified = run_cli(["ledger", "verify"], env={**site_env.env_as(AUDITOR), **tsa_env})
    assert verified.exit_code == 0, verified.stderr
    assert f"the log's first {size} entries existed by 20" in verified.stdout
    assert "1 later checkpoint timestamp does not hold" in verified.stdout
    # A genuine token, but over a fork: the same size with another root. Its token holds;
    # its root is not the log's, so it counts for nothing either.
    origin = signed.stdout.splitlines()[0]
    fork_root = b"\x01" * 32
    fork_body = f"{origin}\n{size}\n{base64.b64encode(fork_root).decode()}\n".encode()
    with local_tsa(tmp_path / "tsa2") as other_tsa:
        fork = request(other_tsa.url, fork_body, load_ca(other_tsa.ca_pem.read_bytes()))
    with site_env.site.db.write() as cur:
        cur.execute(
            "INSERT INTO ledger_timestamp (tree_size, root, tsa, token, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [size, fork_root, tsa.url, fork.token, "2026-11-30T00:00:00.000000Z"],
        )
    forked_env = {**site_env.env_as(AUDITOR), "SCELLE_TIMESTAMP_CA": str(other_tsa.ca_pem)}
    forked_env["SCELLE_TIMESTAMP_URL"] = tsa.url
    forked = run_cli(["ledger", "verify"], env=forked_env)
    assert "no checkpoint timestamp holds for this log (token and root)" in forked.stdout
    assert "existed by" not in forked.stdout

    down = {"SCELLE_TIMESTAMP_URL": "http://127.0.0.1:9/", "SCELLE_TIMESTAMP_CA": str(tsa.ca_pem)}
    unstamped = run_cli(["ledger", "checkpoint"], env={**site_env.env_as(ADMIN), **down})
    assert unstamped.exit_code == 0  # the TSA's outage stops nothing, and is said
    assert "is not timestamped: the TSA http://127.0.0.1:9/ could not stamp it" in (
        unstamped.stderr
    )
