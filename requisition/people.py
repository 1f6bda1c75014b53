"""The agents as the legal papers name them (décret 2023-1102 wants name and role; the
designation reference says on what authority they act), read from the agents register
at the moment a paper is made, so that a later change does not rewrite a signed one."""

from __future__ import annotations

from collections.abc import Iterable

from custody.site import Site
from requisition import agents


def described(site: Site, logins: Iterable[str | None]) -> dict[str, dict[str, str]]:
    """login -> name, role, designation of each designated agent among `logins`; a login
    the register does not hold is left out (the papers then name it by login)."""
    out: dict[str, dict[str, str]] = {}
    for login in {x for x in logins if x}:
        who = agents.identity(site, login)
        if who is not None:
            out[login] = {
                "name": who.full_name,
                "role": who.role,
                "designation": who.designation,
            }
    return out
