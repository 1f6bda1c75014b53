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

from custody.timewindow import from_us
from exporters import ffmpeg
from exporters.index import Coverage, Span

# Burned in: the camera's label on one line and the corrected local date-time on its own
# line below, in a monospaced font sized from the frame. One line of both at 320x240 lost
# the seconds past the right edge. Every glyph of DejaVu or Liberation Mono advances 0.602
# em, so the longest time line fits whatever the width, and a long label is cut to it.
_MONO_FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
]
MONO_ADVANCE = 0.61  # em per character of those fonts, rounded up
WIDE_ADVANCE = 1.0  # em: what a character may take in a proportional font (W, M)
TIME_CHARS = 26  # "2026-10-25 02:30:00 CEST" is 24; some zones' abbreviations are longer
MARGIN, BORDER = 4, 3  # pixels: from the frame's edges, and the box around the text


@dataclass(frozen=True)
class BurnIn:
    """What is burned into a working copy, fitted to its frame."""

    font: str
    fontsize: int
    label: str  # the camera's label, cut with "…" if it is wider than the frame


# A working copy: H.264 MP4 any player reads, streamable from its start.
H264_MP4 = {
    "vcodec": "libx264",
    "preset": "veryfast",
    "crf": 23,
    "pix_fmt": "yuv420p",
    "movflags": "+faststart",
    "f": "mp4",
}


def burn_in_layout(width: int, height: int, label: str) -> BurnIn | None:
    """The font, its size and the label that fit a `width` x `height` frame; None if no
    font is installed (the copy is then made without burned-in text)."""
    mono = next((f for f in _MONO_FONTS if Path(f).is_file()), None)
    font = mono or ffmpeg.font_file()
    if font is None:
        return None
    advance = MONO_ADVANCE if mono else WIDE_ADVANCE
    room = width - 2 * (MARGIN + BORDER)
    fontsize = max(6, min(max(12, height // 24), int(room / (TIME_CHARS * advance))))
    fits = max(1, int(room / (fontsize * advance)))
    shown = label if len(label) <= fits else label[: fits - 1] + "…"
    return BurnIn(font, fontsize, shown)


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
        frame = ffmpeg.probe(first.file) if burn_in else None
        label = f"{coverage.camera.id} {coverage.camera.name}"
        layout = burn_in_layout(frame.width, frame.height, label) if frame else None
        if layout:
            text = work / "label.txt"
            clock = f"%{{pts:localtime:{span.start_us / 1e6:.6f}:%Y-%m-%d %H\\:%M\\:%S %Z}}"
            text.write_text(f"{ffmpeg.drawtext_escape(layout.label)}\n{clock}")
            video = video.drawtext(
                textfile=str(text),
                fontfile=layout.font,
                x=MARGIN + BORDER,
                y=f"h-th-{MARGIN + BORDER}",
                fontsize=layout.fontsize,
                fontcolor="white",
                box=1,
                boxcolor="black@0.6",
                boxborderw=BORDER,
            )
        output = video.output(str(out), **H264_MP4)
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

        # Scratch inside the export being built: a killed extraction leaves it there,
        # and the next attempt removes the whole unfinished export, not /tmp.
        with tempfile.TemporaryDirectory(prefix=".scratch-", dir=dest_dir) as work:
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
