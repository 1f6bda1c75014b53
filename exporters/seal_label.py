"""The seal label (étiquette de scellé): one per seal, stuck on the sealed bag or case.

Its size is A6 (105 × 148 mm), an ISO 216 size sold as self-adhesive labels (single,
or four to an A4 sheet) and printable on any office printer set to A6. It carries what
an officer or a clerk checks without opening the seal: the seal number, the date, the
requisition and procedure, the cameras and periods, the full manifest hash (in groups
to read aloud) and its QR code, and space for signatures and the centre's stamp.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from custody.canonical import parse_canonical
from custody.config import Settings
from exporters import french
from exporters.documents import Document, PdfSign, centre, qr_svg, render
from exporters.manifest import MANIFEST, check_format

SIZE = "A6 (105 × 148 mm)"
SHOWN_WINDOWS = 3  # more would cover the hash and its QR code: the rest are counted


def label(
    export: Path,
    settings: Settings,
    seals: Sequence[str],
    medium: str | None,
    count: int,
    handed_at: str | None,
    sign: PdfSign | None = None,
) -> Document:
    """A page per seal (a blank seal line when none is known yet)."""
    manifest_bytes = (export / MANIFEST).read_bytes()
    manifest = parse_canonical(manifest_bytes)
    check_format(manifest)
    sha = hashlib.sha256(manifest_bytes).hexdigest()
    zone = settings.timezone
    cameras = [
        {
            "id": item["camera"]["id"],
            "name": item["camera"]["name"],
            "from": french.time(item["coverage"]["window"]["from_utc"], item["camera"]["timezone"]),
            "to": french.time(item["coverage"]["window"]["to_utc"], item["camera"]["timezone"]),
        }
        for item in manifest["items"]
    ]
    return render(
        "label",
        {
            "centre": centre(settings),
            "r": manifest["requisition"],
            "seals": [french.bare_seal(s) or s for s in seals] or [None],
            "medium": french.media(medium, count) if medium else None,
            "day": french.day(handed_at, zone) if handed_at else None,
            "cameras": cameras[:SHOWN_WINDOWS]
            if len(cameras) <= SHOWN_WINDOWS
            else cameras[: SHOWN_WINDOWS - 1],
            "more": 0 if len(cameras) <= SHOWN_WINDOWS else len(cameras) - SHOWN_WINDOWS + 1,
            "sha_lines": [french.hexa(sha[:32]), french.hexa(sha[32:])],
            "qr": qr_svg(sha),
        },
        sign,
    )
