"""VERIFY.txt: how an investigator checks an export with stock tools, in French and English."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.keys import der_sha256, ssh_fingerprint


def verify_text(
    requisition_id: str, key_name: str, key: Ed25519PublicKey, manifest_sha256: str, seq: int
) -> str:
    ssh_fp, der_fp = ssh_fingerprint(key), der_sha256(key)
    return f"""\
EXPORT {requisition_id} — VÉRIFICATION / VERIFICATION
=====================================================

Empreintes de la clé de signature du CSV (à comparer avec celles imprimées sur le
procès-verbal de remise signé) / Fingerprints of the CSV's signing key (compare them with
those printed on the signed handover sheet):

  ssh-keygen -lf      : {ssh_fp}
  openssl DER sha256  : {der_fp}
  clé / key           : {key_name}

SHA-256 du manifeste / of the manifest: {manifest_sha256}
Entrée du registre de traçabilité / custody ledger entry: {seq}

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
  4. All at once, with scelle (pip install scelle):
       scelle verify . --key {ssh_fp}

The ledger/ directory holds this export's entry in the CSV's custody ledger (its exact
bytes), its RFC 9162 inclusion proof, and the signed checkpoint (C2SP signed note) the
proof leads to; `scelle verify` checks all three.
"""
