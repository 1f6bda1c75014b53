"""`scelle ledger export`: the custody layer's bundle, with the verifier page that the
export layer makes (custody cannot reach it), so an auditor checks it in a browser too;
with a witness policy, its checkpoint carries the cosignatures the site holds for it."""

from __future__ import annotations

from pathlib import Path

from custody.bundle import Bundle, export_bundle
from custody.cosigning import load_policy
from custody.site import Site
from exporters.verify_page import page_bytes


def export_ledger_bundle(
    site: Site, actor: str, out: Path | None, first: int, last: int | None, reason: str
) -> Bundle:
    """Write and record a ledger bundle holding VERIFY.html (and, with the site's witness
    policy, the cosignatures of its checkpoint)."""
    policy = load_policy(site.settings)
    return export_bundle(
        site.ledger, actor, out, first, last, reason, page=page_bytes(), policy=policy
    )
