"""`scelle status`: what needs attention now: holds, footage about to expire under a
pending requisition, and how the last purge went."""

from __future__ import annotations

from typing import Any

from custody.site import Site
from custody.timewindow import local_text, now_us, utc_text
from exporters.models import Camera
from requisition.cameras import get_camera
from requisition.holds import HoldBook
from requisition.requisitions import URGENT_US, State

DAY_US = 86_400_000_000
PENDING = (State.RECEIVED, State.APPROVED, State.PROCESSING)


def status(site: Site) -> dict[str, Any]:
    now = now_us()
    with site.db.read() as cur:
        holds = len(HoldBook().refresh(cur).active())
        cur.execute(
            "SELECT r.id, r.state, r.pv_number, w.camera_id, w.start_us, w.end_us "
            f"FROM requisition r JOIN requisition_window w ON w.requisition_id = r.id "
            f"WHERE r.state IN ({', '.join('?' * len(PENDING))}) ORDER BY w.start_us",
            [s.value for s in PENDING],
        )
        pending = cur.fetchall()
        last = cur.execute(
            "SELECT id, now_utc, state, segments, bytes, failures, certificate FROM purge_run "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    expiring = []
    cameras: dict[str, Camera] = {}  # each camera read once, however many windows it has
    for rid, state, pv, camera_id, start, end in pending:
        if camera_id not in cameras:
            cameras[camera_id] = get_camera(site, camera_id)
        camera = cameras[camera_id]
        expires = start + camera.retention_days * DAY_US
        if expires - now < URGENT_US:
            expiring.append(
                {
                    "requisition": rid,
                    "state": state,
                    "pv_number": pv,
                    "camera": camera_id,
                    "from": local_text(start, camera.timezone),
                    "to": local_text(end, camera.timezone),
                    "expires_utc": utc_text(expires),
                }
            )
    return {
        "active_holds": holds,
        "expiring_within_72h": expiring,
        "last_purge": None
        if last is None
        else dict(
            zip(
                ["run", "as_of_utc", "state", "segments", "bytes", "failures", "certificate"],
                last,
                strict=True,
            )
        ),
    }
