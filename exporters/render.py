"""What the camera and footage commands print, as text: the camera register's table, a camera's
record, a window's coverage, what a scan or a generation did.

Each function returns lines or JSON text and prints nothing: tests read exactly what a
command shows, and cli.py only prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, assert_never

from custody.i18n import N_, _, ngettext
from custody.render import json_text, table
from custody.timewindow import people_day, people_text, people_time
from exporters.french import duration as duration_words
from exporters.gaps import ENGLISH, GapKind
from exporters.index import coverage_json
from exporters.stores.clock_change import Basis

if TYPE_CHECKING:
    from exporters.generate import Generated
    from exporters.index import Coverage, ScanReport
    from exporters.models import Camera
    from exporters.store_check import StoreCheck


def camera_record(camera: Camera) -> dict[str, Any]:
    """Every field of a camera's register row, by name."""
    return camera.row()


def cameras_json(cameras: Sequence[Camera]) -> str:
    return json_text([camera_record(c) for c in cameras])


def camera_lines(cameras: Sequence[Camera]) -> list[str]:
    """`scelle camera list`: a table under its headers, retention and authorisation in view."""
    if not cameras:
        return []  # nothing, as before: an empty register prints no table
    headers = [_("camera"), _("retention"), _("commune"), _("name"), _("authorisation")]
    rows = [
        [
            c.id,
            ngettext("{n} day", "{n} days", c.retention_days).format(n=c.retention_days),
            c.commune,
            c.name,
            _("{authorisation}, until {expires}").format(
                authorisation=c.authorisation_ref, expires=people_day(c.authorisation_expires)
            ),
        ]
        for c in cameras
    ]
    return table(headers, rows)


def camera_shown(camera: Camera, footage: Mapping[str, Any]) -> dict[str, Any]:
    """`scelle camera show`: the register row, and what the index holds of it."""
    return camera_record(camera) | {"footage": footage}


# TRANSLATORS: the labels of `scelle camera show`, in the order shown.
CAMERA_FIELDS = {
    "id": N_("camera"),
    "name": N_("name"),
    "location": N_("location"),
    "commune": N_("commune"),
    "authorisation_ref": N_("authorisation"),
    "authorisation_expires": N_("authorised until"),
    "retention_days": N_("retention"),
    "timezone": N_("time zone"),
    "store_kind": N_("store"),
    "store_path": N_("store folder"),
    "store_camera": N_("name in the store"),
    "store_template": N_("path template"),
    "store_time": N_("names in"),
    "clock_offset_ms": N_("clock offset"),
    "clock_measured_at": N_("clock measured at"),
    "clock_method": N_("clock measured by"),
    "created_at": N_("registered at"),
}


def camera_shown_lines(shown: Mapping[str, Any]) -> list[str]:
    """`scelle camera show`: its fields under their labels, times local with their offset,
    then what the footage index holds of it."""
    zone = shown["timezone"]
    values = dict(shown)
    values["retention_days"] = ngettext("{n} day", "{n} days", shown["retention_days"]).format(
        n=shown["retention_days"]
    )
    offset = shown["clock_offset_ms"]
    values["clock_offset_ms"] = (
        _("none")
        if not offset
        else _("{ms:+} ms (the recorder's clock is ahead when +)").format(ms=offset)
    )
    values["authorisation_expires"] = people_day(shown["authorisation_expires"])
    for key in ("clock_measured_at", "created_at"):
        values[key] = people_text(shown[key], zone)
    if not shown.get("store_template"):  # the other layouts fix their clock
        values["store_time"] = None
    else:
        values["store_time"] = (
            _("UTC") if shown["store_time"] == "utc" else _("local time ({zone})").format(zone=zone)
        )
    labels = {key: _(text) for key, text in CAMERA_FIELDS.items()}
    width = max(len(text) for text in labels.values()) + 2
    out = [
        f"{text:<{width}}{values[key]}"
        for key, text in labels.items()
        if values.get(key) not in (None, "")
    ]
    footage = shown.get("footage") or {}
    if footage.get("segments"):
        out.append(
            f"{_('footage'):<{width}}"
            + _("{segments} segments, {size}, from {first} to {last}").format(
                segments=footage["segments"],
                size=_megabytes(footage["bytes"]),
                first=people_text(footage["first_utc"], zone),
                last=people_text(footage["last_utc"], zone),
            )
        )
    else:
        out.append(f"{_('footage'):<{width}}" + _("none indexed"))
    return out


