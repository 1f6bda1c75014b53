"""The French catalog: extract the marked messages with Babel, merge them into
custody/locale/fr/LC_MESSAGES/scelle.po (translations kept), compile the .mo the wheel ships.

    python -m tests.catalog            # update scelle.po from the code, compile scelle.mo
    python -m tests.catalog --add F    # also take French from F (JSON: {english: french})

The tests use the same functions to fail on a marked message without French, on a
translation that lost a placeholder, and on a .mo that is not the .po compiled.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import io
import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "custody" / "locale"
PO = LOCALE / "fr" / "LC_MESSAGES" / "scelle.po"
MO = PO.with_suffix(".mo")
STAMP = datetime(2026, 11, 30, tzinfo=UTC)  # fixed: the .po changes only when messages do
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
SOURCES = ("cli.py", "custody", "exporters", "requisition")


def source_files() -> Iterator[Path]:
    for name in SOURCES:
        path = ROOT / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def extract() -> Catalog:
    """Every marked message in the code, with where it stands."""
    catalog = Catalog(
        locale="fr",
        domain="scelle",
        project="scelle",
        version="1",
        copyright_holder="the scelle authors",
        msgid_bugs_address="",
        creation_date=STAMP,
        revision_date=STAMP,
        last_translator="the scelle authors",
        language_team="French",
        charset="utf-8",
        fuzzy=False,
    )
    for lineno, docstring in command_docstrings(ROOT / "cli.py"):
        catalog.add(docstring, None, [("cli.py", lineno)])
    for path in source_files():
        for lineno, message, comments, context in extract_from_file(
            "python", str(path), keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
        ):
            where = str(path.relative_to(ROOT))
            catalog.add(message, None, [(where, lineno)], auto_comments=comments, context=context)
    return catalog


def command_docstrings(path: Path) -> Iterator[tuple[int, str]]:
    """The docstrings typer shows as the help of commands (functions decorated with
    `.command(...)` or `.callback(...)`), cleaned as typer cleans them."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorated = any(
            isinstance(d, ast.Call)
            and isinstance(d.func, ast.Attribute)
            and d.func.attr in ("command", "callback")
            for d in node.decorator_list
        )
        docstring = ast.get_docstring(node, clean=True)
        if decorated and docstring:
            yield node.lineno, docstring


def read() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="fr", domain="scelle")


def placeholders(text: str) -> set[str]:
    """The {names} a message formats (a translation must keep every one)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def compiled(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def update(french: dict[str, str] | None = None) -> Catalog:
    """Merge the code's messages into the .po (new ones get `french`'s text, or none yet;
    gone ones are dropped), write it and the compiled .mo. One writer at a time."""
    PO.parent.mkdir(parents=True, exist_ok=True)
    with (PO.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = extract()
        old = read() if PO.exists() else Catalog(locale="fr", domain="scelle")
        known: dict[str, str | tuple[str, ...]] = {_key(m.id): m.string for m in old if m.id}
        forms = fresh.num_plurals
        for english, text in (french or {}).items():
            if isinstance(text, list):  # [one, other] fills every plural form French has
                known[english] = tuple(text + [text[-1]] * (forms - len(text)))
            else:
                known[english] = text
        for message in fresh:
            if message.id and not any(_forms(message.string)):
                message.string = known.get(_key(message.id)) or message.string
        out = io.BytesIO()
        write_po(out, fresh, width=100, sort_output=False, omit_header=False)
        PO.write_bytes(out.getvalue())
        MO.write_bytes(compiled(read()))
    return fresh


def _key(msgid: str | tuple[str, ...]) -> str:
    """A message's singular: plural messages are looked up by it ({"one": ["un", "des"]})."""
    return msgid if isinstance(msgid, str) else msgid[0]


def _forms(text: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return text if isinstance(text, tuple) else (text or "",)


def missing(catalog: Catalog) -> list[str]:
    """Messages without French (plural forms: any form missing)."""
    out = []
    for message in catalog:
        if not message.id:
            continue
        if not all(_forms(message.string)):
            out.append(_key(message.id))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--add", type=Path, help="JSON file of French translations")
    parser.add_argument(
        "--missing",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="only list the messages of these files that neither --add nor the .po translates",
    )
    args = parser.parse_args()
    if args.missing:
        french = json.loads(args.add.read_text()) if args.add else {}
        po = (
            {_key(m.id) for m in read() if m.id and all(_forms(m.string))} if PO.exists() else set()
        )
        for path in args.missing:
            for _line, message, _c, _ctx in extract_from_file(
                "python", str(path), keywords=KEYWORDS
            ):
                english = _key(message)
                if english not in french and english not in po:
                    print(json.dumps(english, ensure_ascii=False))
        return
    french = json.loads(args.add.read_text()) if args.add else None
    catalog = update(french)
    left = missing(catalog)
    print(f"{len(catalog)} messages, {len(left)} without French")
    for message in left:
        print(f"  {message!r}")


if __name__ == "__main__":
    main()
