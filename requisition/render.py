"""What the workflow's commands print, as text: requisitions, decisions, exports, holds,
agents, status, issued documents.

Each function returns lines or JSON text and prints nothing: tests read exactly what a
command shows, and cli.py only prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from custody.i18n import N_, _, ngettext
from custody.render import json_text, table
from custody.timewindow import people_text, utc_text
from requisition.requisitions import registered_summary
from requisition.roles import Role
from requisition.words import label

if TYPE_CHECKING:
    from exporters.attached import Attachment
    from exporters.package import Built
    from requisition.agents import Agent
    from requisition.extract import Copied
    from requisition.holds import Hold
    from requisition.issue import Issued
    from requisition.models import Requisition
    from requisition.requisitions import Decision, Registered


# Stored values (states, roles...) stay as they are in the database and the JSON; what
# the tables show of them is requisition.words.label's.
# TRANSLATORS: how a retention purge ended, as `scelle status` shows it (la purge est ...).
PURGE_STATE_LABELS = {
    "intent": N_("intent"),
    "done": N_("done"),
    "partial": N_("partial"),
    "void": N_("void"),
}
# TRANSLATORS: the labels of `scelle requisition show`, in the order shown.
REQUISITION_FIELDS = {
    "id": N_("requisition"),
    "state": N_("state"),
    "legal_basis_text": N_("legal basis"),
    "prosecutor_authorisation": N_("prosecutor's authorisation"),
    "pv_number": N_("PV number"),
    "officer_name": N_("officer"),
    "officer_unit": N_("unit"),
    "reason": N_("reason"),
    "received_via": N_("received by"),
    "received_at": N_("received at"),
    "deadline": N_("deadline"),
    "registered_by": N_("registered by"),
    "registered_at": N_("registered at"),
    "decided_by": N_("decided by"),
    "decided_at": N_("decided at"),
    "decision_reason": N_("decision's reason"),
    "export_path": N_("export"),
    "manifest_sha256": N_("manifest SHA-256"),
    "handed_to": N_("handed over to"),
    "handed_at": N_("handed over at"),
    "medium": N_("medium"),
    "seal_number": N_("seal number"),
}
_WORD_KINDS = {"state": "state", "received_via": "received_via", "medium": "medium"}
_TIMES = ("received_at", "deadline", "registered_at", "decided_at", "handed_at")


def _label(labels: Mapping[str, str], value: str) -> str:
    known = labels.get(value)
    return _(known) if known else value


def registered_lines(registered: Registered) -> list[str]:
    """`scelle requisition register`: its id and state, then each window's urgency."""
    r = registered.requisition
    return [
        _("requisition {id} registered ({state})").format(id=r.id, state=label("state", r.state)),
        *(f"  {line}" for line in registered_summary(registered)),
    ]


def decision_lines(outcome: Decision, actor: str) -> list[str]:
    """`scelle requisition approve/deny/cancel`: the new state, and what became of the
    requisition's holds (released, or kept and why)."""
    decided = outcome.requisition
    out = [
        _("requisition {id}: {state} by {agent}").format(
            id=decided.id,
            state=label("state", decided.state),
            agent=decided.decided_by or actor,
        )
    ]
    out += [
        _("hold {id} on camera {camera} released").format(id=h.id, camera=h.camera_id)
        for h in outcome.released
    ]
    if outcome.kept:
        ids = ", ".join(str(h.id) for h in outcome.kept)
        out.append(
            ngettext(
                "holds {ids} kept: {because}", "holds {ids} kept: {because}", len(outcome.kept)
            ).format(ids=ids, because=outcome.kept_because)
        )
    return out


def extracted_lines(built: Built) -> list[str]:
    """`scelle requisition extract`: where the export is, its hash and entry, and whether
    it is complete."""
    return [
        _("export {path}").format(path=built.path),
        _("manifest sha256 {sha256}").format(sha256=built.manifest_sha256),
        _("ledger entry {seq}").format(seq=built.ledger_seq),
        _("complete: no gap in the footage")
        if built.complete
        else _(
            "PARTIAL: {gaps} gap(s), {altered} segment(s) withheld (gone, not a regular file, "
            "or altered since ingest)"
        ).format(gaps=built.gaps, altered=built.altered),
    ]


