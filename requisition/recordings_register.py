"""The register of recordings (CSI R252-11 in its 2013 text; the article is configurable):
per camera, the recordings made, when they were destroyed, and the transmissions to
officers or the prosecutor, for a period."""

from __future__ import annotations

from typing import Any

from custody.site import Site
from custody.timewindow import local_text, now_us, stored_utc, utc_text
from exporters.documents import Document, centre, fr_time, render
from requisition.cameras import list_cameras


def recordings_register(site: Site, start_us: int, end_us: int) -> Document:
    zone = site.settings.timezone
    cameras: list[dict[str, Any]] = []
    with site.db.read() as cur:
        for camera in list_cameras(site):
            offset = camera.clock_offset_ms * 1000
            count, first, last = cur.execute(
                "SELECT COUNT(*), MIN(start_us), MAX(end_us) FROM segment WHERE camera_id = ? "
                "AND start_us < ? AND end_us > ?",
                [camera.id, end_us + offset, start_us + offset],
            ).fetchone()
            cur.execute(
                "SELECT r.id, r.pv_number, r.handed_to, r.handed_at, r.medium, r.seal_number "
                "FROM requisition r JOIN requisition_window w ON w.requisition_id = r.id "
                "WHERE w.camera_id = ? AND r.handed_at IS NOT NULL AND r.handed_at >= ? "
                "AND r.handed_at < ? ORDER BY r.handed_at",
                [camera.id, stored_utc(start_us), stored_utc(end_us)],
            )
            transmissions = [
                f"{fr_time(at, zone)} : réquisition {rid} ({pv}) remise à {to}, "
                f"support {medium}, scellé {seal}"
                for rid, pv, to, at, medium, seal in cur.fetchall()
            ]
            cur.execute(
                "SELECT purge_run, MIN(destroyed_at), COUNT(*), MIN(start_us), MAX(end_us) "
                "FROM segment WHERE camera_id = ? AND destroyed_at IS NOT NULL "
                "AND start_us < ? AND end_us > ? GROUP BY purge_run ORDER BY 2",
                [camera.id, end_us + offset, start_us + offset],
            )
            destructions = [
                f"le {fr_time(at, zone)} : {n} segments du {fr_time(utc_text(lo - offset), zone)} "
                f"au {fr_time(utc_text(hi - offset), zone)} (purge n° {run})"
                for run, at, n, lo, hi in cur.fetchall()
            ]
            cameras.append(
                {
                    "id": camera.id,
                    "name": camera.name,
                    "commune": camera.commune,
                    "segments": count,
                    "first": fr_time(utc_text(first - offset), zone) if first else None,
                    "last": fr_time(utc_text(last - offset), zone) if last else None,
                    "destructions": destructions,
                    "transmissions": transmissions,
                }
            )
    return render(
        "register",
        {
            "centre": centre(site.settings),
            "article": site.settings.register_article,
            "period_from": local_text(start_us, zone)[:10],
            "period_to": local_text(end_us, zone)[:10],
            "issued_at": fr_time(utc_text(now_us()), zone),
            "cameras": cameras,
        },
    )
