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
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from custody.access import (
    first_name_text,
    operation_text,
    role_text,
    surname_text,
)
from custody.i18n import N_, _, current, ngettext
from custody.timewindow import local_text, people_text, to_us

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from custody.audit import AuditRow
    from custody.bundle import Bundle
    from custody.checkpoint_stamps import StampedHead
    from custody.checkpoints import Identity
    from custody.checks import Report
    from custody.config import Settings
    from custody.cosigning import Witnessed
    from custody.coverage import Coverage
    from custody.dbcopy import Copied
    from custody.policy import Policy
    from custody.timestamps import Stamped
    from custody.verify import LedgerReport

KeyForm = Literal["pem", "ssh", "vkey", "fingerprint"]


def json_text(value: Any) -> str:
    """Every command's `--json`: indented, non-ASCII text kept as typed."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _aligned(rows: Sequence[tuple[str, object]], gap: int = 1) -> list[str]:
    """Label and value lines, the values in one column however long the labels are in the
    user's language (`gap`: spaces after the longest label)."""
    width = max(len(label) for label, _value in rows) + gap
    return [f"{label:<{width}}{value}" for label, value in rows]


def site_created_lines(
    settings: Settings, database: str, public: Ed25519PublicKey, checkpoint_size: int, admin: str
) -> list[str]:
    """`scelle init`: where everything is, the key's fingerprints, the first administrator."""
    from custody.keys import der_sha256, ssh_fingerprint
    from custody.note import verifier_key

    return [
        _("site initialised in {home}").format(home=settings.home),
        *_aligned(
            [
                (_("database"), database),
                (_("signing key"), settings.key_file),
                (_("verifier key"), verifier_key(settings.site_name, public)),
                ("ssh", ssh_fingerprint(public)),
                ("der sha256", der_sha256(public)),
                (
                    _("checkpoint"),
                    _("size {size}, written to {file}").format(
                        size=checkpoint_size, file=settings.checkpoint_file
                    ),
                ),
                (
                    _("administrator"),
                    _("{login} (designate the other agents with 'scelle agent add')").format(
                        login=admin
                    ),
                ),
            ]
        ),
    ]


def config_lines(rows: Sequence[tuple[str, str, str]]) -> list[str]:
    """`scelle config show`: each setting, its value and the source that won."""
    width = max(len(name) for name, _value, _src in rows)
    return [f"{name:<{width}}  {value}  ({source_text(src)})" for name, value, src in rows]


_SOURCES = (  # where a setting came from, as config.py records it (the JSON keeps it so)
    (re.compile(r"default"), N_("default")),
    (re.compile(r"locale"), N_("locale")),
    (re.compile(r"flag (?P<what>\S+)"), N_("flag {what}")),
    (re.compile(r"env (?P<what>\S+)"), N_("env {what}")),
    (re.compile(r"file (?P<what>.+)"), N_("file {what}")),
    (re.compile(r"ledger entry 0, set at init"), N_("ledger entry 0, set at init")),
    (
        re.compile(r"ledger entry 0, set at init; (?P<source>.+) says (?P<what>.+), ignored"),
        N_("ledger entry 0, set at init; {source} says {what}, ignored"),
    ),
)


def source_text(source: str) -> str:
    """A setting's source (`flag --home`, `env SCELLE_HOME`) in the user's language."""
    for pattern, template in _SOURCES:
        match = pattern.fullmatch(source)
        if match:
            parts = match.groupdict()
            if "source" in parts:
                parts["source"] = source_text(parts["source"])
            return _(template).format(**parts)
    return source


def config_json(rows: Iterable[tuple[str, str, str]]) -> str:
    return json_text({name: {"value": value, "source": src} for name, value, src in rows})


