"""Footage exported by another system (a video management system's own clip, its player,
its signature files), taken into custody bit for bit.

On intake every file is read once, hashed as it is copied into the site, read back and
compared, then asked whether ffmpeg can read it as video (`check_readable`: every packet
demuxed). At extraction the kept copy is copied again into the export and compared with
its intake hash (what is no longer those bytes is withheld and named, as a segment
would be), and each video gets a working copy: the whole clip re-encoded to H.264 MP4,
never trimmed (its times are the other system's). What ffmpeg cannot read is delivered
as it came, and stated.

Nothing here touches a database: requisition/attachments.py records the intake.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

from custody.errors import (
    CorruptSegmentError,
    DiskFullError,
    FfmpegError,
    InputError,
    IntegrityError,
)
from custody.files import DISK_FULL, NotRegularFileError, fsync_dir, open_beneath
from custody.i18n import _
from exporters import ffmpeg
from exporters.ffmpeg import UnreadableVideoError, check_readable
from exporters.working import H264_MP4

CHUNK = 8 << 20
RESERVE = 64 << 20  # room left on the site's disk after an intake


@dataclass(frozen=True)
class AttachedFile:
    """One file as it was taken in: its path within the attachment, size, SHA-256, and
    what ffmpeg read of it (`video`), or why it could not (`not_video`, English: a
    signed manifest does not change with the language of whoever made it)."""

    path: str
    size: int
    sha256: str
    video: dict[str, Any] | None
    not_video: str | None

    def record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "video": self.video,
            "not_video": self.not_video,
        }


def sources(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Every file to take in, with its path within the attachment: a file by its name, a
    folder's files under the folder's name. A link or a special file is refused (it
    could lead anywhere); so are two files that would land on the same path."""
    found: list[tuple[Path, str]] = []

    def unreadable(exc: OSError) -> None:  # a folder not listed would be left out silently
        raise InputError(
            _("{path} cannot be read: {reason}").format(path=exc.filename, reason=exc.strerror)
        )

    for given in paths:
        try:
            mode = os.lstat(given).st_mode
        except FileNotFoundError as exc:
            raise InputError(_("{path}: no such file or folder").format(path=given)) from exc
        own = given.resolve().name  # `..` or `.` as given names the folder it means
        if stat.S_ISREG(mode):
            found.append((given, own))
        elif stat.S_ISDIR(mode):
            for root, dirs, files in os.walk(given, onerror=unreadable):
                for name in sorted(dirs + files):
                    path = Path(root) / name
                    kind = os.lstat(path).st_mode
                    if stat.S_ISREG(kind):
                        found.append((path, str(Path(own) / path.relative_to(given))))
                    elif not stat.S_ISDIR(kind):
                        raise InputError(
                            _("{path} is a link or a special file: not taken in").format(path=path)
                        )
        else:
            raise InputError(
                _("{path} is a link or a special file: not taken in").format(path=given)
            )
    if not found:
        raise InputError(_("no file to attach"))
    twice = sorted(n for n, times in Counter(name for _path, name in found).items() if times > 1)
    if twice:
        raise InputError(
            _("two files would both be {name}: attach them apart").format(name=twice[0])
        )
    for _path, name in found:
        try:
            name.encode()
        except UnicodeEncodeError as exc:
            raise InputError(_("{name}: a file name that is not UTF-8").format(name=name)) from exc
        parts = Path(name).parts
        if not parts or any(p in ("", ".", "..") for p in parts) or not name.isprintable():
            # A control character would break SHA256SUMS' one line per file.
            raise InputError(_("{name}: not a plain file name").format(name=repr(name)))
    return found