def _megabytes(size: int) -> str:
    return _("{mb:.1f} MB").format(mb=size / 1e6)


def coverage_text(coverage: Coverage) -> str:
    """`scelle footage find --json`."""
    return json_text(coverage_json(coverage))


def _gap_reason(gap: Mapping[str, Any]) -> str:
    """Why a gap, in the user's language: its kind's words, and the segment it is about
    (the English detail, a tool's own words, stays in the manifest and --json)."""
    words = _(ENGLISH[GapKind(gap["kind"])])
    return f"{words}: {gap['segment']}" if gap.get("segment") else words


def coverage_lines(coverage: Coverage) -> list[str]:
    """`scelle footage find`: the window, each segment, span and gap, what is withheld or
    rejected, and whether the window is complete."""
    shown = coverage_json(coverage)
    w = shown["window"]
    out = [
        _("camera {camera}: {start} to {end} ({start_utc} to {end_utc})").format(
            camera=shown["camera"],
            start=w["from"],
            end=w["to"],
            start_utc=w["from_utc"],
            end_utc=w["to_utc"],
        ),
        _("recorder clock offset: {offset} ms").format(offset=shown["clock_offset_ms"]),
    ]
    # A column of labels (segment, footage, gap), as wide as the longest in the user's language.
    segment, footage, gap = _("segment"), _("footage"), _("GAP")
    width = max(len(segment), len(footage), len(gap)) + 1
    out += [
        f"  {segment:<{width}}"
        + _("{path}  {size} bytes  sha256 {sha256}…").format(
            path=seg["path"], size=f"{seg['size']:,}", sha256=seg["sha256"][:16]
        )
        for seg in shown["segments"]
    ]
    out += [
        "  "
        + _(
            "CLOCK CHANGE {path}: named {named} local time, a time the autumn change repeats; "
            "placed by its own timing at the scan"
        ).format(path=seg["path"], named=seg["name_time_repeated"])
        for seg in shown["segments"]
        if "name_time_repeated" in seg
    ]
    out += [
        f"  {footage:<{width}}" + _("{start} to {end}").format(start=span["from"], end=span["to"])
        for span in shown["spans"]
    ]
    out += [
        f"  {gap:<{width}}"
        + _("{start} to {end}: {reason}").format(
            start=g["from"], end=g["to"], reason=_gap_reason(g)
        )
        for g in shown["gaps"]
    ]
    withheld = [s["path"] for s in shown["segments"] if s["state"] not in ("ok", "corrupt")]
    out += [
        "  " + _("WITHHELD {path}: not what was ingested, never exported").format(path=path)
        for path in withheld
    ]
    out += [
        "  "
        + _(
            "REJECTED {path}: an index row no ingest entry of the ledger vouches for "
            "(planted around scelle): not footage"
        ).format(path=path)
        for path in shown.get("index_rows_rejected", [])
    ]
    out.append(
        _("complete")
        if shown["complete"]
        else _("incomplete: {gaps} gap(s), {withheld} segment(s) withheld").format(
            gaps=len(shown["gaps"]), withheld=len(withheld)
        )
    )
    return out


def scan_lines(report: ScanReport) -> list[str]:
    """`scelle footage scan`: what was indexed, and what could not be."""
    return [
        _(
            "{segments} new segments ({bytes} bytes) in {directories} directories of "
            "{cameras} cameras; {batches} ledger entries"
        ).format(
            segments=report.segments,
            bytes=f"{report.bytes:,}",
            directories=report.directories,
            cameras=report.cameras,
            batches=report.batches,
        ),
        *(_("unreadable: {path}").format(path=path) for path in report.unreadable),
        *(
            _("not a regular file (a link, ...), not indexed: {path}").format(path=path)
            for path in report.not_regular
        ),
        *placed_lines(report.placed),
        *(
            _(
                "not indexed: {path}: its local-time name does not say when it was recorded "
                "(clock change), nor does its own timing"
            ).format(path=path)
            for path in report.unplaced
        ),
        *(
            _(
                "not indexed: {path}: recorded at a time a certified purge destroyed (a "
                "file copied back or planted)"
            ).format(path=path)
            for path in report.destroyed
        ),
    ]


