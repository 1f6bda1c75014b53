"""The `witnesses` check of an offline verification: which witnesses of a policy vouch for
the checkpoint a folder carries (its C2SP tlog-cosignature lines, after the site's own
signature line), and whether they meet the policy's quorum.

`scelle verify --policy` (an export's ledger/checkpoint.txt) and `scelle ledger verify
--bundle --policy` (a bundle's checkpoint.txt) run it under the same id, with the same
verdict as VERIFY.html (templates/verifier.js, checkWitnesses). Without a policy, the names
on the checkpoint's other signature lines are listed, not checked. No database is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from custody.checks import Report
from custody.cosignature import Cosigned, verified_cosignatures
from custody.errors import IntegrityError
from custody.i18n import N_, _
from custody.keys import public_raw
from custody.note import parse_note
from custody.policy import Policy

# Run after the other checks when a witness policy is given (`scelle verify --policy`,
# `scelle ledger verify --bundle --policy`, VERIFY.html too).
POLICY_CHECKS = {"witnesses": N_("cosignatures of the witness policy's quorum")}


@dataclass
class WitnessedReport(Report):
    """The report on a folder carrying a checkpoint. Witnesses: those whose cosignatures
    verified (with a policy), or the names on the checkpoint's other signature lines, not
    checked (without one)."""

    cosigned: list[Cosigned] = field(default_factory=list)
    cosigners_named: list[str] = field(default_factory=list)


def check_witnesses(report: WitnessedReport, policy: Policy, note: str, site: str | None) -> None:
    """The checkpoint's cosignatures that verify against the policy's witnesses (kept in
    the report, even when they fall short), and whether they meet its quorum. `site`: the
    key name the site signs its checkpoints with; a policy that names its logs vouches
    for those only."""
    if policy.logs:
        key = report.key
        if key is None or not any(
            name == site and public_raw(k) == public_raw(key) for name, k, _url in policy.logs
        ):
            raise IntegrityError(_("the site's key is not one of the policy's logs"))
    parsed = parse_note(note)
    report.cosigned = verified_cosignatures(parsed.body, parsed.signatures, policy.keys())
    if not policy.satisfied({c.name for c in report.cosigned}):
        names = ", ".join(c.name for c in report.cosigned) or _("no witness of the policy")
        raise IntegrityError(
            _("the checkpoint is cosigned by {names}: not the policy's quorum").format(names=names)
        )


def named_cosigners(read: Callable[[], bytes], site: str | None) -> list[str]:
    """Names on the checkpoint's signature lines other than the site's (not checked);
    none if it cannot be read (its own check says why)."""
    try:
        parsed = parse_note(read().decode())
    except (IntegrityError, OSError, UnicodeDecodeError):
        return []
    return sorted({name for name, _kid, _sig in parsed.signatures if name != site})


def witness_lines(report: Report) -> list[str]:
    """Which witnesses vouch for the checkpoint (checked with --policy), or whose
    cosignature lines it carries (not checked without it)."""
    if not isinstance(report, WitnessedReport):
        return []
    if report.cosigned:
        return [
            _("witnesses that vouch for its checkpoint: {names}").format(
                names=", ".join(c.name for c in report.cosigned)
            )
        ]
    if report.cosigners_named:
        return [
            _(
                "its checkpoint carries cosignatures by {names}: not checked (give --policy "
                "with the witnesses' keys)"
            ).format(names=", ".join(report.cosigners_named))
        ]
    return []


def witnesses_json(report: WitnessedReport) -> dict[str, Any]:
    """`--json`: the witnesses that vouch (with their cosignatures' time), or the names
    not checked."""
    return {
        "witnesses": [{"name": c.name, "time": c.timestamp} for c in report.cosigned],
        "cosignatures_not_checked": report.cosigners_named,
    }
