"""`scelle demo`: a whole site built from nothing, so a newcomer sees every part work.

It never touches the operator's own site: the demo's settings ignore `SCELLE_*`
variables (a demo must not write into a production database) and live in a directory
of its own. Later issues grow it into a full requisition on generated footage.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from custody import checkpoints
from custody.config import load_settings
from custody.errors import InvalidState
from custody.files import write_atomic
from custody.ledger import Record
from custody.proofs import ConsistencyProof, InclusionProof
from custody.site import init_site
from custody.verify import LedgerReport, verify_ledger

PASSPHRASE_FILE = "demo-passphrase"  # noqa: S105 - a file name; the demo's own throwaway key


@dataclass(frozen=True)
class DemoResult:
    home: Path
    passphrase_file: Path
    checkpoint: str
    inclusion: InclusionProof
    consistency: ConsistencyProof
    report: LedgerReport


def _demo_home(site: Path | None) -> Path:
    if site is None:
        return Path(tempfile.mkdtemp(prefix="scelle-demo-"))
    if site.exists() and (not site.is_dir() or any(site.iterdir())):
        raise InvalidState(f"{site} exists and is not an empty directory")
    site.mkdir(parents=True, exist_ok=True)
    return site


def run_demo(site: Path | None, say: Callable[[str], None]) -> DemoResult:
    """Create a demo site and exercise the custody core; `say` narrates each step."""
    home = _demo_home(site).absolute()
    settings = load_settings({"home": str(home)}, environ={"SCELLE_AGENT": "demo-operator"})
    passphrase = secrets.token_urlsafe(24).encode()
    pass_file = home / PASSPHRASE_FILE
    write_atomic(pass_file, passphrase + b"\n", mode=0o600)

    site_obj, first = init_site(settings, passphrase)
    try:
        say(f"site created in {home}")
        say(f"  signing key {settings.key_file} (PKCS#12, 600,000 PBKDF2 rounds, mode 0600)")
        say(f"  ledger entry 0 records the key; checkpoint of size {first.size} signed")
        ledger = site_obj.ledger
        notes = [
            Record("ledger.note", "CSV", "shift handover: 2 operators on duty"),
            Record(
                "ledger.note",
                "requisition by phone",
                "officer announced a requisition for cameras C-012 and C-044",
                procedure="PV 2026/004217",
            ),
            Record("ledger.note", "seal bag S-88121", "new stock of seal bags received"),
        ]
        for record in notes:
            entry = ledger.append(settings.agent, record)
            say(f"  entry {entry.seq}: {record.action} '{record.subject}'")
        signer = site_obj.signer(passphrase)
        _cp, note = checkpoints.sign(site_obj.db, settings.checkpoint_file, signer)
        size = ledger.size()
        inclusion = ledger.inclusion(2)
        inclusion.verify()
        consistency = ledger.consistency(first.size, size)
        consistency.verify()
        say(f"inclusion proof of entry 2 in {size} entries verified")
        say(f"consistency proof from size {first.size} to {size} verified")
        report = verify_ledger(site_obj.db, settings)
        say(f"ledger verified: {report.entries} entries, {report.checkpoints} checkpoints")
    finally:
        site_obj.close()
    return DemoResult(home, pass_file, note, inclusion, consistency, report)
