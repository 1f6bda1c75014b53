"""Durable file writes: atomic replacement and fsync'd appends."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from custody.errors import DiskFullError, InvalidStateError
from custody.i18n import _

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
"""What the kernel says when a disk (or the user's quota on it) has no room left."""


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` is a write refused for want of room (ENOSPC or EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


@contextmanager
def full_disk_means(message: str, hint: str) -> Iterator[None]:
    """Turn a full disk inside the block into one DiskFullError the user can act on
    (what was kept, what to do); any other error passes unchanged."""
    try:
        yield
    except OSError as exc:
        if not disk_full(exc):
            raise
        raise DiskFullError(message, hint=hint) from exc


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file written earlier (an fsync on a read-only descriptor flushes it too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """One holder at a time; the kernel drops the lock if the holder dies (flock).
    InvalidStateError(`busy`) if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise InvalidStateError(busy, hint=_("wait for it to finish")) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one.

    A temporary file in the same directory, created with `mode` from the start (a key
    is never readable by others, not even for an instant), fsync, rename, fsync dir.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def append_durable(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Append `data` and fsync it, all or nothing: a short write or a full disk
    (ENOSPC) takes the file back to its former length and raises OSError, so that
    nothing that depends on the append is committed and the file never ends in half a
    record."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)
            os.fsync(fd)
            if exc.filename is None:
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
            raise
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def _walk_beneath(root: Path, relative: str) -> tuple[int, str]:
    """A descriptor of the directory holding `root/relative` and the final name,
    reached without following any symbolic link below `root` (a link planted in a
    recorder's store must never lead scelle to read or delete a file elsewhere)."""
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") for p in parts) or relative.startswith("/"):
        raise ValueError(f"not a plain relative path: {relative!r}")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


class NotRegularFileError(OSError):
    """A path under a store that is a link, a directory, a FIFO or a device."""


def _parent_beneath(root: Path, relative: str) -> tuple[int, str]:
    """_walk_beneath, with a link (or a file) in place of a directory as NotRegularFileError."""
    try:
        return _walk_beneath(root, relative)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotRegularFileError(
                errno.ELOOP, "a directory on the path is a link", relative
            ) from exc
        raise


def open_beneath(root: Path, relative: str) -> int:
    """Open `root/relative` for reading, only if it is a regular file reached without
    following a symbolic link; NotRegularFileError (an OSError) otherwise. The caller closes it.
    O_NONBLOCK: opening a FIFO planted in place of a segment must not hang."""
    parent, name = _parent_beneath(root, relative)
    try:
        return open_in(parent, name, relative)[0]
    finally:
        os.close(parent)


def open_in(directory: int, name: str, shown: str) -> tuple[int, os.stat_result]:
    """Open the file `name` in the directory open as `directory` (from
    `open_directory_beneath`) for reading, only if it is a regular file and not a link
    (NotRegularFileError naming `shown` otherwise); and its status. A scan lists and
    opens a directory's files through one descriptor instead of walking from the store
    root for each file, and reads their times from the file it opened."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFileError(errno.ELOOP, "a symbolic link", shown) from exc
        raise
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise NotRegularFileError(errno.EINVAL, "not a regular file", shown)
    os.set_blocking(fd, True)
    return fd, status


@contextmanager
def directory_beneath(root: Path, relative: str) -> Iterator[int]:
    """A descriptor of the directory `root/relative` ('' for root itself), reached
    without following any symbolic link below root (NotRegularFileError if a link is in the way,
    FileNotFoundError if it is gone): the purge deletes a directory's files through one
    descriptor, then fsyncs it."""
    fd = open_directory_beneath(root, relative)
    try:
        yield fd
    finally:
        os.close(fd)


def open_directory_beneath(root: Path, relative: str) -> int:
    """`directory_beneath`'s descriptor, which the caller closes."""
    if relative:
        return _parent_beneath(root, f"{relative}/x")[0]  # every component, no link followed
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY)


def unlink_at(directory: int, name: str, shown: str) -> bool:
    """Delete the regular file `name` in the directory open as `directory`; False if it
    is gone, NotRegularFileError (naming `shown`) if something else is there (left in place)."""
    try:
        mode = os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(errno.EINVAL, "not a regular file: left in place", shown)
    os.unlink(name, dir_fd=directory)
    return True
