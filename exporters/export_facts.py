"""What the papers of an export state about it, read from the export's *signed* files
(manifest, ledger entry, checkpoint, public key), never from the database: what the
cover sheet and the handover PV say is what the investigator can verify.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from custody.canonical import parse_canonical
from custody.checks import load_key_file
from custody.config import Settings
from custody.errors import InputError, IntegrityError
from custody.i18n import _
from custody.keys import der_sha256, ssh_fingerprint
from custody.note import parse_checkpoint, parse_note
from exporters import french
from exporters.documents import Document, PdfSign, centre, person, qr_svg, render
from exporters.gaps import FRENCH, WITHHELD, GapKind, kind_of
from exporters.legal import LEGAL_BASES
from exporters.manifest import MANIFEST, check_format

WORKING_COPY = (
    "La copie de travail (fichiers du dossier working/) est une conversion des images en vidéo MP4 "
    "(H.264) de définition réduite, sur laquelle sont incrustées la caméra et la date et "
    "l'heure de référence de chaque image, pour un visionnage facile sur tout poste. Seul "
    "l'original (fichiers du dossier master/), copie exacte octet pour octet des fichiers de "
    "l'enregistreur, fait foi."
)


def _gap_words(gap: dict[str, Any], zone: str) -> str:
    """A gap as the papers state it: when, how long, and why, from its kind."""
    start = datetime.fromisoformat(gap["from_utc"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(gap["to_utc"].replace("Z", "+00:00"))
    segment = gap.get("segment")
    return (
        f"aucune image du {french.time(gap['from_utc'], zone)} au "
        f"{french.time(gap['to_utc'], zone)} ({french.duration((end - start).total_seconds())})"
        f" : {FRENCH[kind_of(gap)]}" + (f" — fichier {segment}" if segment else "")
    )


def _withheld_words(item: dict[str, Any]) -> list[str]:
    """Indexed files the export does not hold although no gap names them (their time is
    covered by other footage): the gaps name all the others."""
    segments = item["coverage"]["segments"]
    named = {gap.get("segment") for gap in item["coverage"]["gaps"]}
    if segments and "state" in segments[0]:
        return [
            f"{s['path']} : {FRENCH[GapKind(s['state'])]}"
            for s in segments
            if s["state"] != "ok" and GapKind(s["state"]) in WITHHELD and s["path"] not in named
        ]
    return [  # a manifest written before segments had a state, nor gaps a segment
        f"{path} : fichier disparu ou modifié depuis l'indexation : écarté, non remis"
        for path in item.get("altered_since_ingest", [])
    ]


def _clock_change_words(item: dict[str, Any], zone: str) -> list[str]:
    """Files whose local-time name the autumn change repeats, and where the scan placed
    them (exporters/stores/clock_change.py)."""
    return [
        f"{s['path']} : nommé {s['name_time_repeated'][11:19]} (heure locale du "
        f"{s['name_time_repeated'][8:10]}/{s['name_time_repeated'][5:7]}/"
        f"{s['name_time_repeated'][:4]}), heure que le retour à l'heure d'hiver fait vivre deux "
        f"fois ; placé au {french.time(s['recorder_start_utc'], zone)} (heure de "
        "l'enregistreur) d'après ses propres horodatages (heure de création inscrite dans la "
        "vidéo, fin de son écriture ou ordre d'écriture des fichiers), relevés à l'indexation"
        for s in item["coverage"]["segments"]
        if "name_time_repeated" in s
    ]


def _attachment(attachment: dict[str, Any], agents: dict[str, Any], zone: str) -> dict[str, Any]:
    """Another system's export as the papers state it: who exported it there and when,
    who took it into custody here and when, the window it covers, and each file."""
    version = f" {attachment['system_version']}" if attachment.get("system_version") else ""
    number = f" (export n° {attachment['export_id']})" if attachment.get("export_id") else ""
    taker = person(agents, attachment.get("taken_by"))
    files = []
    for f in attachment["files"]:
        if f["state"] != "ok":
            files.append(
                f"{f['path']} ({f['size']} octets, SHA-256 {f['sha256'][:16]}…) : écarté, "
                "non remis : "
                + (
                    "il ne correspond plus à l'empreinte relevée à la prise en charge"
                    if f["state"] == "altered"
                    else "il n'est plus dans le dossier de prise en charge"
                )
            )
        elif f.get("video"):
            v = f["video"]
            working = (f.get("working") or {}).get("path")
            files.append(
                f"{f['delivered']} : vidéo lisible ({v['codec']}, {v['width']}×{v['height']}, "
                f"{french.duration(v['duration_us'] / 1e6)}) ; "
                + (
                    f"copie de travail {working}"
                    if working
                    else "la copie de travail n'a pas pu être faite : seul l'original est remis"
                )
            )
        else:
            files.append(
                f"{f['delivered']} : non lisible comme vidéo par ffmpeg : remis tel que reçu, sans "
                "copie de travail"
            )
    window = attachment["window"]
    return {
        "words": (
            f"Images exportées par {attachment['system']}{version} le "
            f"{french.time(attachment['exported_at'], zone)} par {attachment['exported_by']}"
            f"{number}, prises en charge par scelle le "
            f"{french.time(attachment['taken_at'], zone)} par {taker['name']} (entrée n° "
            f"{attachment['ledger_seq']} du registre de traçabilité)"
        ),
        "camera": attachment.get("camera"),
        "period": (
            f"du {french.time(window['from_utc'], zone)} au {french.time(window['to_utc'], zone)}"
        ),
        "files": files,
    }


def _item(item: dict[str, Any]) -> dict[str, Any]:
    cam, cov = item["camera"], item["coverage"]
    zone = cam["timezone"]
    offset = cam["clock"]["offset_ms"]
    gaps = [_gap_words(g, zone) for g in cov["gaps"]]
    return {
        "camera": cam,
        "window": cov["window"],
        "window_local_from": french.time(cov["window"]["from_utc"], zone),
        "window_local_to": french.time(cov["window"]["to_utc"], zone),
        "authorisation_expires": datetime.fromisoformat(cam["authorisation_expires"]).strftime(
            "%d/%m/%Y"
        ),
        "clock_words": (
            "aucun écart relevé avec l'heure de référence"
            if not offset
            else f"{'en avance' if offset > 0 else 'en retard'} de "
            f"{french.number(abs(offset) / 1000, 3)}{french.NNBSP}s sur l'heure de référence"
        ),
        "clock_measured": french.time(cam["clock"]["measured_at"], zone),
        "gaps": gaps,
        "gap_count": (
            "1 interruption" if len(gaps) == 1 else f"{french.number(len(gaps))} interruptions"
        ),
        "withheld": _withheld_words(item),
        "clock_change": _clock_change_words(item, zone),
    }


def export_facts(export: Path, settings: Settings) -> dict[str, Any]:
    """Everything the papers state of an export, read from its signed files."""
    try:
        manifest_bytes = (export / MANIFEST).read_bytes()
        manifest = parse_canonical(manifest_bytes)
        check_format(manifest)
        entry = parse_canonical((export / "ledger" / "entry.json").read_bytes())
        note = parse_note((export / "ledger" / "checkpoint.txt").read_text())
    except FileNotFoundError as exc:
        raise InputError(
            _("{export} is not a complete scelle export ({missing})").format(
                export=export, missing=exc.filename
            )
        ) from exc
    except ValueError as exc:
        raise IntegrityError(
            _("{export}: manifest or ledger files are not canonical").format(export=export)
        ) from exc
    checkpoint = parse_checkpoint(note.body)
    key = load_key_file(export / "keys" / "signer.pub.pem")
    zone = settings.timezone
    r = manifest["requisition"]
    agents = manifest.get("agents") or {}
    files = [
        f | {"size_text": french.number(f["size"]), "role_text": french.FILE_ROLES[f["role"]]}
        for f in manifest["files"]
    ]
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    return {
        "centre": centre(settings),
        "r": r,
        "legal_basis": LEGAL_BASES.get(r["legal_basis"], r["legal_basis"]),
        "received_via": french.RECEIVED_VIA.get(r["received_via"], r["received_via"]),
        "received_at": french.time(r["received_at"], zone),
        "deadline": french.time(r["deadline"], zone) if r.get("deadline") else None,
        "registered": person(agents, r.get("registered_by"))
        | {"at": french.time(r.get("registered_at"), zone)},
        "decided": person(agents, r.get("decided_by"))
        | {"at": french.time(r.get("decided_at"), zone)},
        "extracted": person(agents, manifest.get("exported_by"))
        | {"at": french.time(manifest["exported_at"], zone)},
        "exported_at": french.time(manifest["exported_at"], zone),
        "items": [_item(item) for item in manifest["items"]],
        "attachments": [_attachment(a, agents, zone) for a in manifest.get("attachments", [])],
        "files": files,
        "master_count": sum(1 for f in files if f["role"] in ("master", "attached")),
        "working_count": sum(1 for f in files if f["role"] == "working"),
        "total_size": french.size(sum(f["size"] for f in files)),
        "working_copy": WORKING_COPY,
        "manifest_sha256": manifest_sha,
        "ssh_fingerprint": ssh_fingerprint(key),
        "der_sha256": der_sha256(key),
        "ledger_seq": entry["seq"],
        "checkpoint_size": french.number(checkpoint.size),
        "checkpoint_root": base64.b64encode(checkpoint.root).decode(),
        "qr": qr_svg(manifest_sha),
    }


def cover(
    export: Path, settings: Settings, certificate: str | None = None, sign: PdfSign | None = None
) -> Document:
    """The cover sheet (bordereau) of a sealed export: what it holds, not its handover."""
    facts = export_facts(export, settings)
    return render("cover", {"f": facts, "certificate": certificate}, sign)