def key_lines(identity: Identity, public_key_file: Path, form: KeyForm | None) -> list[str]:
    """`scelle keys show`: the site key in one form people compare, or all of them."""
    from custody.keys import der_sha256, public_openssh, public_pem, ssh_fingerprint
    from custody.note import verifier_key

    key, name = identity.public_key, identity.key_name
    if form == "pem":
        return public_pem(key).splitlines()
    if form == "ssh":
        return [public_openssh(key, name)]
    if form == "vkey":
        return [verifier_key(name, key)]
    if form == "fingerprint":  # as ssh-keygen -lf and `openssl ... | sha256sum` print them
        return [f"256 {ssh_fingerprint(key)} {name} (ED25519)", f"{der_sha256(key)}  -"]
    return _aligned(
        [
            (_("name"), name),
            (_("origin"), identity.origin),
            (_("verifier key"), verifier_key(name, key)),
            ("ssh", ssh_fingerprint(key)),
            ("der sha256", der_sha256(key)),
            (_("public key"), public_key_file),
        ],
        gap=2,
    )


def entry_lines(entries: Sequence[Mapping[str, Any]], detailed: bool, zone: str) -> list[str]:
    """`scelle ledger show`: one line per decoded entry under headers, its time local with
    its offset (the entry itself holds UTC: `--json` shows it); `detailed` adds its reason
    and data (entry N shown alone)."""
    rows = []
    for e in entries:
        subject = e["subject"] if isinstance(e["subject"], str) else json.dumps(e["subject"])
        proc = f" [{e['procedure']}]" if e.get("procedure") else ""
        rows.append(
            (
                str(e["seq"]),
                people_text(e["time"], zone) or "",
                e["actor"],
                e["action"],
                subject + proc,
            )
        )
    headers = (
        _("entry"),
        _("time ({zone})").format(zone=zone),
        _("agent"),
        _("action"),
        _("subject"),
    )
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    out = [_row(headers, widths)]
    for e, row in zip(entries, rows, strict=True):
        out.append(_row(row, widths))
        if detailed:
            out.append("        " + _("reason: {reason}").format(reason=e["reason"]))
            if e.get("data"):
                data = json.dumps(e["data"], ensure_ascii=False)
                out.append("        " + _("data: {data}").format(data=data))
    return out


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """A table row: the first column right-aligned (numbers), the others left, the last free."""
    first, *middle, last = cells
    parts = [first.rjust(widths[0])] + [c.ljust(w) for c, w in zip(middle, widths[1:], strict=True)]
    return "  ".join([*parts, last]).rstrip()


def ledger_report_lines(report: LedgerReport, audit_index: bool) -> list[str]:
    """`scelle ledger verify`: the root, the checkpoints, warnings, what is not yet signed."""
    entries, checkpoints = report.entries, report.checkpoints
    if report.auditor_files:
        consistent = ngettext(
            "{checkpoints} signed checkpoints consistent with the log ({files} auditor files)",
            "{checkpoints} signed checkpoints consistent with the log ({files} auditor files)",
            checkpoints,
        ).format(checkpoints=checkpoints, files=report.auditor_files)
    else:
        consistent = ngettext(
            "{checkpoints} signed checkpoints consistent with the log",
            "{checkpoints} signed checkpoints consistent with the log",
            checkpoints,
        ).format(checkpoints=checkpoints)
    out = [
        ngettext(
            "ledger OK: {entries} entries, root {root}",
            "ledger OK: {entries} entries, root {root}",
            entries,
        ).format(entries=entries, root=_b64(report.root)),
        consistent,
    ]
    if audit_index:
        out.append(
            ngettext(
                "audit index OK: one row per entry, as the {entries} entries say",
                "audit index OK: one row per entry, as the {entries} entries say",
                entries,
            ).format(entries=entries)
        )
    out += [_("warning: {warning}").format(warning=warning) for warning in report.warnings]
    unsigned = report.entries - report.latest_signed
    if unsigned:
        out.append(
            ngettext(
                "note: the latest {unsigned} entries are not yet covered by a checkpoint",
                "note: the latest {unsigned} entries are not yet covered by a checkpoint",
                unsigned,
            ).format(unsigned=unsigned)
        )
    return out


_CHECKED = {"export": N_("export {directory}"), "bundle": N_("bundle {directory}")}


def check_lines(report: Report, what: str) -> list[str]:
    """Every check of an offline verification (`what`: export, bundle), OK or FAIL."""
    out = [_(_CHECKED[what]).format(directory=report.directory)]
    passed, failed = _("OK"), _("FAIL")
    width = max(len(passed), len(failed))
    for check in report.checks:
        status = passed if check.failure is None else failed
        said = (
            _("{check}: {failure}").format(check=check.shown, failure=check.failure)
            if check.failure
            else check.shown
        )
        out.append(f"  {status:<{width}}  {said}")
    return out


