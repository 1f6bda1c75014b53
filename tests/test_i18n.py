"""French for the people at the CSV: the catalog is complete, shipped compiled, and every
command's help speaks French under a French locale and English under LANG=C."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from cli import app
from custody import i18n
from custody.errors import InputError
from tests import catalog

# Words of the framework that betray an untranslated help page.
ENGLISH_FRAMEWORK = (
    "Usage:",
    "Commands:",
    "Show this message and exit.",
    "[required]",
    "[default:",
)


def test_every_marked_message_has_french() -> None:
    """A message added in the code without French (or the .po not updated) fails here:
    run `python -m tests.catalog`, then translate what it lists."""
    in_code = {catalog._key(m.id) for m in catalog.extract() if m.id}
    po = catalog.read()
    in_po = {catalog._key(m.id) for m in po if m.id}
    assert sorted(in_code - in_po) == [], "messages not in the catalog"
    assert sorted(in_po - in_code) == [], "messages the code no longer has"
    assert catalog.missing(po) == []


def test_translations_keep_every_placeholder() -> None:
    for message in catalog.read():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = catalog.placeholders(ids[-1])
        for text in texts:
            assert catalog.placeholders(text) == wanted, (message.id, text)


def test_the_shipped_mo_is_the_po_compiled() -> None:
    assert catalog.MO.read_bytes() == catalog.compiled(catalog.read()), (
        "run `python -m tests.catalog` to compile the .po"
    )


def test_the_check_sees_a_message_without_french() -> None:
    po = catalog.read()
    message = next(m for m in po if m.id)
    message.string = ""
    assert catalog.missing(po) == [catalog._key(message.id)]


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "fr"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LC_ALL": "C", "LANG": "fr_FR.UTF-8"}, "en"),
        ({"LC_MESSAGES": "fr_BE.UTF-8", "LANG": "en_GB.UTF-8"}, "fr"),
        ({"SCELLE_LANG": "en", "LANG": "fr_FR.UTF-8"}, "en"),
        ({"SCELLE_LANG": "fr", "LC_ALL": "C"}, "fr"),
    ],
)
def test_the_language_follows_scelle_lang_then_the_locale(
    environ: dict[str, str], language: str
) -> None:
    assert i18n.choose(None, environ) == language


def test_the_site_setting_comes_between_scelle_lang_and_the_locale() -> None:
    assert i18n.choose("fr", {"LANG": "C"}) == "fr"
    assert i18n.choose("fr", {"SCELLE_LANG": "en"}) == "en"
    with pytest.raises(InputError, match="not a language scelle speaks"):
        i18n.choose("klingon", {})


def _commands() -> Iterator[list[str]]:
    root = typer.main.get_command(app)

    def walk(command: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    yield from walk(root, [])


COMMANDS = list(_commands())


def _help(path: list[str], environ: dict[str, str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=environ, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _english_sentences() -> list[str]:
    """English messages whose French differs: none may show in a French page."""
    out = []
    for message in catalog.read():
        if not message.id or isinstance(message.id, tuple):
            continue
        english = message.id.strip()
        # A phrase (option names such as --prosecutor-authorisation hold English words)
        if " " in english and len(english) >= 12 and message.string != message.id:
            out.append(english.split("\n")[0][:60])
    return out


def test_the_walk_finds_every_command() -> None:
    for path in (["requisition", "register"], ["ledger", "proof", "inclusion"], ["verify"]):
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "scelle")
def test_help_in_french_under_a_french_locale(path: list[str]) -> None:
    page = _help(path, {"LANG": "fr_FR.UTF-8"})
    shown = " ".join(page.split())
    for english in [*ENGLISH_FRAMEWORK, *_english_sentences()]:
        assert " ".join(english.split()) not in shown, f"English in French help: {english!r}"
    assert "Utilisation :" in page


def test_help_texts_all_have_french() -> None:
    """Every help text the command tree holds (command docstrings, option help) is in the
    catalog with French: the French page is French because each text is, not by luck."""
    french = {m.id: m.string for m in catalog.read() if m.id and isinstance(m.id, str)}
    root = typer.main.get_command(app)

    def texts(command: object) -> Iterator[str]:
        help_text = getattr(command, "help", None)
        if help_text:
            yield help_text
        for param in getattr(command, "params", []):
            if getattr(param, "help", None):
                yield param.help
        for sub in getattr(command, "commands", {}).values():
            yield from texts(sub)

    untranslated = sorted({t for t in texts(root) if not french.get(t)})
    assert untranslated == []


@pytest.mark.parametrize("path", [[], ["requisition", "register"], ["purge"]])
def test_help_in_english_under_lang_c(path: list[str]) -> None:
    page = _help(path, {"LANG": "C"})
    assert page.startswith("Usage: ")
    assert "Show this message and exit." in page
    assert not re.search(r"Utilisation|Afficher", page)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["requisition", "register", "--pv"], "Erreur : L'option --pv attend une valeur."),
        (["ledger", "show", "--bogus"], "Erreur : Option inconnue : --bogus"),
        (["ledger", "prof"], "Erreur : Commande inconnue : 'prof'. Vouliez-vous dire 'proof' ?"),
        (["verify", "a", "b"], "Erreur : Argument(s) en trop : b"),
        (["agent", "add", "x", "--name", "X"], "Erreur : Option '--role' manquante."),
    ],
)
def test_usage_errors_in_french(args: list[str], said: str) -> None:
    """click's own messages (English in typer's copy) said again in French."""
    result = CliRunner().invoke(app, args, env={"LANG": "fr_FR.UTF-8"})
    assert result.exit_code == 2
    assert said in result.output.splitlines()
    assert "Usage:" not in result.output and "Error:" not in result.output
