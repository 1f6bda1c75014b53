"""VERIFY.txt: how an investigator checks an export with stock tools, in French and English."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.i18n import _
from custody.keys import der_sha256, ssh_fingerprint

# The lines that bind a VERIFY.txt to its export (`scelle verify` reads them back: a
# VERIFY.txt signed by the same key but copied from another export must not pass).
_HEAD = "EXPORT {} — VÉRIFICATION / VERIFICATION"
_SSH = "  ssh-keygen -lf      : "
_SHA = "SHA-256 du manifeste / of the manifest: "
_SEQ = "Entrée du registre de traçabilité / custody ledger entry: "


@dataclass(frozen=True)
class Stated:
    """What a VERIFY.txt says it is about."""

    requisition_id: str
    ssh_fingerprint: str
    manifest_sha256: str
    ledger_seq: str


def stated(text: str) -> Stated:
    """Read the binding lines back; ValueError if one is missing or stated twice."""
    lines = text.splitlines()
    head = re.fullmatch(_HEAD.format("(.+)"), lines[0] if lines else "")
    if head is None:
        raise ValueError(_("VERIFY.txt does not start with the export it is about"))

    def one(prefix: str) -> str:
        found = [line[len(prefix) :] for line in lines if line.startswith(prefix)]
        if len(found) != 1:
            raise ValueError(
                _("VERIFY.txt does not state {line!r} exactly once").format(line=prefix.strip(" :"))
            )
        return found[0]

    return Stated(head[1], one(_SSH), one(_SHA), one(_SEQ))


# Written in French and English whatever the user's language (it travels with the export
# to readers of either): its prose is not drawn from the catalog.
def verify_text(
    requisition_id: str, key_name: str, key: Ed25519PublicKey, manifest_sha256: str, seq: int
) -> str:
    ssh_fp, der_fp = ssh_fingerprint(key), der_sha256(key)
    head = _HEAD.format(requisition_id)
    return f"""\
{head}
=====================================================

Empreintes de la clé de signature du CSV (à comparer avec celles imprimées sur le
procès-verbal de remise signé) / Fingerprints of the CSV's signing key (compare them with
those printed on the signed handover sheet):

{_SSH}{ssh_fp}
  openssl DER sha256  : {der_fp}
  clé / key           : {key_name}

{_SHA}{manifest_sha256}
{_SEQ}{seq}

Une clé fournie dans l'export ne prouve rien tant que son empreinte n'a pas été comparée
avec celle du procès-verbal. / A key shipped inside the export proves nothing until its
fingerprint has been compared with the one on the handover sheet.

FRANÇAIS — depuis ce répertoire, avec les outils standard :

  1. Empreinte de la clé :
       cut -d' ' -f3- keys/allowed_signers | ssh-keygen -lf -
       openssl pkey -pubin -in keys/signer.pub.pem -outform DER | sha256sum
  2. Signature du manifeste (l'une suffit, toutes doivent réussir) :
       openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
         -in manifest.json -sigfile manifest.json.sig
       ssh-keygen -Y verify -f keys/allowed_signers -I {key_name} -n scelle-export \\
         -s manifest.json.sshsig < manifest.json
       minisign -Vm manifest.json -p keys/minisign.pub -x manifest.json.minisig
  3. Intégrité des fichiers :
       sha256sum -c SHA256SUMS
       sha256sum SHA256SUMS     (doit être égal à "sha256sums" dans manifest.json)
     Bordereau (documents/), lié à ce manifeste :
       openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
         -in documents/SHA256SUMS -sigfile documents/SHA256SUMS.sig
       (cd documents && sha256sum -c SHA256SUMS)
  4. Tout en une fois, avec scelle (pip install scelle) :
       scelle verify . --key {ssh_fp}

ENGLISH — from this directory, with standard tools:

  1. Key fingerprint:
       cut -d' ' -f3- keys/allowed_signers | ssh-keygen -lf -
       openssl pkey -pubin -in keys/signer.pub.pem -outform DER | sha256sum
  2. Manifest signature (any one is enough; all must succeed):
       openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
         -in manifest.json -sigfile manifest.json.sig
       ssh-keygen -Y verify -f keys/allowed_signers -I {key_name} -n scelle-export \\
         -s manifest.json.sshsig < manifest.json
       minisign -Vm manifest.json -p keys/minisign.pub -x manifest.json.minisig
  3. File integrity:
       sha256sum -c SHA256SUMS
       sha256sum SHA256SUMS     (must equal "sha256sums" in manifest.json)
     Cover sheet (documents/), bound to this manifest:
       openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
         -in documents/SHA256SUMS -sigfile documents/SHA256SUMS.sig
       (cd documents && sha256sum -c SHA256SUMS)
  4. All at once, with scelle (pip install scelle):
       scelle verify . --key {ssh_fp}

The ledger/ directory holds this export's entry in the CSV's custody ledger (its exact
bytes), its RFC 9162 inclusion proof, and the signed checkpoint (C2SP signed note) the
proof leads to; `scelle verify` checks all three.
"""