def attached_lines(requisition_id: str, attachment: Attachment, seq: int) -> list[str]:
    """`scelle requisition attach`: what was taken in, its hashes, and what ffmpeg reads."""
    out = [
        ngettext(
            "{count} file taken into custody for requisition {requisition} (ledger entry {seq})",
            "{count} files taken into custody for requisition {requisition} (ledger entry {seq})",
            len(attachment.files),
        ).format(count=len(attachment.files), requisition=requisition_id, seq=seq),
        _("kept in {path}, delivered in its export").format(path=attachment.directory),
    ]
    for taken in attachment.files:
        out.append(
            f"  {taken.path}  "
            + _("{size} bytes  sha256 {sha256}").format(size=f"{taken.size:,}", sha256=taken.sha256)
        )
        if taken.video is not None:
            video = taken.video
            out.append(
                "    "
                + _(
                    "video {codec} {width}x{height}, {seconds:.1f} s: a working copy will be made"
                ).format(seconds=video["duration_us"] / 1e6, **video)
            )
        else:
            out.append(
                "    "
                + _("not readable as video by ffmpeg ({why}): delivered as it came").format(
                    why=taken.not_video
                )
            )
    return out


def copied_lines(copied: Copied) -> list[str]:
    """`scelle export copy`: leftovers removed, then the copy read back."""
    checks = len(copied.report.checks)
    return [
        *(
            _("removed {path}, left on the medium by an interrupted copy").format(path=stale)
            for stale in copied.stale
        ),
        ngettext(
            "copied to {path} and read back: {checks} checks passed",
            "copied to {path} and read back: {checks} checks passed",
            checks,
        ).format(path=copied.path, checks=checks),
    ]


def requisitions_json(found: Sequence[Requisition]) -> str:
    return json_text([r.row() for r in found])


def requisition_lines(found: Sequence[Requisition]) -> list[str]:
    """`scelle requisition list`: a table under its headers, one requisition a row."""
    if not found:
        return []  # nothing, as before: an empty register prints no table
    headers = [_("requisition"), _("state"), _("legal basis"), _("PV number"), _("unit")]
    rows = [
        [r.id, label("state", r.state), f"art. {r.legal_basis}", r.pv_number, r.officer_unit]
        for r in found
    ]
    return table(headers, rows)


def shown_lines(shown: Mapping[str, Any], zone: str) -> list[str]:
    """`scelle requisition show`: its fields under their labels (times local, with their
    offset), then a table of its windows and one of its holds."""
    labels = {key: _(text) for key, text in REQUISITION_FIELDS.items()}
    width = max(len(text) for text in labels.values()) + 2
    out = []
    for key, text in labels.items():
        value = shown.get(key)
        if value in (None, ""):
            continue
        if key in _WORD_KINDS:
            value = label(_WORD_KINDS[key], value)
        elif key in _TIMES:
            value = people_text(value, zone)
        lines = str(value).splitlines() or [""]
        out.append(f"{text:<{width}}{lines[0]}")
        out += [" " * width + line for line in lines[1:]]
    windows = shown.get("windows") or []
    if windows:
        out += ["", _("Windows ({zone}):").format(zone=zone)]
        out += table(
            [_("camera"), _("from"), _("to")],
            [
                [w["camera"], people_text(w["from_utc"], zone), people_text(w["to_utc"], zone)]
                for w in windows
            ],
        )
    holds = shown.get("holds") or []
    if holds:
        out += ["", _("Holds:")]
        out += table(
            [_("hold"), _("camera"), _("from"), _("to"), _("state")],
            [
                [
                    str(h["id"]),
                    h["camera"],
                    people_text(h["from_utc"], zone),
                    people_text(h["to_utc"], zone),
                    _("released") if h["released"] else _("active"),
                ]
                for h in holds
            ],
        )
    return out


