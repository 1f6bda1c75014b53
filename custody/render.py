"""What the custody commands print, as text: tables, reports, JSON and CSV.

Each function returns the lines (or the whole text) and prints nothing, so that tests
read exactly what a command shows without running it, and cli.py only prints. Nothing
here loads the database layer at run time (`scelle verify` and `ledger verify --bundle`
print check reports, and must not pay for it): the types it reads are imported for the
type checker only.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from custody.keys import der_sha256, public_openssh, public_pem, ssh_fingerprint
from custody.note import verifier_key
from custody.timewindow import local_text, to_us

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from custody.audit import AuditRow
    from custody.bundle import Bundle
    from custody.checkpoints import Identity
    from custody.checks import Report
    from custody.config import Settings
    from custody.dbcopy import Copied
    from custody.verify import LedgerReport

KeyForm = Literal["pem", "ssh", "vkey", "fingerprint"]


def json_text(value: Any) -> str:
    """Every command's `--json`: indented, non-ASCII text kept as typed."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def site_created_lines(
    settings: Settings, database: str, public: Ed25519PublicKey, checkpoint_size: int, admin: str
) -> list[str]:
    """`scelle init`: where everything is, the key's fingerprints, the first administrator."""
    return [
        f"site initialised in {settings.home}",
        f"database      {database}",
        f"signing key   {settings.key_file}",
        f"verifier key  {verifier_key(settings.site_name, public)}",
        f"ssh           {ssh_fingerprint(public)}",
        f"der sha256    {der_sha256(public)}",
        f"checkpoint    size {checkpoint_size}, written to {settings.checkpoint_file}",
        f"administrator {admin} (designate the other agents with 'scelle agent add')",
    ]


def config_lines(rows: Sequence[tuple[str, str, str]]) -> list[str]:
    """`scelle config show`: each setting, its value and the source that won."""
    width = max(len(name) for name, _, _ in rows)
    return [f"{name:<{width}}  {value}  ({src})" for name, value, src in rows]


def config_json(rows: Iterable[tuple[str, str, str]]) -> str:
    return json_text({name: {"value": value, "source": src} for name, value, src in rows})


def key_lines(identity: Identity, public_key_file: Path, form: KeyForm | None) -> list[str]:
    """`scelle keys show`: the site key in one form people compare, or all of them."""
    key, name = identity.public_key, identity.key_name
    if form == "pem":
        return public_pem(key).splitlines()
    if form == "ssh":
        return [public_openssh(key, name)]
    if form == "vkey":
        return [verifier_key(name, key)]
    if form == "fingerprint":  # as ssh-keygen -lf and `openssl ... | sha256sum` print them
        return [f"256 {ssh_fingerprint(key)} {name} (ED25519)", f"{der_sha256(key)}  -"]
    return [
        f"name          {name}",
        f"origin        {identity.origin}",
        f"verifier key  {verifier_key(name, key)}",
        f"ssh           {ssh_fingerprint(key)}",
        f"der sha256    {der_sha256(key)}",
        f"public key    {public_key_file}",
    ]


def entry_lines(entries: Sequence[Mapping[str, Any]], detailed: bool) -> list[str]:
    """`scelle ledger show`: one line per decoded entry; `detailed` adds its reason and
    data (entry N shown alone)."""
    out = []
    for e in entries:
        subject = e["subject"] if isinstance(e["subject"], str) else json.dumps(e["subject"])
        proc = f" [{e['procedure']}]" if e.get("procedure") else ""
        out.append(
            f"{e['seq']:>6}  {e['time']}  {e['actor']:<14} {e['action']:<22} {subject}{proc}"
        )
        if detailed:
            out.append(f"        reason: {e['reason']}")
            if e.get("data"):
                out.append("        data: " + json.dumps(e["data"], ensure_ascii=False))
    return out


