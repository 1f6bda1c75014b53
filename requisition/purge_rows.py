"""The segment rows a retention purge deals with, and what vouches for them.

What decides is what the ledger proves, not what a table says: a camera's retention and
store are those of its `camera.add` entry (a register row edited since stops the purge of
that camera); each segment row is checked against the name the recorder gave its file
and against the Merkle root its ingest entry recorded, before its file is deleted; the
holds are read through the audit index, which must index every entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from custody import merkle
from custody.db import Cursor
from custody.errors import IntegrityError
from custody.ledger import decode_entry
from custody.site import Site
from exporters.index import NewSegment
from exporters.stores import StoreKind, open_store
from requisition.timewindow import utc_text


@dataclass(frozen=True)
class Doomed:
    """A segment the purge means to destroy (times in the recorder's clock)."""

    segment_id: int
    camera_id: str
    root: Path
    path: str
    start_us: int
    end_us: int
    size: int
    sha256: str
    batch_id: int
    offset_us: int  # recorder clock minus reference clock

    def record(self) -> bytes:
        """The Merkle leaf of a destroyed segment: `path\\nsize\\nsha256\\nstart_us` (a
        fixed line format: a million of them are hashed in a purge)."""
        return f"{self.path}\n{self.size}\n{self.sha256}\n{self.start_us}".encode()


def merkle_root(items: Sequence[Doomed]) -> str:
    leaves = [merkle.leaf_hash(d.record()) for d in items]
    return merkle.levels_root(merkle.tree_levels(leaves), len(leaves)).hex()


def entries_about(cur: Cursor, action: str, column: str, value: str) -> list[dict[str, Any]]:
    """Entries of `action` about a camera or a requisition, decoded from their bytes."""
    if column == "camera":
        cur.execute(
            "SELECT e.body FROM ledger_audit_camera c JOIN ledger_audit a ON a.seq = c.seq "
            "JOIN ledger_entry e ON e.seq = a.seq WHERE c.camera = ? AND a.action = ? "
            "ORDER BY a.seq",
            [value, action],
        )
    else:
        cur.execute(
            "SELECT e.body FROM ledger_audit a JOIN ledger_entry e ON e.seq = a.seq "
            "WHERE a.requisition = ? AND a.action = ? ORDER BY a.seq",
            [value, action],
        )
    return [decode_entry(bytes(body)) for (body,) in cur.fetchall()]


_CAMERA_FACTS = ("retention_days", "store_kind", "store_path", "store_camera", "clock_offset_ms")


@dataclass(frozen=True)
class CameraFacts:
    id: str
    retention_days: int
    store_kind: str
    store_path: str
    store_camera: str
    clock_offset_ms: int


def camera_facts(cur: Cursor) -> tuple[list[CameraFacts], dict[str, str]]:
    """Every camera as its `camera.add` entry recorded it; cameras whose register row says
    otherwise are refused (with why): their footage is not purged on an edited row."""
    cur.execute(f"SELECT id, {', '.join(_CAMERA_FACTS)} FROM camera ORDER BY id")
    rows = cur.fetchall()
    facts, refused = [], {}
    for row in rows:
        camera_id = row[0]
        added = entries_about(cur, "camera.add", "camera", camera_id)
        if not added:
            refused[camera_id] = "no camera.add entry in the ledger"
            continue
        data = added[-1].get("data", {})
        differs = [
            name
            for name, value in zip(_CAMERA_FACTS, row[1:], strict=True)
            if data.get(name) != value
        ]
        if differs:
            refused[camera_id] = (
                f"its register row differs from its ledger entry ({', '.join(differs)})"
            )
            continue
        facts.append(CameraFacts(camera_id, *row[1:]))
    return facts, refused


def check_index(cur: Cursor) -> None:
    """The holds are read through the audit index: it must index every entry."""
    (indexed,) = cur.execute("SELECT COUNT(*) FROM ledger_audit").fetchone()
    (size,) = cur.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_entry").fetchone()
    if int(indexed) != int(size):
        raise IntegrityError(
            f"the ledger's audit index holds {indexed} rows for {size} entries: refusing to "
            "purge on an index that could hide a hold",
            hint="run 'scelle ledger verify --audit-index'",
        )


def _named_as_recorded(camera: CameraFacts, item: Doomed) -> bool:
    """The row's camera and start are what the recorder's file name says."""
    store = open_store(StoreKind(camera.store_kind), Path(camera.store_path))
    rel = PurePosixPath(item.path)
    if ".." in rel.parts or rel.is_absolute() or len(rel.parts) < 2:
        return False
    name = store.parse(store.root / rel.parent, rel.name)
    if name is None or name.start_us != item.start_us:
        return False
    if name.duration_us is not None and item.start_us + name.duration_us != item.end_us:
        return False
    if StoreKind(camera.store_kind) is StoreKind.FRIGATE:
        return rel.parts[0] == "recordings" and rel.parts[-2] == camera.store_camera
    return rel.parts[0] == camera.store_camera


def _ingested_as_recorded(cur: Cursor, batch_id: int, camera_id: str) -> bool:
    """The ingest batch's rows rebuild the Merkle root its ledger entry recorded."""
    row = cur.execute(
        "SELECT b.camera_id, b.hour_us, e.body FROM ingest_batch b "
        "JOIN ledger_entry e ON e.seq = b.ledger_seq WHERE b.id = ?",
        [batch_id],
    ).fetchone()
    if row is None or row[0] != camera_id:
        return False
    entry = decode_entry(bytes(row[2]))
    subject = entry.get("subject")
    if entry.get("action") != "footage.ingest" or subject != {
        "camera": camera_id,
        "hour": utc_text(int(row[1])),
    }:
        return False
    cur.execute(
        "SELECT path, start_us, end_us, size, sha256 FROM segment WHERE batch_id = ? "
        "ORDER BY start_us, id",
        [batch_id],
    )
    records = [NewSegment(*r).record() for r in cur.fetchall()]
    levels = merkle.tree_levels([merkle.leaf_hash(r) for r in records])
    root = merkle.levels_root(levels, len(records)).hex()
    return bool(entry.get("data", {}).get("merkle_root") == root)


def vouched(site: Site, items: Sequence[Doomed], failures: list[str]) -> list[Doomed]:
    """The items whose rows agree with the ledger and the file names; the rest are
    reported and left in place."""
    with site.db.read() as cur:
        facts, refused = camera_facts(cur)
        cameras = {c.id: c for c in facts}
        batches: dict[int, bool] = {}
        good = []
        for item in items:
            camera = cameras.get(item.camera_id)
            if camera is None:
                why = refused.get(item.camera_id, "unknown camera")
                failures.append(f"{item.camera_id}/{item.path}: camera not purged: {why}")
                continue
            if not _named_as_recorded(camera, item):
                failures.append(
                    f"{item.camera_id}/{item.path}: its index row does not match the file "
                    "name: left in place"
                )
                continue
            if item.batch_id not in batches:
                batches[item.batch_id] = _ingested_as_recorded(cur, item.batch_id, camera.id)
            if not batches[item.batch_id]:
                failures.append(
                    f"{item.camera_id}/{item.path}: its index rows no longer match the ingest "
                    f"entry of the ledger (batch {item.batch_id}): left in place"
                )
                continue
            good.append(item)
    return good


def destroyed_rows(cur: Cursor, run: int) -> list[Doomed]:
    """Every segment a run recorded destroyed, camera by camera, in time order."""
    cur.execute(
        "SELECT s.id, s.camera_id, c.store_path, s.path, s.start_us, s.end_us, s.size, "
        "s.sha256, s.batch_id, c.clock_offset_ms FROM segment s "
        "JOIN camera c ON c.id = s.camera_id WHERE s.purge_run = ? "
        "AND s.destroyed_at IS NOT NULL ORDER BY s.camera_id, s.start_us, s.id",
        [run],
    )
    return [
        Doomed(i, cam, Path(root), path, s, e, size, sha, batch, off * 1000)
        for i, cam, root, path, s, e, size, sha, batch, off in cur.fetchall()
    ]
