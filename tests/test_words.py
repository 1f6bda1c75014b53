"""The words people type for stored values, in French and English."""

from __future__ import annotations

import pytest

from custody.errors import InputError
from requisition.requisitions import RECEIVED_VIA, State
from requisition.roles import Role
from requisition.words import legal_basis, stored

ROLES = [r.value for r in Role]
STATES = [s.value for s in State]
MEDIA = ["usb", "dvd", "download"]


@pytest.mark.parametrize(
    ("kind", "typed", "choices", "value"),
    [
        ("role", "superviseur", ROLES, "supervisor"),
        ("role", "Opératrice", ROLES, "operator"),
        ("role", "supervisor", ROLES, "supervisor"),
        ("role", "ADMINISTRATEUR", ROLES, "admin"),
        ("medium", "clé USB", MEDIA, "usb"),
        ("medium", "cle-usb", MEDIA, "usb"),
        ("medium", "DVD", MEDIA, "dvd"),
        ("medium", "téléchargement", MEDIA, "download"),
        ("state", "reçue", STATES, "received"),
        ("state", "partiellement traitée", STATES, "partially completed"),
        ("state", "video unavailable", STATES, "video unavailable"),
        ("received_via", "courriel", list(RECEIVED_VIA), "email"),
        ("received_via", "en main propre", list(RECEIVED_VIA), "in-person"),
    ],
)
def test_french_and_english_words_name_the_stored_value(
    kind: str, typed: str, choices: list[str], value: str
) -> None:
    assert stored(kind, typed, choices) == value


def test_an_unknown_word_lists_what_is_accepted() -> None:
    with pytest.raises(InputError) as raised:
        stored("role", "chef de salle", ROLES)
    assert raised.value.message == (
        "unknown role 'chef de salle': one of operator, supervisor, auditor, admin"
    )


@pytest.mark.parametrize(
    "typed",
    ["60-1", "art. 60-1", "Art 60-1", "article 60-1 du CPP", "60‑1 C.P.P.", " art.60-1 "],
)
def test_legal_bases_as_written(typed: str) -> None:
    assert legal_basis(typed) == "60-1"


def test_three_part_articles_and_unknown_ones() -> None:
    assert legal_basis("art. 77-1-1") == "77-1-1"
    with pytest.raises(InputError, match=r"unknown legal basis 'art\. 61'"):
        legal_basis("art. 61")
