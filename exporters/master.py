"""Master copy: the native segments, bit for bit, each re-hashed while it is copied.

One read of each byte feeds both the copy and SHA-256 (the hash runs on a second core
while the main thread writes), then the digest is compared with the one taken at
ingest. A mismatch is never passed silently: it is listed in the result, and
`MasterCopy.check()` raises `FootageAltered`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

from custody.errors import FootageAltered
from custody.files import fsync_dir
from exporters.index import SegmentRef

CHUNK = 1 << 20


@dataclass(frozen=True)
class MasterFile:
    segment: SegmentRef
    dest: Path
    size: int
    sha256: str  # of the bytes copied

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


def _hasher(queue: Queue[bytes | None], digest: hashlib._Hash) -> None:
    while (block := queue.get()) is not None:
        digest.update(block)  # releases the GIL for large blocks


def copy_hashed(src: Path, dest: Path) -> tuple[int, str]:
    """Copy `src` to a new file `dest` (refusing to overwrite), hashing the same bytes."""
    digest = hashlib.sha256()
    queue: Queue[bytes | None] = Queue(maxsize=8)
    worker = threading.Thread(target=_hasher, args=(queue, digest), daemon=True)
    worker.start()
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with src.open("rb", buffering=0) as source:
            while block := source.read(CHUNK):
                queue.put(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
                size += len(block)
        os.fsync(fd)
    finally:
        queue.put(None)
        worker.join()
        os.close(fd)
    return size, digest.hexdigest()


def extract_master(segments: tuple[SegmentRef, ...], dest_dir: Path) -> MasterCopy:
    """Copy every segment into `dest_dir` under its store-relative name, flattened."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    files, missing = [], []
    for seg in segments:
        if not seg.file.is_file():
            missing.append(seg)
            continue
        dest = dest_dir / seg.path.replace("/", "_")
        size, digest = copy_hashed(seg.file, dest)
        files.append(MasterFile(seg, dest, size, digest))
    fsync_dir(dest_dir)
    return MasterCopy(tuple(files), tuple(missing))
