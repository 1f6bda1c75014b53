"""What the workflow's commands print, as text: requisitions, decisions, exports, holds,
agents, status, issued documents.

Each function returns lines or JSON text and prints nothing: tests read exactly what a
command shows, and cli.py only prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from custody.render import json_text
from custody.timewindow import utc_text
from requisition.requisitions import registered_summary

if TYPE_CHECKING:
    from exporters.package import Built
    from requisition.agents import Agent
    from requisition.extract import Copied
    from requisition.holds import Hold
    from requisition.issue import Issued
    from requisition.models import Requisition
    from requisition.requisitions import Decision, Registered


def registered_lines(registered: Registered) -> list[str]:
    """`scelle requisition register`: its id and state, then each window's urgency."""
    r = registered.requisition
    return [
        f"requisition {r.id} registered ({r.state})",
        *(f"  {line}" for line in registered_summary(registered)),
    ]


def decision_lines(outcome: Decision, actor: str) -> list[str]:
    """`scelle requisition approve/deny/cancel`: the new state, and what became of the
    requisition's holds (released, or kept and why)."""
    decided = outcome.requisition
    out = [f"requisition {decided.id}: {decided.state} by {decided.decided_by or actor}"]
    out += [f"hold {h.id} on camera {h.camera_id} released" for h in outcome.released]
    if outcome.kept:
        ids = ", ".join(str(h.id) for h in outcome.kept)
        out.append(f"holds {ids} kept: {outcome.kept_because}")
    return out


def extracted_lines(built: Built) -> list[str]:
    """`scelle requisition extract`: where the export is, its hash and entry, and whether
    it is complete."""
    return [
        f"export {built.path}",
        f"manifest sha256 {built.manifest_sha256}",
        f"ledger entry {built.ledger_seq}",
        "complete: no gap in the footage"
        if built.complete
        else (
            f"PARTIAL: {built.gaps} gap(s), {built.altered} segment(s) withheld (gone, not a "
            "regular file, or altered since ingest)"
        ),
    ]


def copied_lines(copied: Copied) -> list[str]:
    """`scelle export copy`: leftovers removed, then the copy read back."""
    return [
        *(f"removed {stale}, left on the medium by an interrupted copy" for stale in copied.stale),
        f"copied to {copied.path} and read back: {len(copied.report.checks)} checks passed",
    ]


def requisitions_json(found: Sequence[Requisition]) -> str:
    return json_text([r.model_dump() for r in found])


def requisition_lines(found: Sequence[Requisition]) -> list[str]:
    """`scelle requisition list`: one line each."""
    return [
        f"{r.id}  {r.state:<20} art. {r.legal_basis:<7} {r.pv_number:<18} {r.officer_unit}"
        for r in found
    ]


def shown_lines(shown: Mapping[str, Any]) -> list[str]:
    """`scelle requisition show`: every field that has a value."""
    return [f"{key:<26} {value}" for key, value in shown.items() if value not in (None, [])]


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


def hold_lines(holds: Sequence[Hold]) -> list[str]:
    """`scelle hold list`: one line each, active or when released."""
    out = []
    for r in hold_rows(holds):
        state = f"released {r['released_at']}" if r["released_at"] else "active"
        out.append(
            f"{r['id']:>5}  {r['camera']:<10} {r['from_utc']} to {r['to_utc']}  {state}  "
            f"{r['procedure'] or ''}  {r['reason']}"
        )
    return out


def status_lines(shown: Mapping[str, Any]) -> list[str]:
    """`scelle status`: holds, footage about to expire under a pending requisition, and
    the last purge."""
    out = [f"active holds: {shown['active_holds']}"]
    out += [
        f"EXPIRING {item['requisition']} ({item['state']}) {item['camera']} "
        f"{item['from']} to {item['to']}: footage expires {item['expires_utc']}"
        for item in shown["expiring_within_72h"]
    ]
    last = shown["last_purge"]
    out.append(
        "no purge has run yet"
        if last is None
        else (
            f"last purge {last['run']} as of {last['as_of_utc']}: {last['state']}, "
            f"{last['segments']} segments, {last['failures']} failures"
        )
    )
    return out


def agents_json(agents: Sequence[Agent]) -> str:
    return json_text([dataclasses.asdict(a) for a in agents])


def agent_lines(agents: Sequence[Agent]) -> list[str]:
    """`scelle agent list`: the register, disabled agents included."""
    out = [f"{'login':<20} {'role':<11} {'status':<9} {'name':<24} designation"]
    for a in agents:
        status = "active" if a.active else "disabled"
        out.append(f"{a.login:<20} {a.role:<11} {status:<9} {a.name:<24} {a.designation}")
    return out


def issued_lines(issued: Issued) -> list[str]:
    """`scelle doc ...`: the files written, and the PDF's hash as recorded."""
    return [str(issued.pdf), str(issued.html), f"sha256 (pdf) {issued.sha256['pdf']}"]
