"""Master copy: the native segments, bit for bit, verified after writing.

Each segment is copied by the kernel (`copy_file_range`, as `cp` does: no trip through
user space), then the *copy* is read back and hashed, on a second thread while the next
segment is being copied, and compared with the hash taken at ingest. What is checked is
therefore what the export holds, not what we meant to write. We measured the
alternative, hashing in user space while copying (one read of each byte): on this
hardware the user-space copy is slower than the kernel's by more than the re-read
costs, and the re-read comes from the page cache (bench/extract.py).

A mismatch is never passed silently: it is listed in the result, and
`MasterCopy.check()` raises `FootageAltered`. Each copy is fsynced on a background
thread while the next ones are copied; the function returns once all are durable.
"""

from __future__ import annotations

import errno
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from custody.errors import FootageAltered
from custody.files import fsync_dir, fsync_file
from exporters.index import SegmentRef, sha256_file

_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}


@dataclass(frozen=True)
class MasterFile:
    segment: SegmentRef
    dest: Path
    size: int
    sha256: str  # of the copy, read back after writing

    @property
    def intact(self) -> bool:
        return self.sha256 == self.segment.sha256 and self.size == self.segment.size


@dataclass(frozen=True)
class MasterCopy:
    files: tuple[MasterFile, ...]
    missing: tuple[SegmentRef, ...]  # indexed at ingest, gone from the store since

    @property
    def altered(self) -> tuple[MasterFile, ...]:
        return tuple(f for f in self.files if not f.intact)

    def check(self) -> None:
        """Raise FootageAltered if any segment is not, bit for bit, what was ingested."""
        if self.altered or self.missing:
            names = [f.segment.path for f in self.altered] + [s.path for s in self.missing]
            raise FootageAltered(
                f"{len(names)} segment(s) missing or changed since ingest: {', '.join(names)}"
            )


def copy_file(src: Path, dest: Path) -> None:
    """Copy `src` to a new file `dest` (never overwriting), in the kernel when it can."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with src.open("rb", buffering=0) as source:
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


def extract_master(segments: tuple[SegmentRef, ...], dest_dir: Path) -> MasterCopy:
    """Copy every segment into `dest_dir` under its store-relative name, flattened."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    copied: list[tuple[SegmentRef, Path, Future[tuple[str, int]]]] = []
    missing: list[SegmentRef] = []
    flushes: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1) as verifier, ThreadPoolExecutor(2) as flusher:
        for seg in segments:
            if not seg.file.is_file():
                missing.append(seg)
                continue
            dest = dest_dir / seg.path.replace("/", "_")
            copy_file(seg.file, dest)
            copied.append((seg, dest, verifier.submit(sha256_file, dest)))
            flushes.append(flusher.submit(fsync_file, dest))  # write-back overlaps the copying
        files = []
        for seg, dest, verified in copied:
            digest, size = verified.result()
            files.append(MasterFile(seg, dest, size, digest))
        for flushed in flushes:
            flushed.result()
    fsync_dir(dest_dir)
    return MasterCopy(tuple(files), tuple(missing))
