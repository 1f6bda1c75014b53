"""The words people type for the values scelle stores: `superviseur` for supervisor,
`clé USB` for usb, `art. 60-1` for 60-1. What is stored (and what JSON and the ledger
show) never changes with the language; only what is accepted at the edge widens.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from custody.errors import InputError
from custody.i18n import N_, _
from exporters.legal import LEGAL_BASES

# Plain forms (no accents or case; spaces for punctuation) of the words people use.
_WORDS: Mapping[str, Mapping[str, str]] = {
    "role": {
        "operateur": "operator",
        "operatrice": "operator",
        "superviseur": "supervisor",
        "superviseuse": "supervisor",
        "auditeur": "auditor",
        "auditrice": "auditor",
        "administrateur": "admin",
        "administratrice": "admin",
        "administrator": "admin",
    },
    "state": {
        "recue": "received",
        "recu": "received",
        "approuvee": "approved",
        "approuve": "approved",
        "en cours": "processing",
        "en traitement": "processing",
        "terminee": "completed",
        "traitee": "completed",
        "partielle": "partially completed",
        "partiellement traitee": "partially completed",
        "partially": "partially completed",
        "partial": "partially completed",
        "refusee": "denied",
        "refuse": "denied",
        "annulee": "cancelled",
        "annule": "cancelled",
        "images indisponibles": "video unavailable",
        "indisponible": "video unavailable",
        "unavailable": "video unavailable",
    },
    "medium": {
        "cle usb": "usb",
        "clef usb": "usb",
        "cle": "usb",
        "usb key": "usb",
        "usb stick": "usb",
        "disque": "dvd",
        "telechargement": "download",
    },
    "received_via": {
        "courriel": "email",
        "mail": "email",
        "e mail": "email",
        "mel": "email",
        "courrier": "letter",
        "lettre": "letter",
        "telecopie": "fax",
        "telephone": "phone",
        "en main propre": "in-person",
        "sur place": "in-person",
        "in person": "in-person",
        "plateforme": "platform",
    },
}
# What a refusal says, per kind (the English of earlier versions, which scripts may match).
_UNKNOWN = {
    "role": N_("unknown role {typed!r}: one of {choices}"),
    "state": N_("unknown state {typed!r}: one of {choices}"),
    "medium": N_("medium {typed!r}: one of {choices}"),
    "received_via": N_("received via {typed!r}: one of {choices}"),
}
# How each stored value is shown to people (translated by the catalog).
LABELS: Mapping[str, Mapping[str, str]] = {
    "role": {
        "operator": N_("operator"),
        "supervisor": N_("supervisor"),
        "auditor": N_("auditor"),
        "admin": N_("admin"),
    },
    "state": {
        "received": N_("received"),
        "approved": N_("approved"),
        "processing": N_("processing"),
        "completed": N_("completed"),
        "partially completed": N_("partially completed"),
        "denied": N_("denied"),
        "cancelled": N_("cancelled"),
        "video unavailable": N_("video unavailable"),
    },
    "medium": {"usb": N_("usb"), "dvd": N_("dvd"), "download": N_("download")},
    "received_via": {
        "email": N_("email"),
        "letter": N_("letter"),
        "fax": N_("fax"),
        "phone": N_("phone"),
        "in-person": N_("in-person"),
        "platform": N_("platform"),
    },
}


def label(kind: str, value: str) -> str:
    """A stored value as people read it, in their language (`supervisor`: superviseur)."""
    known = LABELS.get(kind, {}).get(value)
    return _(known) if known else value


def plain(text: str) -> str:
    """`text` without accents, case or punctuation: `Clé  USB` and `cle-usb` are `cle usb`."""
    bare = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in bare if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", bare).split())


def stored(kind: str, typed: str, choices: Sequence[str]) -> str:
    """The stored value (one of `choices`) that `typed` names, in English or French;
    InputError listing the words accepted otherwise (in the user's language)."""
    wanted = plain(typed)
    for value in choices:
        if plain(value) == wanted or plain(label(kind, value)) == wanted:
            return value
    found = _WORDS[kind].get(wanted)
    if found is not None and found in choices:
        return found
    shown = ", ".join(label(kind, value) for value in choices)
    raise InputError(_(_UNKNOWN[kind]).format(typed=typed, choices=shown))


_ARTICLE = re.compile(r"\d+(?: \d+)+")


def legal_basis(typed: str) -> str:
    """The CPP article a requisition rests on, as it is stored (`60-1`), from what people
    write: `60-1`, `art. 60-1`, `article 77-1-1 du CPP`, `Art 99-3 C.P.P.`."""
    words = plain(typed.replace("‑", "-").replace("–", "-"))
    words = re.sub(r"\b(art|article|du|cpp|c p p|code de procedure penale)\b", " ", words)
    found = _ARTICLE.fullmatch(" ".join(words.split()))
    article = found.group(0).replace(" ", "-") if found else typed.strip()
    if article in LEGAL_BASES:
        return article
    raise InputError(
        _("unknown legal basis {typed!r}: one of {bases}").format(
            typed=typed, bases=", ".join(LEGAL_BASES)
        ),
        hint=_("write the CPP article, for example 60-1 or 'art. 60-1'"),
    )
