"""Placing files whose local-time name the autumn change makes ambiguous.

When the clocks go back, a recorder naming files in local time writes the same wall
times twice: `02:30:00.mkv` may be 00:30 UTC or 01:30 UTC. The name cannot say which,
so the file's own timing does, in this order of trust:

1. the media's own clock: the container's `creation_time` (UTC), when the recorder
   wrote one, near one of the two instants;
2. when the recorder finished writing the file (its modification time): at most five
   minutes after the end of exactly one of the two, never before it;
3. the order the recorder wrote the files in: sorted by modification time, the names of
   the repeated hour rise, fall back once, and rise again; the files before the fall
   are the first pass. Taken only when every file's modification time then sits at the
   same distance from its end (files written live by a recorder whose file clock is
   off), not when a copy stamped them all at once.

A file none of these places is not indexed: it is reported, never guessed. What was
placed is stated on every export that holds it (exporters/index.py, coverage_json).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from exporters.stores.base import SegmentName

WRITTEN_LIVE_SPREAD_US = 120_000_000  # how evenly live writing stamps files (order rule)
SLACK_US = 2_000_000  # clock granularity around a stated instant
WRITE_LAG_US = 300_000_000  # how long after its end a recorder may close a segment


class Basis(StrEnum):
    MEDIA = "media"  # the container's creation_time
    WRITTEN = "written"  # the file's modification time
    ORDER = "order"  # the order the recorder wrote the files in


@dataclass(frozen=True)
class Ambiguous:
    """A file whose name says two instants, and its own timing."""

    rel: str
    name: SegmentName
    duration_us: int
    created_us: int | None
    mtime_us: int

    @property
    def candidates(self) -> tuple[int, ...]:
        return (self.name.start_us, *self.name.others)


def _within(candidates: Sequence[int], target: int, low: int, high: int) -> int | None:
    """The one candidate `c` with c + low <= target <= c + high; None if none or both.
    One-sided on purpose: a recorder stamps a file when it starts or finishes it, never
    before, so a sync or a copy that stamps it later matches neither. (A file clock off by
    exactly the change's hour would still match the other one: the media's clock, when it
    states one, is asked first.)"""
    found = [c for c in candidates if c + low <= target <= c + high]
    return found[0] if len(found) == 1 else None


def place(files: Sequence[Ambiguous]) -> dict[str, tuple[int, Basis]]:
    """The files that can be placed: path -> (start, what placed it)."""
    placed: dict[str, tuple[int, Basis]] = {}
    for f in files:
        if f.created_us is not None:  # the start (or the end) the recorder wrote in it
            start = _within(f.candidates, f.created_us, -SLACK_US, f.duration_us + SLACK_US)
            if start is not None:
                placed[f.rel] = (start, Basis.MEDIA)
                continue
        # Finished writing when the segment ended, or shortly after; never before.
        start = _within(
            f.candidates, f.mtime_us, f.duration_us - SLACK_US, f.duration_us + WRITE_LAG_US
        )
        if start is not None:
            placed[f.rel] = (start, Basis.WRITTEN)
    rest = sorted((f for f in files if f.rel not in placed), key=lambda f: (f.mtime_us, f.rel))
    placed.update(_by_order(rest))
    return placed


def _by_order(files: Sequence[Ambiguous]) -> dict[str, tuple[int, Basis]]:
    """Split the files, in the order written, where their names fall back once."""
    if len(files) < 2 or any(len(f.candidates) != 2 for f in files):
        return {}
    falls = [i for i in range(1, len(files)) if files[i].name.start_us < files[i - 1].name.start_us]
    if len(falls) != 1:
        return {}
    starts = [f.candidates[0 if i < falls[0] else 1] for i, f in enumerate(files)]
    lags = [f.mtime_us - (s + f.duration_us) for f, s in zip(files, starts, strict=True)]
    if max(lags) - min(lags) > WRITTEN_LIVE_SPREAD_US:
        return {}
    return {f.rel: (s, Basis.ORDER) for f, s in zip(files, starts, strict=True)}
