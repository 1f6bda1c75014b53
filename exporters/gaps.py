"""Gaps in an export's footage: their kinds, as manifests record them, and their words.

One home for the `kind` field of a manifest's gaps, shared by the writer (the footage
index) and every reader (the cover sheet, `scelle verify`), which name each gap from its
kind, never by parsing the English `reason`. Nothing here touches a database:
`scelle verify` imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from custody.i18n import N_


class GapKind(StrEnum):
    """Why a stretch of a window has no usable footage."""

    NO_FOOTAGE = "no_footage"  # nothing indexed covers it: camera or recorder down
    CORRUPT = "corrupt"  # the segment is as ingested but does not read as video
    MISSING = "missing"  # the indexed segment is gone from the store, or cannot be read
    ALTERED = "altered"  # its bytes differ from the ingest hash: never delivered
    NOT_REGULAR = "not_regular"  # a link, FIFO, device, or behind a linked directory


WITHHELD = frozenset({GapKind.MISSING, GapKind.ALTERED, GapKind.NOT_REGULAR})
"""Segments that are not, bit for bit, what was ingested: none of their bytes is in an
export (a corrupt segment is, as it was recorded)."""

ENGLISH = {  # marked only: shown as _(ENGLISH[kind]), in the user's language
    GapKind.NO_FOOTAGE: N_("no footage recorded"),
    GapKind.CORRUPT: N_("corrupt segment (unreadable video, copied as recorded)"),
    GapKind.MISSING: N_("segment gone from the store since ingest"),
    GapKind.ALTERED: N_("segment altered since ingest (not delivered)"),
    GapKind.NOT_REGULAR: N_(
        "segment replaced by something other than a regular file (a link, ...; not delivered)"
    ),
}

# The cover sheet (procès-verbal de remise) is a French document whatever the user's
# language: its words for each kind are French, not translations drawn from the catalog.

FRENCH = {
    GapKind.NO_FOOTAGE: "aucun enregistrement",
    GapKind.CORRUPT: "fichier vidéo illisible (corrompu), remis tel qu'enregistré",
    GapKind.MISSING: "fichier vidéo disparu du stockage depuis l'indexation",
    GapKind.ALTERED: "fichier vidéo modifié depuis l'indexation (son empreinte SHA-256 n'est "
    "plus celle relevée à l'indexation) : écarté, non remis",
    GapKind.NOT_REGULAR: "fichier vidéo remplacé dans le stockage par autre chose qu'un "
    "fichier ordinaire (lien symbolique…) : écarté, non remis",
}

_LEGACY = [  # manifests written before gaps had a kind said it only in their reason
    ("no footage recorded", GapKind.NO_FOOTAGE),
    ("corrupt segment", GapKind.CORRUPT),
    ("segment ", GapKind.MISSING),
]


def kind_of(gap: Mapping[str, Any]) -> GapKind:
    """A manifest gap's kind (ValueError if it names an unknown one)."""
    if "kind" in gap:
        return GapKind(gap["kind"])
    reason = str(gap.get("reason", ""))
    return next((kind for prefix, kind in _LEGACY if reason.startswith(prefix)), GapKind.MISSING)
