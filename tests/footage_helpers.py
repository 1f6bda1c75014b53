"""Shared helpers for footage tests: cameras on a real site, real generated footage."""

from __future__ import annotations

from pathlib import Path

from custody.config import load_settings
from custody.site import Site, init_site
from requisition.cameras import CameraSpec, add_cameras, get_camera
from requisition.models import Camera
from requisition.timewindow import Window, parse_window

ZONE = "Europe/Paris"


def new_site(home: Path) -> Site:
    settings = load_settings(
        {"home": str(home), "site_name": "csv.test"}, environ={"SCELLE_AGENT": "op"}
    )
    site, _ = init_site(settings, b"footage tests")
    return site


def camera(site: Site, camera_id: str, **options: str) -> Camera:
    spec = CameraSpec(
        camera_id,
        f"Camera {camera_id}",
        "Rue de la République",
        "Villeurbanne",
        "AP-2024-117",
        "2029-05-01",
        **options,
    )
    add_cameras(site, [spec.to_camera(site.settings.home)], "op", "test camera")
    return get_camera(site, camera_id)


def window(start: str, end: str) -> Window:
    return parse_window(start, end, ZONE, max_hours=48)
