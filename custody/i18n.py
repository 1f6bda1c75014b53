"""The user's language, French or English, and the messages in it.

Messages are written in English in the code and marked: `_()` translates now, `N_()`
only marks a text for the catalog (help texts, translated when they are shown),
`ngettext()` chooses a plural. French comes from a standard gettext catalog,
`custody/locale/fr/LC_MESSAGES/scelle.po`, compiled by Babel into the `.mo` the wheel
ships; the tests fail when a marked message has no French. What machines read never
changes with the language: JSON keys, the ledger's action names, exit codes.

The language follows SCELLE_LANG, then the site's `language` setting, then the locale
(LC_ALL, LC_MESSAGES, LANG: the first one set); English where none says French.
"""

from __future__ import annotations

import errno
import gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "scelle"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "fr")

_language: str | None = None
_catalog: gettext.NullTranslations | None = None


def language_of(value: str) -> str | None:
    """'fr', 'fr_FR.UTF-8', 'français' give 'fr'; 'en', 'en_GB', 'C', 'POSIX' give 'en';
    None for a value that names neither."""
    text = value.strip().lower()
    if text.startswith("fr"):
        return "fr"
    if text.startswith("en") or text.partition(".")[0] in ("c", "posix", "anglais"):
        return "en"
    return None


def choose(configured: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The language to speak: SCELLE_LANG, then `configured` (the site's setting), then
    the locale. A SCELLE_LANG or a setting naming another language is refused (the user
    asked for something scelle cannot give); a locale in another language gives English."""
    from custody.errors import InputError

    env = os.environ if environ is None else environ
    for source, value in (("SCELLE_LANG", env.get("SCELLE_LANG")), ("language", configured)):
        if value:
            chosen = language_of(value)
            if chosen is None:
                raise InputError(
                    _("{source} = {value!r} is not a language scelle speaks: fr or en").format(
                        source=source, value=value
                    )
                )
            return chosen
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(variable)
        if value:
            return language_of(value) or "en"
    return "en"


def use(language: str) -> None:
    """Speak `language` ('fr' or 'en') from now on, in this process."""
    global _language, _catalog
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    _language = language
    _catalog = (
        gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
        if language != "en"
        else gettext.NullTranslations()
    )


def current() -> str:
    """The language in use: the one chosen by `use`, else the environment's."""
    if _language is None:
        from custody.errors import InputError

        try:
            use(choose())
        except InputError:  # a bad SCELLE_LANG: the CLI reports it; a library speaks English
            use("en")
    assert _language is not None
    return _language


def _translations() -> gettext.NullTranslations:
    if _catalog is None:
        current()
    assert _catalog is not None
    return _catalog


def _(message: str) -> str:
    """`message` in the user's language."""
    return _translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the user's language."""
    return _translations().ngettext(singular, plural, n)


def in_language(message: str, language: str) -> str:
    """`message` in `language`, whatever the user's: for what is written in both (the
    VERIFY.html page states every check in French and English)."""
    if language == "en":
        return message
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language]).gettext(message)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it yet (translated when shown)."""
    return message


def frame_language(language: str) -> None:
    """Let the command-line framework (typer, which asks gettext's global domain for its
    own words: "Options", "required", "Missing command.") speak `language` too. Only the
    CLI process calls this: it changes process-wide gettext state."""
    gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    gettext.textdomain(DOMAIN)
    os.environ["LANGUAGE"] = language


_OS_ERRORS = {
    errno.ENOENT: N_("no such file or directory"),
    errno.EACCES: N_("permission denied"),
    errno.EPERM: N_("operation not permitted"),
    errno.ENOSPC: N_("no space left on the disk"),
    errno.EDQUOT: N_("disk quota exceeded"),
    errno.EROFS: N_("the disk is read-only"),
    errno.EISDIR: N_("is a folder, not a file"),
    errno.ENOTDIR: N_("not a folder"),
    errno.EEXIST: N_("already exists"),
    errno.EIO: N_("input/output error (a failing disk or medium?)"),
    errno.ENOTEMPTY: N_("the folder is not empty"),
    errno.EBUSY: N_("in use"),
    errno.ENAMETOOLONG: N_("name too long"),
    errno.ENODEV: N_("no such device"),
    errno.ENXIO: N_("no such device"),
}


def os_error_text(exc: OSError) -> str:
    """What the system refused, in the user's words: the C library's own in English (as
    before, and as every other tool prints it), ours in French."""
    known = _OS_ERRORS.get(exc.errno or 0)
    if known and current() != "en":
        return _(known)
    return exc.strerror or _("system error {number}").format(number=exc.errno)
