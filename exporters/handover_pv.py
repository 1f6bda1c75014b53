"""The procès-verbal de remise: issued when the sealed export is handed over, it records
the handover (when, by whom, to which officer, on which media, under which seals) beside
what the export holds, read from its signed files (exporters/export_facts.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.config import Settings
from exporters import french
from exporters.documents import Document, PdfSign, person, render
from exporters.export_facts import export_facts


@dataclass(frozen=True)
class Handed:
    """The handover as the workflow recorded it (times UTC, media as stored)."""

    number: int  # the PV's number for this requisition: 1, then 2 for a second handover
    at: str
    by: str  # login of the CSV agent who hands over
    agents: Mapping[str, Mapping[str, Any]]  # login -> name, role, designation
    officer: str
    grade: str | None
    unit: str
    medium: str
    count: int
    seals: Sequence[str]


def handover_pv(
    export: Path,
    settings: Settings,
    handed: Handed,
    certificate: str | None = None,
    sign: PdfSign | None = None,
) -> Document:
    facts = export_facts(export, settings)
    zone = settings.timezone
    by = person(handed.agents, handed.by)
    h = {
        "number": handed.number,
        "at": french.time(handed.at, zone),
        "day": french.day(handed.at, zone),
        "by": by,
        "step": by | {"step": "Remise", "at": french.time(handed.at, zone)},
        "officer": handed.officer,
        "grade": handed.grade,
        "unit": handed.unit,
        "media": french.media(handed.medium, handed.count),
        "seals": list(handed.seals),
    }
    return render("handover", {"f": facts, "h": h, "certificate": certificate}, sign)
