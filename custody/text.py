"""Text and numbers a person types or a file provides, checked before anything is written.

A NUL or another control character has no place in a name, a PV number or a reason:
SQLite stores it, PostgreSQL refuses it (so `scelle db copy` would fail months later),
and a terminal or a PDF shows it as nothing, or rewrites the line (a carriage return, a
right-to-left override). Lengths are bounded so that a pasted file cannot become a 40 MB
ledger entry. Whole numbers are ASCII digits only: Python's `int()` also reads `1_0` as 10
and `٣` as 3, which nobody typing a retention period means.
"""

from __future__ import annotations

import re

from custody.errors import InputError
from custody.i18n import _

LINE_MAX = 300  # identifiers and names: PV and seal numbers, officers, units, cameras
PROSE_MAX = 4000  # reasons: a few paragraphs
PATH_MAX = 4096  # PATH_MAX on Linux

# C0 and C1 controls, DEL, lone surrogates (no UTF-8 for them), the Unicode line and
# paragraph separators, and the bidirectional embeddings, overrides and isolates that make
# a text display in another order than it is stored (CVE-2021-42574).
_OTHERS = "\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069"
_LINE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_PROSE = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # tab (09) and newline (0A) pass
_WHOLE = re.compile(r"[0-9]+", re.ASCII)
_SIGNED = re.compile(r"[+-]?[0-9]+", re.ASCII)
INT64_MAX = 2**63 - 1  # what an INTEGER (SQLite) or BIGINT (PostgreSQL) column holds


def shown(value: str, limit: int = 60) -> str:
    """`value` quoted for a message, as typed, cut if long (a 20 MB value must not come
    back on the terminal)."""
    if len(value) <= limit:
        return repr(value)
    return _("{start}… ({count} characters)").format(
        start=repr(value[:limit]), count=f"{len(value):,}"
    )


def _check(value: str, what: str, pattern: re.Pattern[str], limit: int) -> str:
    """`what` names the value in the user's language ("the reason": callers translate it)."""
    if len(value) > limit:
        raise InputError(
            _("{what} is {length} characters long: at most {limit}").format(
                what=what, length=f"{len(value):,}", limit=f"{limit:,}"
            )
        )
    bad = pattern.search(value)
    if bad:
        raise InputError(
            _(
                "{what} contains the control character U+{code} "
                "at character {position}: only printable text is accepted"
            ).format(what=what, code=f"{ord(bad.group()):04X}", position=bad.start() + 1)
        )
    return value


def line(value: str, what: str, limit: int = LINE_MAX) -> str:
    """One line of printable text (a name, an identifier, a time as typed)."""
    return _check(value, what, _LINE, limit)


def prose(value: str, what: str, limit: int = PROSE_MAX) -> str:
    """Printable text that may run over several lines (a reason): tabs and newlines pass."""
    return _check(value, what, _PROSE, limit)


def path_text(value: str, what: str) -> str:
    """A file or directory name as typed: any character but a control character."""
    return _check(value, what, _LINE, PATH_MAX)


def whole_number(
    text: str, what: str, *, signed: bool = False, low: int = 0, high: int | None = INT64_MAX
) -> int:
    """A whole number in ASCII digits (with a sign only if `signed`), within [low, high]
    (`high=None`: no upper bound, the caller says what a large number names).

    The digit count is checked before conversion: `int()` of a million digits is slow and
    raises past 4,300 digits."""
    value = text.strip()
    if not (_SIGNED if signed else _WHOLE).fullmatch(value):
        if signed:
            message = _(
                "{what} must be a whole number (digits 0-9, after a sign if need be), not {value}"
            )
        else:
            message = _("{what} must be a whole number (digits 0-9 only), not {value}")
        raise InputError(message.format(what=what, value=shown(text)))
    digits = len(str(max(abs(low), abs(high)))) if high is not None else 100
    number = int(value) if len(value.lstrip("+-0")) <= digits else None
    if number is None or number < low or (high is not None and number > high):
        if high is not None:
            message = _("{what} must be between {low} and {high}, not {value}")
        else:
            message = _("{what} must be at least {low}, not {value}")
        raise InputError(message.format(what=what, low=low, high=high, value=shown(value, 30)))
    return number
