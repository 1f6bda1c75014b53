"""Working copies: playable H.264 MP4, one file per continuous span, trimmed to the window.

Re-encode mode cuts on frames (ffmpeg's `trim` filter, after decoding), so the copy
lasts its span to within one frame, and can burn in the camera label and the corrected
local date-time (reference clock, the camera's time zone, with CET/CEST shown). Stream
copy mode is fast and cuts on key frames: it may start a little before the window.
Neither mode invents frames: a gap in the footage is a break between files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import ffmpeg as ffmpeg_python

from exporters import ffmpeg
from exporters.index import Coverage, Span
from requisition.timewindow import from_us


@dataclass(frozen=True)
class WorkingFile:
    span: Span
    path: Path
    probe: ffmpeg.Probe  # measured on the written file, not computed


def _concat_list(span: Span, offset_us: int, directory: Path, *, cut: bool) -> Path:
    """An ffconcat list of the span's segments; with `cut`, in and out points on the
    first and last (the demuxer then keeps the whole group of pictures before the in
    point: stream copy cannot start between key frames)."""
    listing = directory / "segments.txt"
    lines = ["ffconcat version 1.0"]
    start, end = span.start_us + offset_us, span.end_us + offset_us
    for seg in span.segments:
        quoted = str(seg.file).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        if cut and seg.start_us < start:
            lines.append(f"inpoint {(start - seg.start_us) / 1e6:.6f}")
        if cut and seg.end_us > end:
            lines.append(f"outpoint {(end - seg.start_us) / 1e6:.6f}")
    listing.write_text("\n".join(lines) + "\n")
    return listing


def _name(coverage: Coverage, span: Span) -> str:
    zone = ZoneInfo(coverage.camera.timezone)
    start = from_us(span.start_us).astimezone(zone)
    end = from_us(span.end_us).astimezone(zone)
    return f"{coverage.camera.id}_{start:%Y%m%dT%H%M%S%z}_{end:%Y%m%dT%H%M%S%z}.mp4"


def _render(
    coverage: Coverage,
    span: Span,
    out: Path,
    work: Path,
    *,
    burn_in: bool,
    stream_copy: bool,
    progress: Callable[[float], None] | None,
) -> None:
    first = span.segments[0]
    inpoint = (span.start_us + coverage.offset_us - first.start_us) / 1e6
    duration = (span.end_us - span.start_us) / 1e6
    listing = _concat_list(span, coverage.offset_us, work, cut=stream_copy)
    if stream_copy:
        stream = ffmpeg_python.input(str(listing), f="concat", safe=0)
        output = stream.output(str(out), c="copy", an=None, f="mp4", movflags="+faststart")
    else:
        video = ffmpeg_python.input(str(listing), f="concat", safe=0).video
        video = video.trim(start=f"{inpoint:.6f}", duration=f"{duration:.6f}")
        video = video.setpts("PTS-STARTPTS")
        font = ffmpeg.font_file()
        if burn_in and font:
            text = work / "label.txt"
            label = ffmpeg.drawtext_escape(f"{coverage.camera.id} {coverage.camera.name}")
            clock = f"%{{pts:localtime:{span.start_us / 1e6:.6f}:%Y-%m-%d %H\\:%M\\:%S %Z}}"
            text.write_text(f"{label}  {clock}")
            video = video.drawtext(
                textfile=str(text),
                fontfile=font,
                x=4,
                y="h-th-4",
                fontsize=max(12, ffmpeg.probe(first.file).height // 24),
                fontcolor="white",
                box=1,
                boxcolor="black@0.6",
                boxborderw=3,
            )
        output = video.output(
            str(out),
            vcodec="libx264",
            preset="veryfast",
            crf=23,
            pix_fmt="yuv420p",
            movflags="+faststart",
            f="mp4",
        )
    args = output.get_args()
    ffmpeg.run(
        args,
        total_us=span.end_us - span.start_us,
        progress=progress,
        env={"TZ": coverage.camera.timezone},
    )


def make_working_copies(
    coverage: Coverage,
    dest_dir: Path,
    *,
    burn_in: bool = True,
    stream_copy: bool = False,
    progress: Callable[[float], None] | None = None,
) -> list[WorkingFile]:
    """One MP4 per span of `coverage` in `dest_dir`, each written whole or not at all."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    total = sum(s.end_us - s.start_us for s in coverage.spans) or 1
    done = 0
    made: list[WorkingFile] = []
    for span in coverage.spans:
        out = dest_dir / _name(coverage, span)
        part = out.with_name(out.name + ".partial")
        length = span.end_us - span.start_us

        def report(fraction: float, base: int = done, length: int = length) -> None:
            if progress:
                progress((base + fraction * length) / total)

        with tempfile.TemporaryDirectory(prefix="scelle-work-") as work:
            try:
                _render(
                    coverage,
                    span,
                    part,
                    Path(work),
                    burn_in=burn_in,
                    stream_copy=stream_copy,
                    progress=report,
                )
                with part.open("rb") as handle:
                    os.fsync(handle.fileno())
                os.replace(part, out)
            finally:
                part.unlink(missing_ok=True)
        made.append(WorkingFile(span, out, ffmpeg.probe(out)))
        done += length
    return made
