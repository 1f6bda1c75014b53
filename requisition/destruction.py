"""The destruction certificate of a purge run, made from what the run recorded (its
ledger entries and the segments it recorded destroyed): the workflow gathers it and
renders its PDF; custody/destruction.py holds its format and writes it, signed, whole or
not at all. A run whose certificate could not be written (disk full) gets it from the
next purge.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from custody import destruction
from custody.checkpoints import read_identity
from custody.db import Cursor
from custody.entry import decode_entry
from custody.errors import InputError, IntegrityError
from custody.i18n import _
from custody.keys import Signer, ssh_fingerprint
from custody.site import Site
from custody.timestamps import stamp_for
from custody.timewindow import now_us, to_us, utc_text
from exporters import french
from exporters.documents import Document, PdfSign, centre, person, render
from requisition.cameras import list_cameras
from requisition.people import described
from requisition.purge_rows import RunCamera, run_cameras, set_run


def _run_entries(cur: Cursor, seqs_json: str | None) -> list[dict[str, Any]]:
    seqs = json.loads(seqs_json or "[]")
    out = []
    for seq in seqs:
        row = cur.execute("SELECT body FROM ledger_entry WHERE seq = ?", [seq]).fetchone()
        if row is None:
            raise IntegrityError(_("ledger entry {seq} of a purge is missing").format(seq=seq))
        out.append(decode_entry(bytes(row[0])))
    return out


def certificate(site: Site, run: int, signer: Signer, pdf: PdfSign | None = None) -> Path:
    """The signed destruction certificate of a run, from what the run recorded (its
    ledger entries and its destroyed segments): canonical JSON, its PDF and HTML, each
    signed, built beside its place and renamed into it whole."""
    with site.db.read() as cur:
        row = cur.execute(
            "SELECT now_utc, actor, intent_seqs, outcome_seqs FROM purge_run WHERE id = ?", [run]
        ).fetchone()
        if row is None:
            raise InputError(_("no purge run {run}").format(run=run))
        as_of, actor, intent_json, outcome_json = row
        intent = _run_entries(cur, intent_json)
        outcome = _run_entries(cur, outcome_json)
        identity = read_identity(cur)
        by_camera = {c.camera_id: c for c in run_cameras(cur, run, destroyed=True)}
    _own_entries(run, actor, intent, outcome)
    held_at_plan = {
        e["subject"]["camera"]: int(e["data"].get("held", 0))
        for e in intent
        if e.get("action") == "footage.destroy.intent"
    }
    results = {
        e["subject"]["camera"]: e["data"] for e in outcome if e["action"] == "footage.destroy"
    }
    failed = [e["data"] for e in outcome if e["action"] == "footage.destroy.failed"]
    cameras: list[dict[str, Any]] = []
    for camera in sorted(set(by_camera) | set(results) | set(held_at_plan)):
        items = by_camera.get(camera) or RunCamera(camera, 0)
        result = results.get(camera, {})
        root = items.root
        if items.segments and result.get("merkle_root") != root:
            raise IntegrityError(
                _(
                    "purge {run}, camera {camera}: the destroyed segments no longer match the "
                    "Merkle root of its outcome entry"
                ).format(run=run, camera=camera)
            )
        cameras.append(
            {
                "camera": camera,
                "segments": items.segments,
                "bytes": items.bytes,
                "already_absent": int(result.get("already_absent", 0)),
                "first_utc": utc_text(items.first_us) if items.segments else None,
                "last_end_utc": utc_text(items.last_end_us) if items.segments else None,
                "merkle_root": root,
                "held_segments": held_at_plan.get(camera, 0)
                + int(result.get("held_since_intent", 0)),
            }
        )
    failures = [f for data in failed for f in data.get("failures", [])]
    certificate_body = destruction.body(
        site={"name": identity.key_name, "ledger_origin": identity.origin},
        run=run,
        as_of_utc=as_of,
        completed_utc=utc_text(now_us()),
        actor=actor,
        cameras=cameras,
        failures=failures,
        failure_count=sum(int(data.get("count", 0)) for data in failed),
        ledger_entries=[int(e["seq"]) for e in intent + outcome],
        signer=signer,
    )
    document = _document(site, as_of, actor, cameras, certificate_body, signer, pdf)
    final = site.settings.home / "certificates" / f"purge-{run:06d}"
    settings = site.settings
    stamped = stamp_for(settings.timestamp_url, settings.timestamp_ca, certificate_body)
    token = (stamped.stamp.token, stamped.ca_pem) if stamped and stamped.stamp else None
    destruction.write(
        final, certificate_body, signer, lambda d: document.write(d, "destruction"), run, token
    )
    with site.db.write() as cur:
        set_run(cur, run, certificate=str(final))
    return final


RUN_ACTIONS = {"footage.destroy.intent", "footage.destroy", "footage.destroy.failed"}


def _own_entries(
    run: int, actor: str, intent: list[dict[str, Any]], outcome: list[dict[str, Any]]
) -> None:
    """The run's row cites ledger entries: each must be one of this run's, recorded by the
    agent the row names. A row written around scelle certifies nothing."""
    if not intent:
        raise IntegrityError(_("purge {run} cites no intent entry").format(run=run))
    for entry in intent + outcome:
        subject = entry.get("subject")
        if (
            entry.get("action") not in RUN_ACTIONS
            or not isinstance(subject, dict)
            or subject.get("purge") != run
            or entry.get("actor") != actor
        ):
            raise IntegrityError(
                _("purge {run}: ledger entry {seq} is not one of its own").format(
                    run=run, seq=entry.get("seq")
                )
            )


def _document(
    site: Site,
    as_of: str,
    actor: str,
    cameras: Iterable[dict[str, Any]],
    body: bytes,
    signer: Signer,
    pdf: PdfSign | None,
) -> Document:
    """The certificate as people read it: reference (corrected) times first, the
    recorder's own times beside them, as the signed JSON states them."""
    zone = site.settings.timezone
    cameras = list(cameras)
    registered = list_cameras(site)
    offsets = {c.id: c.clock_offset_ms * 1000 for c in registered}
    retention = {c.id: c.retention_days for c in registered}

    def both(recorder_utc: str, camera: str) -> dict[str, str]:
        reference = utc_text(to_us(datetime.fromisoformat(recorder_utc)) - offsets.get(camera, 0))
        return {
            "reference": french.time(reference, zone),
            "recorder": french.time(recorder_utc, zone),
        }

    who = person(described(site, [actor]), actor)
    return render(
        "destruction",
        {
            "centre": centre(site.settings),
            "run_at": french.time(as_of, zone),
            "actor": who,
            "destroyed": [
                {
                    "camera": c["camera"],
                    "retention": retention.get(c["camera"]),
                    "from": both(c["first_utc"], c["camera"]),
                    "to": both(c["last_end_utc"], c["camera"]),
                    "offset": french.number(offsets.get(c["camera"], 0) / 1e6, 3),
                    "files": french.number(c["segments"]),
                    "size": french.size(c["bytes"]),
                    "merkle_root": c["merkle_root"],
                }
                for c in cameras
                if c["segments"]
            ],
            "held": [
                f"{c['camera']} : {french.number(c['held_segments'])} fichier(s) vidéo conservé(s) "
                "pour une procédure judiciaire en cours"
                for c in cameras
                if c["held_segments"]
            ],
            "ledger_entries": ", ".join(str(s) for s in json.loads(body)["ledger_entries"]),
            "ssh_fingerprint": ssh_fingerprint(signer.public_key),
            "issued_day": french.day(utc_text(now_us()), zone),
        },
        pdf,
    )
