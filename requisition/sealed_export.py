"""The sealed export of a requisition, as the papers may describe it: the directory the
requisition names, holding the manifest its ledger entry recorded, signed by the site.

The papers (PV de remise, seal labels, bordereau) are drawn from the export's files; a
directory swapped, copied from another requisition or edited since it was sealed must
not become a signed paper that states it. So before any paper is made, the manifest's
hash is compared with the one the ledger's `requisition.export` entry holds, its
signature checked with the site key ledger entry 0 records, and its requisition named.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from custody.canonical import parse_canonical
from custody.errors import IntegrityError, InvalidStateError, SignatureError
from custody.i18n import _
from custody.signatures import verify_raw
from custody.site import Site
from exporters.manifest import MANIFEST
from requisition.requisitions import get, last_entry_data


def _recorded_manifest(site: Site, requisition_id: str) -> str | None:
    """The manifest hash of the requisition's last `requisition.export` entry."""
    data = last_entry_data(site, requisition_id, "requisition.export") or {}
    found = data.get("manifest_sha256")
    return found if isinstance(found, str) else None


def sealed_export(site: Site, requisition_id: str) -> Path:
    """The export directory, once it is shown to be this requisition's sealed export;
    InvalidStateError if it has none (yet, or any more), IntegrityError if what is there
    is not what was sealed."""
    requisition = get(site, requisition_id)
    if not requisition.export_path or not Path(requisition.export_path).is_dir():
        raise InvalidStateError(
            _("requisition {requisition} has no export yet").format(requisition=requisition_id)
        )
    export = Path(requisition.export_path)
    recorded = _recorded_manifest(site, requisition_id)
    try:
        manifest = (export / MANIFEST).read_bytes()
        signature = (export / f"{MANIFEST}.sig").read_bytes()
    except OSError as exc:
        raise IntegrityError(
            _("{export} is not a complete sealed export ({missing})").format(
                export=export, missing=exc.filename
            )
        ) from exc
    sha = hashlib.sha256(manifest).hexdigest()
    if recorded is None or sha != recorded:
        raise IntegrityError(
            _(
                "{export}: its manifest is not the one the ledger recorded when requisition "
                "{requisition} was sealed: no paper is made from it"
            ).format(export=export, requisition=requisition_id),
            hint=_("run 'scelle verify' on the export"),
        )
    try:
        verify_raw(site.identity().public_key, manifest, signature)
    except SignatureError as exc:
        raise IntegrityError(
            _("{export}: the manifest's signature is not the site's").format(export=export)
        ) from exc
    named = parse_canonical(manifest).get("requisition", {}).get("id")
    if named != requisition_id:
        raise IntegrityError(
            _("{export} is the export of requisition {named}, not {requisition}").format(
                export=export, named=named, requisition=requisition_id
            )
        )
    return export