def unpinned_warning(report: Report, what: str) -> str | None:
    """The warning (for stderr) when the signing key was taken from what it signed."""
    if not report.key or report.key_pinned:
        return None
    if what == "export":
        warning = _(
            "WARNING: signed by {fingerprint}; a key shipped inside the export proves nothing "
            "until this fingerprint is compared with the one printed on the signed cover sheet "
            "(use --key)"
        )
    else:
        warning = _(
            "WARNING: signed by {fingerprint}; a key shipped inside the bundle proves nothing "
            "until this fingerprint is compared with the one printed on the CSV signed papers "
            "(use --key)"
        )
    return warning.format(fingerprint=report.fingerprint)


def bundle_verified(report: Report, count: int) -> str:
    if report.key_pinned:
        verified = ngettext(
            "VERIFIED against the expected key: {count} ledger entries in the signed tree",
            "VERIFIED against the expected key: {count} ledger entries in the signed tree",
            count,
        )
    else:
        verified = ngettext(
            "VERIFIED: {count} ledger entries in the signed tree",
            "VERIFIED: {count} ledger entries in the signed tree",
            count,
        )
    return verified.format(count=count)


def bundle_lines(made: Bundle) -> list[str]:
    """`scelle ledger export`: what the bundle holds, and how to check it."""
    return [
        ngettext(
            "bundle {path}: entries {first} to {last}, proved against the signed checkpoint "
            "of {size} entries",
            "bundle {path}: entries {first} to {last}, proved against the signed checkpoint "
            "of {size} entries",
            made.tree_size,
        ).format(path=made.path, first=made.first, last=made.last, size=made.tree_size),
        _("check it with: scelle ledger verify --bundle {path} --key <fingerprint>").format(
            path=made.path
        ),
    ]


def copied_lines(copied: Copied, target: str, home: Path) -> list[str]:
    """`scelle db copy`: rows, the ledger both sides agree on, what to do next."""
    return [
        *_("copied {rows} rows; ledger verified on both sides: {entries} entries,\nroot {root}")
        .format(rows=sum(copied.rows.values()), entries=copied.entries, root=_b64(copied.root))
        .splitlines(),
        _("now set database_url = {url!r} in {file}").format(url=target, file=home / "scelle.toml"),
    ]


# One column per field of décret 2023-1102's access log (operation; the agent's surname,
# first name and role; date and time; reason; recipient; cameras and recordings), and
# what scelle adds (the entry, its login and action, the requisition, procedure and unit).
AUDIT_CSV_COLUMNS = [
    "seq",
    "operation",
    "surname",
    "first_name",
    "role",
    "agent",
    "date",
    "time",
    "reason",
    "recipient",
    "cameras",
    "recordings",
    "action",
    "requisition",
    "procedure",
    "unit",
]


def _local(utc: str, zone: str) -> str:
    return local_text(to_us(datetime.fromisoformat(utc)), zone)


def _date_and_time(utc: str, zone: str) -> tuple[str, str]:
    """`2026-11-24` and `14:05:03+01:00`: the local date, and the time to the second with
    the zone's offset then (the two 02:30s of an autumn night stay apart)."""
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    shown = moment.replace(microsecond=0).isoformat()
    return shown[:10], shown[11:]


def audit_json(rows: Sequence[AuditRow]) -> str:
    return json_text([r.as_json() for r in rows])


