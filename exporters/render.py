"""What the camera and footage commands print, as text: the camera register's table, a camera's
record, a window's coverage, what a scan or a generation did.

Each function returns lines or JSON text and prints nothing: tests read exactly what a
command shows, and cli.py only prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from custody.render import json_text
from exporters.index import coverage_json

if TYPE_CHECKING:
    from exporters.generate import Generated
    from exporters.index import Coverage, ScanReport
    from exporters.models import Camera


def camera_record(camera: Camera) -> dict[str, Any]:
    """Every field of a camera's register row, by name."""
    return {name: getattr(camera, name) for name in type(camera).model_fields}


def cameras_json(cameras: Sequence[Camera]) -> str:
    return json_text([camera_record(c) for c in cameras])


def camera_lines(cameras: Sequence[Camera]) -> list[str]:
    """`scelle camera list`: one line each, retention and authorisation in view."""
    return [
        f"{c.id:<12} {c.retention_days:>2} d  {c.commune:<16} {c.name}  "
        f"[{c.authorisation_ref}, until {c.authorisation_expires}]"
        for c in cameras
    ]


def camera_shown(camera: Camera, footage: Mapping[str, Any]) -> dict[str, Any]:
    """`scelle camera show`: the register row, and what the index holds of it."""
    return camera_record(camera) | {"footage": footage}


def camera_shown_lines(shown: Mapping[str, Any]) -> list[str]:
    return [f"{key:<22} {value}" for key, value in shown.items()]


def coverage_text(coverage: Coverage) -> str:
    """`scelle footage find --json`."""
    return json_text(coverage_json(coverage))


def coverage_lines(coverage: Coverage) -> list[str]:
    """`scelle footage find`: the window, each segment, span and gap, what is withheld or
    rejected, and whether the window is complete."""
    shown = coverage_json(coverage)
    w = shown["window"]
    out = [
        f"camera {shown['camera']}: {w['from']} to {w['to']} ({w['from_utc']} to {w['to_utc']})",
        f"recorder clock offset: {shown['clock_offset_ms']} ms",
    ]
    out += [
        f"  segment {seg['path']}  {seg['size']:,} bytes  sha256 {seg['sha256'][:16]}…"
        for seg in shown["segments"]
    ]
    out += [f"  footage {span['from']} to {span['to']}" for span in shown["spans"]]
    out += [f"  GAP     {g['from']} to {g['to']}: {g['reason']}" for g in shown["gaps"]]
    withheld = [s["path"] for s in shown["segments"] if s["state"] not in ("ok", "corrupt")]
    out += [f"  WITHHELD {path}: not what was ingested, never exported" for path in withheld]
    out += [
        f"  REJECTED {path}: an index row no ingest entry of the ledger vouches for "
        "(planted around scelle): not footage"
        for path in shown.get("index_rows_rejected", [])
    ]
    out.append(
        "complete"
        if shown["complete"]
        else f"incomplete: {len(shown['gaps'])} gap(s), {len(withheld)} segment(s) withheld"
    )
    return out


def scan_lines(report: ScanReport) -> list[str]:
    """`scelle footage scan`: what was indexed, and what could not be."""
    return [
        f"{report.segments} new segments ({report.bytes:,} bytes) in {report.directories} "
        f"directories of {report.cameras} cameras; {report.batches} ledger entries",
        *(f"unreadable: {path}" for path in report.unreadable),
        *(f"not a regular file (a link, ...), not indexed: {path}" for path in report.not_regular),
    ]


def generated_lines(made: Generated, camera_id: str) -> list[str]:
    """`scelle footage generate`: what was written, and what was corrupted on purpose."""
    return [
        f"{made.segments} segments ({made.bytes:,} bytes) written for camera {camera_id}",
        *(f"corrupted on purpose: {path}" for path in made.corrupted),
    ]
