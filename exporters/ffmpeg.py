"""ffmpeg: which binary, how to run it, how to read what it wrote.

The binary is the one on PATH, else the static build inside the `imageio-ffmpeg` wheel,
so that `pip install` alone gives a working scelle. That build has no ffprobe: files
are probed with PyAV (`av`), which opens a container in ~2 ms from its own wheel (it is
imported when a file is first read: a command that reads no video never pays the tens
of milliseconds its import takes).
Commands are built with ffmpeg-python and run here, so that progress is reported and
errors come back as one line.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from custody.errors import CorruptSegmentError, FfmpegError
from custody.i18n import N_, _

if TYPE_CHECKING:
    import av.container

Progress = Callable[[float], None]  # fraction done, 0..1

_FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
]


@functools.cache
def ffmpeg_exe() -> str:
    """The ffmpeg on PATH, else the one shipped in the imageio-ffmpeg wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise FfmpegError(
            _("no ffmpeg on PATH and none bundled"), hint="pip install imageio-ffmpeg"
        ) from exc


@functools.cache
def font_file() -> str | None:
    """A TrueType font for burned-in text (DejaVu is on Debian by default)."""
    return next((f for f in _FONTS if Path(f).is_file()), None)


def drawtext_escape(label: str) -> str:
    """Make a label literal inside a drawtext text file (`\\` and `%` are special)."""
    return label.replace("\\", "\\\\").replace("%", "\\%")


def run(
    args: Sequence[str],
    *,
    total_us: int | None = None,
    progress: Progress | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ffmpeg with `args`; report progress; raise FfmpegError with its first error line."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats"]
    cmd += ["-progress", "pipe:1", *args]
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, env=full_env, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if progress and total_us and line.startswith("out_time_us="):
                value = line.partition("=")[2].strip()
                if value.isdigit():
                    progress(min(1.0, int(value) / total_us))
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace").strip().splitlines()
            raise FfmpegError(
                _("ffmpeg failed ({code}): {message}").format(
                    code=code, message=text[-1] if text else _("no message")
                )
            )
    if progress:
        progress(1.0)


@dataclass(frozen=True)
class Probe:
    duration_us: int  # of the video stream, as the container states it
    frames: int
    rate: Fraction
    width: int
    height: int
    codec: str
    created_us: int | None = None  # the container's creation_time, when the recorder wrote one


def _creation_time(metadata: dict[str, str]) -> int | None:
    """The container's own `creation_time` (UTC, ISO 8601), as MP4 and Matroska keep it."""
    written = metadata.get("creation_time", "")
    try:
        moment = datetime.fromisoformat(written.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None or moment.year < 2000:  # MP4's zero date is 1904: none written
        return None
    return round(moment.timestamp() * 1_000_000)


class UnreadableVideoError(CorruptSegmentError):
    """A file that does not read as video, said in the user's language; `english` says
    it in English, as a manifest records it (a signed file does not change with the
    language of whoever made it)."""

    def __init__(self, english: str, **values: object) -> None:
        super().__init__(_(english).format(**values))
        self.english = english.format(**values)


Source = Path | BinaryIO  # a path, or a file already opened safely (custody.files.open_beneath)


def _open(source: Source) -> av.container.InputContainer:
    """A container on `source`; an open file is read from its start, by descriptor, so
    that what is probed is the file that was opened, whatever its path now names."""
    import av

    if isinstance(source, Path):
        return av.open(str(source), mode="r")
    source.seek(0)
    return av.open(source, mode="r")


def probe(source: Source) -> Probe:
    """Open a video file and read its video stream's facts; CorruptSegmentError if unreadable."""
    import av

    try:
        with _open(source) as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                duration = int(stream.duration * stream.time_base * 1_000_000)
            elif container.duration is not None:
                duration = int(container.duration)
            else:
                raise UnreadableVideoError(N_("no duration"))
            return Probe(
                duration_us=duration,
                frames=stream.frames,
                rate=Fraction(stream.average_rate or 0),
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                codec=stream.codec_context.name,
                created_us=_creation_time(dict(container.metadata)),
            )
    except IndexError as exc:
        raise UnreadableVideoError(N_("not readable video (no video stream)")) from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise UnreadableVideoError(
            N_("not readable video ({reason})"), reason=_reason(exc)
        ) from exc


def check_readable(source: Source) -> Probe:
    """Probe, then read every packet (no decoding): catches truncated and garbled files."""
    import av

    facts = probe(source)
    try:
        with _open(source) as container:
            count = sum(1 for p in container.demux(video=0) if p.size)
    except (av.error.FFmpegError, OSError) as exc:
        raise UnreadableVideoError(N_("damaged ({reason})"), reason=_reason(exc)) from exc
    if facts.frames and count < facts.frames:
        raise UnreadableVideoError(
            N_("truncated: {count} of {frames} frames"), count=count, frames=facts.frames
        )
    return facts


def _reason(exc: BaseException) -> str:
    """The library's reason without the file path it repeats (FFmpeg's own words)."""
    return str(getattr(exc, "strerror", None) or exc).strip()
