"""The legal texts the papers cite, in the words French procedure uses: shared by the
workflow (which checks a requisition's basis) and the documents (which print it)."""

from __future__ import annotations

LEGAL_BASES = {
    "60-1": "art. 60-1 CPP (enquête de flagrance)",
    "77-1-1": "art. 77-1-1 CPP (enquête préliminaire, sur autorisation du procureur)",
    "99-3": "art. 99-3 CPP (information judiciaire, commission rogatoire)",
}
