"""How the legal papers write numbers, times, durations and stored codes in French.

The papers are French whatever the user's language (a French court reads them): these are
not catalog translations but the fixed French of the documents. Numbers follow the French
typographic rules (Imprimerie nationale): a narrow no-break space between thousands, a
decimal comma; times are local with their UTC offset stated.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

NNBSP = "\u202f"  # narrow no-break space: thousands, and before `:` / `;` in French


def number(value: float, decimals: int = 0) -> str:
    """`1234567.5` as `1 234 567,5` (with narrow no-break spaces)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", NNBSP).replace(".", ",")


def size(octets: int) -> str:
    """A size in octets, in the unit a reader takes in at a glance, exact figure kept
    in the tables that need it: `3,0 Mo`, `512 ko`."""
    for unit, scale in (("Go", 1e9), ("Mo", 1e6), ("ko", 1e3)):
        if octets >= scale:
            return f"{number(octets / scale, 1)}{NNBSP}{unit}"
    return f"{octets}{NNBSP}octets"


def duration(seconds: float) -> str:
    """`40 s`, `2 min 10 s`, `1 h 05 min`: whole seconds, as a clerk writes them."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}{NNBSP}h {minutes:02d}{NNBSP}min"
    if minutes:
        return f"{minutes}{NNBSP}min" + (f" {secs:02d}{NNBSP}s" if secs else "")
    return f"{secs}{NNBSP}s"


def moment(value: str, zone: str) -> datetime:
    """A stored UTC time (`...Z`) in the zone."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))


def offset(at: datetime) -> str:
    text = at.strftime("%z")
    return f"UTC{text[:3]}:{text[3:]}"


def time(value: str | None, zone: str) -> str:
    """`29/11/2026 à 14:00:30 (UTC+01:00)`: local time with its offset stated."""
    if not value:
        return "—"
    at = moment(value, zone)
    return f"{at:%d/%m/%Y à %H:%M:%S} ({offset(at)})"


def day(value: str, zone: str) -> str:
    """`29/11/2026`."""
    return f"{moment(value, zone):%d/%m/%Y}"


def hexa(digest: str, group: int = 8) -> str:
    """A hex digest in groups of `group` for reading aloud and comparing by eye; copying
    it and removing the spaces gives the digest."""
    return " ".join(digest[i : i + group] for i in range(0, len(digest), group))


MEDIA = {"usb": "clé USB", "dvd": "DVD", "download": "téléchargement"}
MEDIA_PLURAL = {"usb": "clés USB", "dvd": "DVD", "download": "téléchargements"}
RECEIVED_VIA = {
    "email": "courriel",
    "letter": "courrier",
    "fax": "télécopie",
    "phone": "téléphone",
    "in-person": "remise en main propre",
    "platform": "plateforme",
}
ROLES = {
    "operator": "opérateur de vidéoprotection",
    "supervisor": "superviseur",
    "auditor": "auditeur",
    "admin": "administrateur",
}
FILE_ROLES = {
    "master": "original",
    "working": "copie de travail",
    "attached": "original remis par un autre système",
    "verifier": "page de vérification (VERIFY.html)",
}


def media(kind: str | None, count: int = 1) -> str:
    """`2 clés USB`, `1 DVD`; an unknown code as stored."""
    if not kind:
        return "—"
    words = (MEDIA_PLURAL if count > 1 else MEDIA).get(kind, kind)
    return f"{count} {words}"


_SEAL_PREFIX = re.compile(
    r"^\s*(scell[ée]s?\b\.?\s*)?(n\s*[°º]\s*|№\s*|no?\.\s*|no\s+|num[ée]ro\s*|#\s*)?:?\s*",
    re.I,
)


def bare_seal(typed: str) -> str:
    """A seal number without the words people type before it (`Scellé n° 12`, `SCELLE
    N° 12`, `n°12`, `№ 12`, `#12` are all `12`): the papers print their own `Scellé n°`.
    Empty when nothing but those words was typed (the caller refuses it)."""
    text = unicodedata.normalize("NFC", typed)
    return _SEAL_PREFIX.sub("", text, count=1).strip()
