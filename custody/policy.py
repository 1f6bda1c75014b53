"""C2SP tlog-policy: which logs and witnesses are known, and the quorum of cosignatures a
checkpoint needs.

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]          (vkey: a cosignature/v1 key, type 0x04)
    group <name> all|any|<k> <member>...    (members defined on earlier lines)
    quorum <name>|none

One quorum line; `#` starts a comment; names of witnesses and groups share one namespace.
A site names its witnesses in such a file (`witness_policy` in scelle.toml); verifiers
read the same file.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.cosignature import parse_cosigner_vkey
from custody.errors import InputError, SiteError
from custody.i18n import _, os_error_text
from custody.keys import public_raw
from custody.note import parse_verifier_key

MAX_ITEMS = 32


@dataclass(frozen=True)
class Witness:
    label: str  # the policy's name for it
    name: str  # its key name: the name on its cosignature lines
    key: Ed25519PublicKey
    url: str | None


@dataclass(frozen=True)
class Group:
    threshold: int
    members: tuple[str, ...]


@dataclass
class Policy:
    logs: list[tuple[str, Ed25519PublicKey, str | None]] = field(default_factory=list)
    witnesses: dict[str, Witness] = field(default_factory=dict)  # by label
    groups: dict[str, Group] = field(default_factory=dict)
    quorum: str = "none"

    def keys(self) -> dict[str, Ed25519PublicKey]:
        """Witness key name -> key: what verifies a cosignature line."""
        return {w.name: w.key for w in self.witnesses.values()}

    def satisfied(self, cosigned: Collection[str]) -> bool:
        """Whether witnesses whose key names are `cosigned` meet the quorum."""
        return self.quorum == "none" or self._met(self.quorum, set(cosigned))

    def _met(self, label: str, cosigned: set[str]) -> bool:
        if label in self.witnesses:
            return self.witnesses[label].name in cosigned
        group = self.groups[label]
        return sum(self._met(m, cosigned) for m in group.members) >= group.threshold


def parse_policy(text: str) -> Policy:
    """Read a policy file; InputError naming the line that is wrong."""
    policy = Policy()
    quorums = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue

        def bad(why: str, number: int = number) -> InputError:
            return InputError(_("witness policy, line {n}: {why}").format(n=number, why=why))

        kind, args = words[0], words[1:]
        defined = set(policy.witnesses) | set(policy.groups)
        if kind == "log" and len(args) in (1, 2):
            name, key = parse_verifier_key(args[0])
            policy.logs.append((name, key, args[1] if len(args) == 2 else None))
        elif kind == "witness" and len(args) in (2, 3):
            label = args[0]
            if label in defined or label == "none":
                raise bad(_("{name} is defined twice").format(name=label))
            try:
                name, key = parse_cosigner_vkey(args[1])
            except InputError as exc:
                raise bad(exc.message) from exc
            key_bytes = public_raw(key)
            # One cosignature must never count twice: the v1 message does not bind the
            # name, so a key listed under two names would be one witness counted as two.
            if any(
                w.name == name or public_raw(w.key) == key_bytes for w in policy.witnesses.values()
            ):
                raise bad(_("a witness's key or key name is listed twice"))
            url = args[2] if len(args) == 3 else None
            if url is not None and not url.startswith(("http://", "https://")):
                raise bad(_("a witness URL starts with http:// or https://"))
            policy.witnesses[label] = Witness(label, name, key, url)
        elif kind == "group" and len(args) >= 3:
            label, k, members = args[0], args[1], args[2:]
            if label in defined or label == "none":
                raise bad(_("{name} is defined twice").format(name=label))
            unknown = [m for m in members if m not in defined]
            if unknown or len(set(members)) != len(members):
                raise bad(_("group members must be defined before, once each"))
            number = int(k) if re.fullmatch(r"[0-9]{1,3}", k) else 0
            threshold = {"all": len(members), "any": 1}.get(k) or number
            if not 1 <= threshold <= len(members):
                raise bad(_("a group's threshold is all, any or 1 to its number of members"))
            policy.groups[label] = Group(threshold, tuple(members))
        elif kind == "quorum" and len(args) == 1:
            if args[0] != "none" and args[0] not in defined:
                raise bad(_("the quorum names {name}, defined nowhere before").format(name=args[0]))
            policy.quorum = args[0]
            quorums += 1
        else:
            raise bad(_("expected log, witness, group or quorum with their fields"))
    if quorums != 1:
        raise InputError(_("a witness policy has exactly one quorum line"))
    if max(len(policy.logs), len(policy.witnesses), len(policy.groups)) > MAX_ITEMS:
        raise InputError(_("a witness policy lists at most 32 logs, witnesses and groups"))
    return policy


def read_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError(
            _("cannot read the witness policy {path}: {reason}").format(
                path=path, reason=os_error_text(exc)
            )
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(_("{path} is not UTF-8 text").format(path=path)) from exc
    try:
        return parse_policy(text)
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}") from exc
