"""Master copy: the native segments, bit for bit, verified after writing.

Each segment is opened in its store without following any link (a segment replaced by
a link to `/etc/shadow`, a FIFO or a device is never read), copied by the kernel
(`copy_file_range`, as `cp` does: no trip through user space), then the *copy* is read
back and hashed, on a second thread while the next segment is being copied, and
compared with the hash taken at ingest. What is checked is therefore what the export
holds, not what we meant to write. We measured the alternative, hashing in user space
while copying (one read of each byte): on this hardware the user-space copy is slower
than the kernel's by more than the re-read costs, and the re-read comes from the page
cache (bench/extract.py).

A copy that does not match its ingest hash is deleted at once: nothing altered is ever
delivered as evidence. The segment is *withheld*, and the footage it held becomes a gap
of its kind (`verified_coverage`), stated on the manifest, the cover sheet and by
`scelle verify`. The working copies are then made from the verified master copies, in
the export being built, never from the store again: what was checked is what is used.
Each copy is fsynced on a background thread while the next ones are copied; the
function returns once all are durable.
"""

from __future__ import annotations

import errno
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from custody.errors import CorruptSegmentError, FootageAlteredError, IntegrityError
from custody.files import fsync_dir, fsync_file
from custody.i18n import _, ngettext
from exporters.ffmpeg import check_readable
from exporters.index import (
    Coverage,
    SegmentRef,
    Unusable,
    altered,
    corrupt,
    coverage_of,
    open_store_file,
    sha256_file,
    sha256_stream,
    unreachable,
)

_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}


@dataclass(frozen=True)
class MasterFile:
    segment: SegmentRef  # as indexed, in its store
    dest: Path
    size: int
    sha256: str  # of the copy, read back after writing: the ingest hash


@dataclass(frozen=True)
class MasterCopy:
    files: tuple[MasterFile, ...]  # verified: bit for bit what was ingested
    withheld: tuple[Unusable, ...]  # gone, not a regular file, or altered: not copied

    def check(self) -> None:
        """Raise FootageAlteredError if any segment could not be copied as it was ingested."""
        if self.withheld:
            names = [u.segment.path for u in self.withheld]
            raise FootageAlteredError(
                ngettext(
                    "{count} segment(s) missing or changed since ingest: {names}",
                    "{count} segment(s) missing or changed since ingest: {names}",
                    len(names),
                ).format(count=len(names), names=", ".join(names))
            )


def copy_file(src: Path, dest: Path) -> None:
    """Copy `src` to a new file `dest` (never overwriting), in the kernel when it can."""
    with src.open("rb", buffering=0) as source:
        copy_open(source, dest)


def copy_open(source: BinaryIO, dest: Path) -> None:
    """Copy the open file `source`, from its start, to a new file `dest`."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        source.seek(0)
        os.posix_fadvise(source.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        try:
            while os.copy_file_range(source.fileno(), fd, 1 << 62):
                pass
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            source.seek(0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            with os.fdopen(os.dup(fd), "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    finally:
        os.close(fd)


def _source_intact(seg: SegmentRef) -> bool:
    """Whether the store still holds the ingested bytes (after its copy did not)."""
    try:
        with open_store_file(seg.root, seg.path) as handle:
            return altered(seg, *sha256_stream(handle)) is None
    except (OSError, ValueError):
        return False


def extract_master(segments: tuple[SegmentRef, ...], dest_dir: Path) -> MasterCopy:
    """Copy every segment into `dest_dir` under its store-relative name, flattened;
    keep only the copies that read back as their ingest hash."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    copied: list[tuple[SegmentRef, Path, Future[tuple[str, int]], Future[None]]] = []
    withheld: list[Unusable] = []
    files: list[MasterFile] = []
    with ThreadPoolExecutor(max_workers=1) as verifier, ThreadPoolExecutor(2) as flusher:
        for seg in segments:
            try:
                source = open_store_file(seg.root, seg.path)
            except (OSError, ValueError) as exc:
                withheld.append(unreachable(seg, exc))
                continue
            dest = dest_dir / seg.path.replace("/", "_")
            with source:
                copy_open(source, dest)
            copied.append(
                (
                    seg,
                    dest,
                    verifier.submit(sha256_file, dest),
                    flusher.submit(fsync_file, dest),  # write-back overlaps the copying
                )
            )
        for seg, dest, verified, flushed in copied:
            digest, size = verified.result()
            flushed.result()
            changed = altered(seg, digest, size)
            if changed is None:
                files.append(MasterFile(seg, dest, size, digest))
                continue
            dest.unlink()  # never delivered, not even as a file nobody lists
            if _source_intact(seg):
                raise IntegrityError(
                    _(
                        "the master copy of {segment} does not read back as its source: "
                        "the disk of {disk} wrote it wrong; nothing was exported"
                    ).format(segment=seg.path, disk=dest_dir.parent),
                    hint=_("check that disk, then extract again"),
                )
            withheld.append(changed)
    fsync_dir(dest_dir)
    return MasterCopy(tuple(files), tuple(sorted(withheld, key=lambda u: u.segment.start_us)))


def verified_coverage(found: Coverage, master: MasterCopy) -> Coverage:
    """`found`'s coverage recomputed from what the master copy holds: spans only over
    verified copies that read as video (each now pointing at its copy, from which the
    working copy is made), every other indexed segment a gap of its kind."""
    usable: list[SegmentRef] = []
    unusable = list(master.withheld)
    for copy in master.files:
        try:
            check_readable(copy.dest)
        except CorruptSegmentError as exc:
            unusable.append(corrupt(copy.segment, exc))  # kept in master/: as recorded
            continue
        usable.append(replace(copy.segment, file=copy.dest))
    return coverage_of(found.camera, found.window, found.segments, usable, unusable)