AUDIT_CSV_HEADERS = {
    "seq": N_("seq"),
    "operation": N_("operation"),
    "surname": N_("surname"),
    "first_name": N_("first name"),
    "role": N_("agent's role"),
    "agent": N_("login"),
    "date": N_("date"),
    "time": N_("time"),
    "reason": N_("reason"),
    "recipient": N_("recipient"),
    "cameras": N_("cameras"),
    "recordings": N_("recordings"),
    "action": N_("action"),
    "requisition": N_("requisition"),
    "procedure": N_("procedure"),
    "unit": N_("unit"),
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def audit_cells(row: AuditRow, zone: str) -> dict[str, str]:
    """One row of the access log, every décret field in the user's language: the
    operation and role named, the date and time local, the recordings' UTC times in
    `zone`; an agent nobody had designated is said to be unknown, never left blank."""
    a, log = row.as_json(), row.access
    who = log.designation
    day, time = _date_and_time(a["time"], zone)
    recordings = [r.text(zone) for r in log.recordings] or [log.summary or ""]
    cells = {
        "operation": operation_text(log.operation),
        "surname": surname_text(who, row.row.actor),
        "first_name": first_name_text(who),
        "role": role_text(who),
        "date": day,
        "time": time,
        "recipient": log.recipient.text() if log.recipient else "",
        "cameras": " ".join(log.cameras),
        "recordings": "; ".join(r for r in recordings if r),
    }
    return {
        k: cells[k] if k in cells else "" if a[k] is None else str(a[k]) for k in AUDIT_CSV_COLUMNS
    }


def audit_csv(rows: Sequence[AuditRow], zone: str, *, rfc4180: bool = False) -> str:
    """`scelle audit --csv`: the décret's access log, one row per entry (`audit_cells`).

    By default, for a spreadsheet opened by double-click: UTF-8 with its byte-order mark
    (without it Excel reads Windows-1252), `;` between fields under French (French Excel's
    list separator; `,` under English), CRLF, headers in the user's language, and a cell
    that would start a formula (`=`, `+`, `-`, `@`) prefixed with `'` so that a reason typed
    by someone is never run by the auditor's spreadsheet. `rfc4180`: for scripts, RFC 4180
    (`,`, CRLF, UTF-8 without mark, the column names of --json, cells as they are)."""
    buffer = io.StringIO()
    if rfc4180:
        out = csv.writer(buffer, lineterminator="\r\n")
        out.writerow(AUDIT_CSV_COLUMNS)
    else:
        buffer.write("\ufeff")
        out = csv.writer(buffer, delimiter=";" if current() == "fr" else ",", lineterminator="\r\n")
        out.writerow([_(AUDIT_CSV_HEADERS[k]) for k in AUDIT_CSV_COLUMNS])
    for row in rows:
        cells = list(audit_cells(row, zone).values())
        if not rfc4180:
            cells = ["'" + c if c.startswith(_FORMULA) else c for c in cells]
        out.writerow(cells)
    return buffer.getvalue()


def audit_lines(rows: Sequence[AuditRow], zone: str) -> list[str]:
    """`scelle audit`: a table, local time to the second, the agent by name (or plainly
    not designated), each recording under its entry."""
    headers = {
        "seq": _("seq"),
        "time": _("time ({zone})").format(zone=zone),
        "agent": _("agent"),
        "name": _("name"),
        "action": _("action"),
        "camera": _("camera"),
        "requisition": _("requisition"),
        "procedure": _("procedure"),
        "unit": _("unit"),
    }
    # The columns are as wide as their data needs, wider when a header is longer.
    least = {"seq": 7, "time": 19, "agent": 16, "name": 20, "action": 24, "camera": 12}
    least |= {"requisition": 11, "procedure": 16, "unit": 20}
    w = {column: max(least[column], len(header)) for column, header in headers.items()}
    h, reason = headers, _("reason")
    out = [
        f"{h['seq']:>{w['seq']}}  {h['time']:<{w['time']}}  {h['agent']:<{w['agent']}} "
        f"{h['name']:<{w['name']}} "
        f"{h['action']:<{w['action']}} {h['camera']:<{w['camera']}} "
        f"{h['requisition']:<{w['requisition']}} {h['procedure']:<{w['procedure']}} "
        f"{h['unit']:<{w['unit']}} {reason}"
    ]
    for row in rows:
        a = row.as_json()
        who = row.access.designation
        name = who.full_name if who else _("(not designated)")
        when = _local(a["time"], zone)[:19].replace("T", " ")
        out.append(
            f"{a['seq']:>{w['seq']}}  {when:<{w['time']}}  {a['agent']:<{w['agent']}} "
            f"{name:<{w['name']}} "
            f"{a['action']:<{w['action']}} {','.join(a['cameras']) or '-':<{w['camera']}} "
            f"{a['requisition'] or '-':<{w['requisition']}} "
            f"{a['procedure'] or '-':<{w['procedure']}} {a['unit'] or '-':<{w['unit']}} "
            f"{a['reason']}"
        )
        out += [f"{'':>{w['seq'] + 2}}{recording}" for recording in a["recordings"]]
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[str | None]]) -> list[str]:
    """Rows under their headers, each column as wide as its widest cell."""
    cells = [[cell or "" for cell in line] for line in (headers, *rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*cells, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]


def witnessed_lines(witnessed: Witnessed, policy: Policy) -> list[str]:
    """Which witnesses vouch for a checkpoint, which could not be asked, which refuse."""
    size = witnessed.checkpoint.size
    names = ", ".join(c.name for c in witnessed.collected.cosigned) or _("no witness")
    out = [
        (
            _("checkpoint of {size} entries cosigned by {names}: the policy's quorum is met")
            if witnessed.quorum
            else _(
                "checkpoint of {size} entries cosigned by {names}: the policy's quorum is NOT met"
            )
        ).format(size=size, names=names)
    ]
    out += [
        _("witness {witness} not reached ({why}): asked again at the next checkpoint").format(
            witness=label, why=why
        )
        for label, why in witnessed.collected.unreachable.items()
    ]
    out += [
        _("WITNESS {witness} REFUSES: {why}").format(witness=label, why=why)
        for label, why in witnessed.collected.refused.items()
    ]
    return out


def coverage_lines(coverage: Coverage | None) -> list[str]:
    """What a command that appended says of its tail: nothing when it is signed (and
    cosigned as the policy asks); else which entries are not, and why."""
    if coverage is None:
        return []
    if not coverage.covered:
        first, last = coverage.signed, coverage.size - 1
        said = (
            _(
                "note: ledger entries {first} to {last} are not covered by a signed "
                "checkpoint: {why}; start 'scelle keys agent' or run 'scelle ledger checkpoint'"
            )
            if last > first
            else _(
                "note: ledger entry {first} is not covered by a signed checkpoint: {why}; "
                "start 'scelle keys agent' or run 'scelle ledger checkpoint'"
            )
        )
        return [said.format(first=first, last=last, why=coverage.why)]
    failed = coverage.stamped is not None and coverage.stamped.stamp is None
    stamp = stamp_lines(coverage.stamped, coverage.signed) if failed else []  # only a failure
    if coverage.unwitnessed is not None:
        why = coverage.unwitnessed
        return [
            *stamp,
            _("note: the checkpoint of {size} entries is signed but not cosigned ({why})").format(
                size=coverage.signed, why=why
            ),
        ]
    if coverage.witnessed is None or coverage.policy is None:
        return stamp
    lines = witnessed_lines(coverage.witnessed, coverage.policy)
    return stamp + (lines if not coverage.witnessed.quorum or len(lines) > 1 else [])


def stamp_lines(stamped: Stamped | None, size: int) -> list[str]:
    """What the TSA said of a checkpoint: its time, or why there is no token."""
    if stamped is None:
        return []
    if stamped.stamp is None:
        return [
            _(
                "note: the checkpoint of {size} entries is not timestamped: the TSA {tsa} "
                "could not stamp it ({why})"
            ).format(size=size, tsa=stamped.tsa, why=stamped.failed)
        ]
    return [
        _("checkpoint of {size} entries timestamped by {tsa}: {time} (RFC 3161)").format(
            size=size, tsa=stamped.tsa, time=stamped.record()["time"]
        )
    ]


def stamped_head_lines(head: StampedHead | None, configured: bool) -> list[str]:
    """`ledger verify`: by when the TSA says the log had its entries."""
    if head is None:
        if not configured:
            return []
        return [_("no checkpoint timestamp holds for this log (token and root)")]
    out = [
        _("timestamped: the log's first {size} entries existed by {time} ({tsa}, RFC 3161)").format(
            size=head.size, tsa=head.tsa, time=head.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    ]
    if head.unverified:
        out.append(
            ngettext(
                "WARNING: {count} later checkpoint timestamp does not hold (token or root)",
                "WARNING: {count} later checkpoint timestamps do not hold (token or root)",
                head.unverified,
            ).format(count=head.unverified)
        )
    return out