def placed_lines(placed: Sequence[tuple[str, Basis]]) -> list[str]:
    """Files named in the local hour the autumn change repeats, by what placed them: a
    count and the first and last (an hour of ten-second segments is 360 files)."""
    out = []
    for basis in Basis:
        paths = sorted(path for path, how in placed if how is basis)
        if paths:
            out.append(
                ngettext(
                    "clock change: {count} file named in the local hour the clocks repeat "
                    "placed from {basis}: {paths}",
                    "clock change: {count} files named in the local hour the clocks repeat "
                    "placed from {basis}: {paths}",
                    len(paths),
                ).format(
                    count=len(paths),
                    basis=basis_words(basis),
                    paths=" … ".join(dict.fromkeys((paths[0], paths[-1]))),
                )
            )
    return out


def basis_words(basis: Basis) -> str:
    """What placed a file whose local-time name the autumn change repeats."""
    if basis is Basis.MEDIA:
        return _("the creation time the recorder wrote in the video")
    if basis is Basis.WRITTEN:
        return _("when the recorder finished writing the file")
    if basis is Basis.ORDER:
        return _("the order the recorder wrote the files in")
    assert_never(basis)


def store_check_lines(camera: Camera, check: StoreCheck, hours: int) -> list[str]:
    """`scelle camera check`: what the camera's store holds, as its layout reads it."""
    zone = camera.timezone
    out = [
        _("camera {camera}: store {kind} in {path}").format(
            camera=camera.id, kind=camera.store_kind, path=camera.store_path
        )
    ]
    if camera.store_template:
        out.append("  " + _("path template: {template}").format(template=camera.store_template))
    out.append(
        "  "
        + _("{segments} segments ({size}) in {directories} folders").format(
            segments=f"{check.segments:,}",
            size=_megabytes(check.bytes),
            directories=check.directories,
        )
    )
    if check.first is not None and check.first_us is not None and check.last_us is not None:
        out += [
            "  "
            + _("first: {when}  {path}").format(
                when=people_time(check.first_us, zone), path=check.first
            ),
            "  "
            + _("last:  {when}  {path}").format(
                when=people_time(check.last_us, zone), path=check.last
            ),
        ]
    if check.read:
        out.append(
            "  "
            + ngettext(
                "last {hours} hour: {count} segments read, from {start} to {end}",
                "last {hours} hours: {count} segments read, from {start} to {end}",
                hours,
            ).format(
                hours=hours,
                count=len(check.read),
                start=people_time(check.read[0].start_us, zone),
                end=people_time(max(f.end_us for f in check.read), zone),
            )
        )
        out += [
            "  "
            + _("GAP {start} to {end} ({length})").format(
                start=people_time(start, zone),
                end=people_time(end, zone),
                length=duration_words((end - start) / 1e6),
            )
            for start, end in check.gaps
        ]
        if not check.gaps:
            out.append("  " + _("no gap of a second or more"))
        if check.short_breaks:
            out.append(
                "  "
                + _(
                    "{count} breaks shorter than a second between segments ({ms} ms in all)"
                ).format(count=check.short_breaks, ms=check.short_break_us // 1000)
            )
    out += ["  " + _("unreadable as video: {path}").format(path=path) for path in check.unreadable]
    out += ["  " + line for line in placed_lines(check.placed)]
    out += [
        "  "
        + _("not placed in time (clock change), would not be indexed: {path}").format(path=path)
        for path in check.unplaced
    ]
    if check.others:
        out.append(
            "  "
            + ngettext(
                "{count} other file is not a segment by this layout, e.g. {examples}",
                "{count} other files are not segments by this layout, e.g. {examples}",
                check.others,
            ).format(count=check.others, examples=", ".join(check.other_examples))
        )
    return out


def generated_lines(made: Generated, camera_id: str) -> list[str]:
    """`scelle footage generate`: what was written, and what was corrupted on purpose."""
    return [
        _("{segments} segments ({bytes} bytes) written for camera {camera}").format(
            segments=made.segments, bytes=f"{made.bytes:,}", camera=camera_id
        ),
        *(_("corrupted on purpose: {path}").format(path=path) for path in made.corrupted),
    ]
