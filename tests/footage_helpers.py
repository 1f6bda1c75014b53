"""Shared helpers for footage tests: cameras on a real site, real generated footage."""

from __future__ import annotations

from pathlib import Path

from custody.site import Site
from custody.timewindow import Window, parse_window
from exporters.models import Camera
from requisition.cameras import CameraSpec, add_cameras, get_camera

ZONE = "Europe/Paris"


def new_site(home: Path, database_url: str) -> Site:
    """A test site in `home` (named .../site) on `database_url`, with its agents."""
    from tests.conftest import make_site

    assert home.name == "site"
    return make_site(home.parent, database_url=database_url).site


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


def fake_segments(site: Site, camera: Camera, start_us: int, count: int, seconds: int = 60) -> None:
    """`count` small files named as the camera's recorder names segments, indexed: for
    tests of what the purge keeps and deletes, where nobody plays the footage."""
    from exporters.index import camera_store, scan

    store = camera_store(camera)
    for i in range(count):
        begin = start_us + i * seconds * 1_000_000
        path = store.segment_path(camera.store_camera, begin, seconds * 1_000_000)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"segment {camera.id} {begin}\n".encode())
    scan(site, [camera], site.login, settle_seconds=0)
