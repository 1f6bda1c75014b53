"""The burned-in camera label and date-time fit the frame at every resolution (issue 12:
at 320x240 the one line of both ran past the right edge and the seconds were lost).

Real footage at two sizes, real working copies made with and without the burn-in; a
decoded frame of each (PyAV) is compared: the pixels the burn-in changed must lie wholly
inside the frame, clear of its edges."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from custody.site import Site
from exporters.generate import generate_footage
from exporters.index import find, scan
from exporters.working import MARGIN, burn_in_layout, make_working_copies
from requisition.cameras import CameraSpec, add_cameras, get_camera
from tests.conftest import SiteEnv
from tests.footage_helpers import window

NAME = "Place de la Mairie, angle rue Racine"  # a real camera's label is this long
CHANGED = 64  # luma levels: far above what two encodes of the same frames differ by


def luma(path: Path, index: int = 5) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of the luma plane of frame `index`."""
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                gray = frame.reformat(format="gray")
                plane = gray.planes[0]
                data = bytes(plane)
                step = plane.line_size
                rows = [data[y * step : y * step + gray.width] for y in range(gray.height)]
                return gray.width, gray.height, rows
    raise AssertionError(f"{path} has no frame {index}")


def burned_box(
    site: Site, camera_id: str, size: str, out: Path
) -> tuple[int, int, int, int, int, int]:
    """(width, height, left, top, right, bottom) of what the burn-in changed."""
    spec = CameraSpec(camera_id, NAME, "Place de la Mairie", "Villeurbanne", "AP-1", "2029-05-01")
    add_cameras(site, [spec.to_camera(site.settings.home)], "op", "test camera")
    camera = get_camera(site, camera_id)
    span = window("2026-11-20T10:00", "2026-11-20T10:00:02")
    generate_footage(site, camera, span, size=size)
    scan(site, [camera], "op", settle_seconds=0)
    coverage = find(site, camera, span)
    burned = make_working_copies(coverage, out / "burned", burn_in=True)[0].path
    plain = make_working_copies(coverage, out / "plain", burn_in=False)[0].path
    width, height, a = luma(burned)
    _, _, b = luma(plain)
    changed = [
        (x, y) for y in range(height) for x in range(width) if abs(a[y][x] - b[y][x]) > CHANGED
    ]
    assert changed, "nothing was burned in"
    xs, ys = [x for x, _ in changed], [y for _, y in changed]
    return width, height, min(xs), min(ys), max(xs), max(ys)


@pytest.mark.parametrize("size", ["320x240", "1280x720"])
def test_the_burned_in_text_lies_inside_the_frame(
    site_env: SiteEnv, tmp_path: Path, size: str
) -> None:
    camera_id = f"CAM-{size}"
    width, height, left, top, right, bottom = burned_box(site_env.site, camera_id, size, tmp_path)
    assert f"{width}x{height}" == size
    assert left > 0 and top > 0, (left, top)
    assert right < width - 1 and bottom < height - 1, (right, bottom, width, height)
    # Two lines (label, then date-time): the box is taller than one line of the font.
    layout = burn_in_layout(width, height, f"{camera_id} {NAME}")
    assert layout is not None
    assert bottom - top > 1.5 * layout.fontsize
    assert right < width - MARGIN


def test_the_layout_fits_every_width() -> None:
    for width, height in [(176, 144), (320, 240), (640, 480), (1920, 1080), (3840, 2160)]:
        layout = burn_in_layout(width, height, "C-012 " + "W" * 300)
        assert layout is not None
        room = width - 14
        assert len(layout.label) * layout.fontsize * 0.602 <= room, (width, layout)
        assert 26 * layout.fontsize * 0.602 <= room, (width, layout)
        assert layout.label.endswith("…")