def hold_rows(holds: Sequence[Hold]) -> list[dict[str, Any]]:
    """`scelle hold list --json`: each hold as auditors read it, times in UTC."""
    return [
        {
            "id": h.id,
            "camera": h.camera_id,
            "from_utc": utc_text(h.start_us),
            "to_utc": utc_text(h.end_us),
            "reason": h.reason,
            "procedure": h.procedure,
            "requisition": h.requisition_id,
            "placed_by": h.placed_by,
            "released_at": h.released_at,
        }
        for h in holds
    ]


def hold_lines(holds: Sequence[Hold], zone: str) -> list[str]:
    """`scelle hold list`: a table under its headers, times local with their offset."""
    rows = []
    for r in hold_rows(holds):
        released = people_text(r["released_at"], zone)
        state = _("released {at}").format(at=released) if released else _("active")
        rows.append(
            [
                str(r["id"]),
                r["camera"],
                people_text(r["from_utc"], zone),
                people_text(r["to_utc"], zone),
                state,
                r["procedure"] or "",
                r["reason"],
            ]
        )
    if not rows:
        return []  # nothing, as before: an empty register prints no table
    headers = [_("hold"), _("camera"), _("from"), _("to"), _("state"), _("procedure"), _("reason")]
    return table(headers, rows)


def status_lines(shown: Mapping[str, Any], zone: str) -> list[str]:
    """`scelle status`: holds, footage about to expire under a pending requisition, and
    the last purge (times local with their offset; --json keeps UTC)."""
    out = [_("active holds: {count}").format(count=shown["active_holds"])]
    out += [
        _(
            "EXPIRING {requisition} ({state}) {camera} {start} to {end}: footage expires {expires}"
        ).format(
            requisition=item["requisition"],
            state=label("state", item["state"]),
            camera=item["camera"],
            start=people_text(item["from"], zone),
            end=people_text(item["to"], zone),
            expires=people_text(item["expires_utc"], zone),
        )
        for item in shown["expiring_within_72h"]
    ]
    last = shown["last_purge"]
    out.append(
        _("no purge has run yet")
        if last is None
        else _(
            "last purge {run} as of {as_of}: {state}, {segments} segments, {failures} failures"
        ).format(
            run=last["run"],
            as_of=people_text(last["as_of_utc"], zone),
            state=_label(PURGE_STATE_LABELS, last["state"]),
            segments=last["segments"],
            failures=last["failures"],
        )
    )
    return out


def agents_json(agents: Sequence[Agent]) -> str:
    return json_text([dataclasses.asdict(a) for a in agents])


def agent_lines(agents: Sequence[Agent]) -> list[str]:
    """`scelle agent list`: the register, disabled agents included."""
    login, role, status, name = _("login"), _("role"), _("status"), _("name")
    designation = _("designation")
    active, disabled = _("active"), _("disabled")
    roles = [label("role", r.value) for r in Role]
    # Columns as wide as their data needs, or as their header or labels in the user's language.
    w_login, w_name = max(20, len(login)), max(24, len(name))
    w_role = max(len(label) for label in [role, *roles]) + 1
    w_status = max(len(label) for label in [status, active, disabled]) + 1
    out = [
        f"{login:<{w_login}} {role:<{w_role}} {status:<{w_status}} {name:<{w_name}} {designation}"
    ]
    for a in agents:
        shown = active if a.active else disabled
        out.append(
            f"{a.login:<{w_login}} {label('role', a.role):<{w_role}} {shown:<{w_status}} "
            f"{a.name:<{w_name}} {a.designation}"
        )
    return out


def issued_lines(issued: Issued) -> list[str]:
    """`scelle doc ...`: the files written, and the PDF's hash as recorded."""
    return [str(issued.pdf), str(issued.html), f"sha256 (pdf) {issued.sha256['pdf']}"]
