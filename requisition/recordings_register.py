"""The register of recordings (CSI R252-11 in its 2013 text; the article is configurable):
per camera, the recordings made over a period and their interruptions, when they were
destroyed, and when they were transmitted (to a requesting officer, or the prosecutor's
office that authorised the requisition), with a visa block for the system's holder.

Times are the reference (corrected) times, as on every paper: a recorder's clock offset
is taken off. Interruptions are found by the database (a window function over the
camera's segments in the period), not by reading every segment into Python.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from custody.site import Site
from custody.timewindow import now_us, utc_text
from exporters import french
from exporters.documents import Document, PdfSign, centre, render
from exporters.legal import LEGAL_BASES
from requisition.cameras import list_cameras
from requisition.handover import handed_record
from requisition.purge_history import HOLES, Destroyed, destroyed_periods


def _transmissions(site: Site, camera: str, start_us: int, end_us: int) -> list[str]:
    """The handovers of recordings of the period (whenever they were handed over)."""
    zone = site.settings.timezone
    with site.db.read() as cur:
        cur.execute(
            "SELECT DISTINCT r.id, r.pv_number, r.legal_basis, r.prosecutor_authorisation, "
            "r.handed_to, r.handed_at, r.medium, r.seal_number "
            "FROM requisition r JOIN requisition_window w ON w.requisition_id = r.id "
            "WHERE w.camera_id = ? AND r.handed_at IS NOT NULL AND w.start_us < ? "
            "AND w.end_us > ? ORDER BY r.handed_at",
            [camera, end_us, start_us],
        )
        rows = cur.fetchall()
    out = []
    for rid, pv, basis, prosecutor, to, at, medium, seals in rows:
        authority = LEGAL_BASES.get(basis, basis)
        if prosecutor:
            authority += f", autorisation du procureur de la République {prosecutor}"
        seal_words = f", scellé(s) n° {seals}" if seals else ""
        count = int((handed_record(site, rid) or {}).get("count") or 1)
        out.append(
            f"le {french.time(at, zone)} : remise à {to}, sur {french.media(medium, count)}"
            f"{seal_words} — réquisition {rid}, procédure {pv} ({authority})"
        )
    return out


def _camera(site: Site, camera: Any, start_us: int, end_us: int) -> dict[str, Any]:
    zone = site.settings.timezone
    offset = camera.clock_offset_ms * 1000  # recorder time = reference time + offset

    def ref(recorder_us: int) -> str:
        return french.time(utc_text(recorder_us - offset), zone)

    lo, hi = start_us + offset, end_us + offset
    with site.db.read() as cur:
        count, first, last = cur.execute(
            "SELECT COUNT(*), MIN(start_us), MAX(end_us) FROM segment WHERE camera_id = ? "
            "AND start_us < ? AND end_us > ?",
            [camera.id, hi, lo],
        ).fetchone()
        holes = cur.execute(HOLES, [camera.id, hi, lo, lo, lo, camera.id, hi, lo]).fetchall()
        cur.execute(
            "SELECT purge_run, destroyed_at, segments, start_us, end_us FROM ("
            "SELECT purge_run, MIN(destroyed_at) AS destroyed_at, COUNT(*) AS segments, "
            "MIN(start_us) AS start_us, MAX(end_us) AS end_us FROM segment WHERE camera_id = ? "
            "AND destroyed_at IS NOT NULL AND start_us < ? AND end_us > ? GROUP BY purge_run) AS r",
            [camera.id, hi, lo],
        )
        rows = [Destroyed(*row) for row in cur.fetchall()]
        compacted = destroyed_periods(cur, camera.id, lo, hi)
    count += sum(d.segments for d in compacted)
    starts = [d.start_us for d in compacted] + ([first] if first is not None else [])
    ends = [d.end_us for d in compacted] + ([last] if last is not None else [])
    first, last = min(starts, default=None), max(ends, default=None)
    destroyed = _by_run(rows + compacted)
    return {
        "id": camera.id,
        "name": camera.name,
        "commune": camera.commune,
        "retention": camera.retention_days,
        "recorded": bool(count),
        "first": ref(first) if count and first is not None else None,
        "last": ref(last) if count and last is not None else None,
        "files": french.number(count),
        "interruptions": [
            f"du {ref(lo)} au {ref(hi)} ({french.duration((hi - lo) / 1e6)})" for lo, hi in holes
        ],
        "destructions": [
            f"le {french.time(at, zone)} : enregistrements du {ref(lo)} au {ref(hi)} "
            f"({french.number(n)} fichier(s) vidéo), purge n° {run}"
            for run, at, n, lo, hi in destroyed
        ],
        "transmissions": _transmissions(site, camera.id, start_us, end_us),
    }


def _by_run(items: list[Destroyed]) -> list[tuple[int, str, int, int, int]]:
    """(run, first destruction, segments, first start, last end) per purge run, by the
    time of destruction: rows not yet compacted and periods alike."""
    runs: dict[int, list[Destroyed]] = {}
    for item in items:
        runs.setdefault(int(item.purge_run), []).append(item)
    out = [
        (
            run,
            min(d.destroyed_at for d in its),
            sum(int(d.segments) for d in its),
            min(int(d.start_us) for d in its),
            max(int(d.end_us) for d in its),
        )
        for run, its in runs.items()
    ]
    return sorted(out, key=lambda r: (r[1], r[0]))


def recordings_register(
    site: Site,
    first_day: date,
    last_day: date,
    start_us: int,
    end_us: int,
    sign: PdfSign | None = None,
) -> Document:
    """The register from `first_day` to `last_day` included ([start_us, end_us) are their
    midnights in the site's zone)."""
    zone = site.settings.timezone
    return render(
        "register",
        {
            "centre": centre(site.settings),
            "article": site.settings.register_article,
            "period_from": f"{first_day:%d/%m/%Y}",
            "period_to": f"{last_day:%d/%m/%Y}",
            "issued_at": french.time(utc_text(now_us()), zone),
            "issued_day": french.day(utc_text(now_us()), zone),
            "cameras": [_camera(site, c, start_us, end_us) for c in list_cameras(site)],
        },
        sign,
    )
