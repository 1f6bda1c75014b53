"""Synthetic footage, written into a camera's store as its recorder would write it.

Real ffmpeg: the lavfi `testsrc2` pattern, H.264, with the camera's name and the
*recorder's* local clock burned in (what a real camera shows, offset included). Files
are named from the recorder's clock too. Segments are cut on key frames placed exactly
every segment length, then renamed from their known start (ffmpeg's strftime naming
uses the wall clock, and encoding runs faster than real time). A gap leaves no file;
a corrupt segment keeps its first third and ends in noise, as a dying disk leaves it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from custody.entry import Record
from custody.errors import InputError
from custody.files import fsync_dir
from custody.i18n import _
from custody.site import Site
from custody.timewindow import Window, utc_text
from exporters import ffmpeg
from exporters.index import camera_store
from exporters.models import Camera

SIZE = "320x240"
RATE = 10


@dataclass(frozen=True)
class Generated:
    segments: int
    bytes: int
    spans: tuple[Window, ...]  # reference time
    corrupted: tuple[str, ...]  # store-relative paths


def _spans(window: Window, gaps: Sequence[Window]) -> list[Window]:
    spans = [window]
    for gap in sorted(gaps, key=lambda g: g.start):
        last = spans.pop()
        if gap.start > last.start:
            spans.append(Window(last.start, min(gap.start, last.end)))
        if gap.end < last.end:
            spans.append(Window(max(gap.end, last.start), last.end))
    return [s for s in spans if s.end > s.start]


def _encode_span(
    camera: Camera,
    rec_start: int,
    seconds: float,
    segment: int,
    out: Path,
    progress: Callable[[float], None] | None,
    size: str = SIZE,
    container: str = "mp4",
) -> None:
    video = ffmpeg_python.input(
        f"testsrc2=size={size}:rate={RATE}", f="lavfi", t=f"{seconds:.3f}"
    ).video
    font = ffmpeg.font_file()
    with tempfile.TemporaryDirectory(prefix="scelle-label-") as labels:
        if font:
            label = ffmpeg.drawtext_escape(f"{camera.id} {camera.name}")
            clock = f"%{{pts:localtime:{rec_start / 1e6:.6f}:%Y-%m-%d %H\\:%M\\:%S}}"
            text = Path(labels) / "label.txt"
            text.write_text(f"{label}  {clock}")
            video = video.drawtext(
                textfile=str(text),
                fontfile=font,
                x=4,
                y=4,
                fontsize=14,
                fontcolor="white",
                box=1,
                boxcolor="black@0.6",
            )
        keyint = RATE * segment
        output = video.output(
            str(out / "seg%06d"),
            vcodec="libx264",
            preset="ultrafast",
            pix_fmt="yuv420p",
            g=keyint,
            keyint_min=keyint,
            sc_threshold=0,
            force_key_frames=f"expr:gte(t,n_forced*{segment})",
            f="segment",
            segment_time=segment,
            reset_timestamps=1,
            segment_format=container,
        )
        ffmpeg.run(
            output.get_args(),
            total_us=int(seconds * 1e6),
            progress=progress,
            env={"TZ": camera.timezone},
        )


def _corrupt(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 3)
        handle.write(os.urandom(size - size // 3))


def generate_footage(
    site: Site,
    camera: Camera,
    window: Window,
    *,
    segment_seconds: int | None = None,
    gaps: Sequence[Window] = (),
    corrupt: Sequence[int] = (),
    progress: Callable[[float], None] | None = None,
    size: str = SIZE,
) -> Generated:
    """Write footage of `window` (reference time) into the camera's store, `size` frames
    (WIDTHxHEIGHT: cameras record from CIF to 4K)."""
    store = camera_store(camera)
    segment = segment_seconds or store.default_segment_seconds
    if not 1 <= segment <= 3600:
        raise InputError(_("--segment-seconds must be between 1 and 3600"))
    if window.start % 1_000_000 or window.end % 1_000_000:
        raise InputError(_("generated footage starts and ends on whole seconds"))
    offset = camera.clock_offset_ms * 1000
    spans = _spans(window, gaps)
    if not spans:
        raise InputError(_("the gaps leave no footage to generate"))
    for moment in corrupt:
        if not any(s.start <= moment < s.end for s in spans):
            raise InputError(_("--corrupt must fall inside the generated footage"))
    step = segment * 1_000_000
    for span in spans:  # refuse before writing anything, not halfway
        for start in range(span.start + offset, span.end + offset, step):
            end = min(start + step, span.end + offset)
            if store.segment_path(camera.store_camera, start, end - start).exists():
                raise InputError(
                    _("camera {camera} already has footage at {moment}").format(
                        camera=camera.id, moment=utc_text(start)
                    )
                )
    written: list[tuple[Path, int, int]] = []  # (file, recorder start, recorder end)
    store.root.mkdir(parents=True, exist_ok=True)
    total = sum(s.end - s.start for s in spans)
    done = 0
    for span in spans:
        rec_start, seconds = span.start + offset, (span.end - span.start) / 1e6

        def report(fraction: float, base: int = done, length: int = span.end - span.start) -> None:
            if progress:
                progress((base + fraction * length) / total)

        with tempfile.TemporaryDirectory(dir=store.root, prefix=".generate-") as tmp:
            work = Path(tmp)
            _encode_span(camera, rec_start, seconds, segment, work, report, size, store.container)
            parts = sorted(work.glob("seg*"))
            for i, part in enumerate(parts):
                start = rec_start + i * segment * 1_000_000
                end = min(start + segment * 1_000_000, span.end + offset)
                dest = store.segment_path(camera.store_camera, start, end - start)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(part, dest)
                # A recorder last touches a segment when it finishes recording it.
                finished = (end - offset) * 1000
                os.utime(dest, ns=(finished, finished))
                written.append((dest, start, end))
        done += span.end - span.start
    corrupted = []
    for moment in corrupt:
        rec = moment + offset
        target = next(f for f, s, e in written if s <= rec < e)
        stamp = target.stat().st_mtime_ns
        _corrupt(target)
        os.utime(target, ns=(stamp, stamp))
        corrupted.append(str(target.relative_to(store.root)))
    for directory in {f.parent for f, _start, _end in written}:
        fsync_dir(directory)
    made = Generated(
        segments=len(written),
        bytes=sum(f.stat().st_size for f, _start, _end in written),
        spans=tuple(spans),
        corrupted=tuple(corrupted),
    )
    site.ledger.append(
        site.login,
        Record(
            "footage.generate",
            {"camera": camera.id, "from": utc_text(window.start), "to": utc_text(window.end)},
            _("synthetic test footage written into the camera's store"),
            data={
                "segments": made.segments,
                "bytes": made.bytes,
                "gaps": [[utc_text(g.start), utc_text(g.end)] for g in gaps],
                "corrupted": list(made.corrupted),
            },
        ),
    )
    return made