def intake(paths: Sequence[Path], dest: Path) -> list[AttachedFile]:
    """Copy the files into the new directory `dest` (complete, or not there at all)."""
    files = sources(paths)
    needed = sum(os.lstat(p).st_size for p, _name in files) + RESERVE
    dest.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(dest.parent).free < needed:
        raise DiskFullError(
            _("not enough room in {path} to take in {size} bytes").format(
                path=dest.parent, size=f"{needed - RESERVE:,}"
            )
        )
    partial = Path(tempfile.mkdtemp(prefix=".intake-", dir=dest.parent))
    try:
        taken = [_take(source, partial, name) for source, name in files]
        for directory in {(partial / t.path).parent for t in taken}:
            fsync_dir(directory)
        os.rename(partial, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return taken


def _take(source: Path, into: Path, name: str) -> AttachedFile:
    """Copy one file, hashing what is read; read the copy back; ask ffmpeg about it."""
    target = into / name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as reader, target.open("xb") as writer:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise InputError(
                _("{path} is a link or a special file: not taken in").format(path=source)
            )
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    with target.open("rb") as check:
        if hashlib.file_digest(check, "sha256").hexdigest() != digest.hexdigest():
            raise IntegrityError(
                _("{path}: the copy taken in does not read back as what was read").format(
                    path=source
                )
            )
    os.chmod(target, 0o444)
    video, not_video = read_video(target)
    return AttachedFile(name, target.stat().st_size, digest.hexdigest(), video, not_video)


def read_video(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """What ffmpeg reads of the file as video, or why it cannot (English)."""
    try:
        facts = check_readable(path)
    except UnreadableVideoError as exc:
        return None, exc.english
    except CorruptSegmentError as exc:
        return None, str(exc)
    return {
        "codec": facts.codec,
        "width": facts.width,
        "height": facts.height,
        "duration_us": facts.duration_us,
        "frames": facts.frames,
    }, None


@dataclass(frozen=True)
class Attachment:
    """An intake, as its ledger entry recorded it."""

    directory: Path  # the kept copies
    label: str  # the folder name inside the export, e.g. 01-milestone
    facts: dict[str, Any]  # provenance, who took it in and when, the ledger entry
    files: tuple[AttachedFile, ...]


def deliver(attachments: Sequence[Attachment], tmp: Path) -> tuple[list[dict[str, Any]], int]:
    """Copy every attachment into the export being built (`tmp`), compared with its
    intake hash, with a working copy of each video; the manifest's `attachments` and
    how many files were withheld (no longer the bytes taken in)."""
    out, withheld = [], 0
    for attachment in attachments:
        _plain(attachment.label)
        files = []
        for taken in attachment.files:
            _plain(taken.path)
            # `path` stays the file's path within the attachment; `delivered` is where
            # it is in the export (None: withheld, `state` says why).
            shown = taken.record() | {"state": "ok", "delivered": None, "working": None}
            dest = tmp / "attached" / attachment.label / taken.path
            state = _copy_checked(attachment.directory, taken, dest)
            if state != "ok":
                withheld += 1
                shown["state"] = state
            else:
                shown["delivered"] = str(dest.relative_to(tmp))
                if taken.video is not None:
                    working = tmp / "working" / f"attached-{attachment.label}" / taken.path
                    working = working.with_name(working.name + ".mp4")
                    shown["working"] = _working_copy(dest, working, tmp)
            files.append(shown)
        out.append(attachment.facts | {"folder": attachment.label, "files": files})
    return out, withheld


def _plain(relative: str) -> None:
    """A path from a ledger entry names a place inside the export, nowhere else."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise IntegrityError(
            _("an attachment's entry names the path {path!r}: refused").format(path=relative)
        )


def _copy_checked(directory: Path, taken: AttachedFile, dest: Path) -> str:
    """ok, missing (gone from the site, or no longer a regular file) or altered."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = open_beneath(directory, taken.path)
    except (FileNotFoundError, NotRegularFileError, ValueError):
        return "missing"
    with os.fdopen(fd, "rb") as reader, dest.open("xb") as writer:
        left = taken.size + 1  # a kept copy grown since intake must not fill the disk
        while left and (chunk := reader.read(min(CHUNK, left))):
            writer.write(chunk)
            left -= len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    with dest.open("rb") as check:
        intact = hashlib.file_digest(check, "sha256").hexdigest() == taken.sha256
    if not intact:
        dest.unlink()
        return "altered"
    return "ok"


def _working_copy(source: Path, dest: Path, tmp: Path) -> dict[str, Any]:
    """The whole clip as H.264 MP4; if ffmpeg fails on it (but for a full disk), the
    master alone is delivered and the manifest says the working copy failed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".partial")
    output = ffmpeg_python.input(str(source)).video.output(str(part), **H264_MP4)
    try:
        ffmpeg.run(output.get_args())
        with part.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, dest)
    except FfmpegError as exc:
        if any(os.strerror(code) in exc.message for code in DISK_FULL):
            raise
        return {"path": None, "failed": "ffmpeg could not re-encode it"}
    finally:
        part.unlink(missing_ok=True)
    made = ffmpeg.probe(dest)
    return {
        "path": str(dest.relative_to(tmp)),
        "measured_duration_us": made.duration_us,
        "frames": made.frames,
    }