def ledger_report_lines(report: LedgerReport, audit_index: bool) -> list[str]:
    """`scelle ledger verify`: the root, the checkpoints, warnings, what is not yet signed."""
    files = f" ({report.auditor_files} auditor files)" if report.auditor_files else ""
    out = [
        f"ledger OK: {report.entries} entries, root {_b64(report.root)}",
        f"{report.checkpoints} signed checkpoints consistent with the log{files}",
    ]
    if audit_index:
        out.append(f"audit index OK: one row per entry, as the {report.entries} entries say")
    out += [f"warning: {warning}" for warning in report.warnings]
    unsigned = report.entries - report.latest_signed
    if unsigned:
        out.append(f"note: the latest {unsigned} entries are not yet covered by a checkpoint")
    return out


def check_lines(report: Report, what: str) -> list[str]:
    """Every check of an offline verification (`what`: export, bundle), OK or FAIL."""
    out = [f"{what} {report.directory}"]
    for name, why in report.checks:
        out.append(f"  {'OK  ' if why is None else 'FAIL'}  {name}" + (f": {why}" if why else ""))
    return out


def unpinned_warning(report: Report, what: str) -> str | None:
    """The warning (for stderr) when the signing key was taken from what it signed."""
    if not report.key or report.key_pinned:
        return None
    papers = "the signed cover sheet" if what == "export" else "the CSV signed papers"
    return (
        f"WARNING: signed by {report.fingerprint}; a key shipped inside the {what} proves "
        f"nothing until this fingerprint is compared with the one printed on {papers} "
        "(use --key)"
    )


def bundle_verified(report: Report, count: int) -> str:
    pinned = " against the expected key" if report.key_pinned else ""
    return f"VERIFIED{pinned}: {count} ledger entries in the signed tree"


def bundle_lines(made: Bundle) -> list[str]:
    """`scelle ledger export`: what the bundle holds, and how to check it."""
    return [
        f"bundle {made.path}: entries {made.first} to {made.last}, "
        f"proved against the signed checkpoint of {made.tree_size} entries",
        f"check it with: scelle ledger verify --bundle {made.path} --key <fingerprint>",
    ]


def copied_lines(copied: Copied, target: str, home: Path) -> list[str]:
    """`scelle db copy`: rows, the ledger both sides agree on, what to do next."""
    return [
        f"copied {sum(copied.rows.values())} rows; ledger verified on both sides: "
        f"{copied.entries} entries,",
        f"root {_b64(copied.root)}",
        f"now set database_url = {target!r} in {home / 'scelle.toml'}",
    ]


AUDIT_COLUMNS = ["seq", "time", "agent", "action", "cameras", "recordings"]
AUDIT_CSV_COLUMNS = [*AUDIT_COLUMNS, "requisition", "procedure", "unit", "reason"]


def _local(utc: str, zone: str) -> str:
    return local_text(to_us(datetime.fromisoformat(utc)), zone)


def audit_json(rows: Sequence[AuditRow]) -> str:
    return json_text([r.as_json() for r in rows])


def audit_csv(rows: Sequence[AuditRow], zone: str) -> str:
    """`scelle audit --csv`: one row per entry, times local with their offset."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(AUDIT_CSV_COLUMNS)
    for row in rows:
        a = row.as_json()
        a["time"] = _local(a["time"], zone)
        a["cameras"] = " ".join(a["cameras"])
        a["recordings"] = "; ".join(a["recordings"])
        out.writerow([a[k] if a[k] is not None else "" for k in AUDIT_CSV_COLUMNS])
    return buffer.getvalue()


def audit_lines(rows: Sequence[AuditRow], zone: str) -> list[str]:
    """`scelle audit`: a table, local time to the second, each recording under its entry."""
    out = [
        f"{'seq':>7}  {'time (' + zone + ')':<19}  {'agent':<16} {'action':<24} "
        f"{'camera':<12} {'requisition':<11} {'procedure':<16} {'unit':<20} reason"
    ]
    for row in rows:
        a = row.as_json()
        when = _local(a["time"], zone)[:19].replace("T", " ")
        out.append(
            f"{a['seq']:>7}  {when:<19}  {a['agent']:<16} {a['action']:<24} "
            f"{','.join(a['cameras']) or '-':<12} {a['requisition'] or '-':<11} "
            f"{a['procedure'] or '-':<16} {a['unit'] or '-':<20} {a['reason']}"
        )
        out += [f"{'':>9}{recording}" for recording in a["recordings"]]
    return out
