"""VERIFY.txt: how an investigator checks an export, in one bilingual document (French
first, then English; each command given once). A: the VERIFY.html page; B: stock tools on
Linux and macOS, down to this export's own ledger proof, step by step; C: Windows as
police desktops have it; D: scelle, from the CSV. It is written per export, once the
ledger proof exists, and names its export in the binding lines that `stated` reads back.

Commands are told apart mechanically: every command line of B and C is indented by exactly
six spaces, a line it continues (after a trailing ` \\` or ` ^`) by eight; no explanation
line starts with six spaces.

How each command was checked:
- B: tests/test_verify_txt.py runs every command of B verbatim, in order, in one bash (the
  proof's steps carry `$h` from one to the next), with OpenSSL 3.0, OpenSSH 9.2, minisign
  0.11, coreutils and poppler's pdfsig, on a real export, where each must succeed and
  nothing in the export's folder may change, and on tampered copies, where they fail.
  The same commands were also run once by hand in zsh 5.9 (macOS's shell): all succeed.
- `ssh-keygen -lf keys/allowed_signers` does not read that file's format (OpenSSH 9.2: "is
  not a public key file"), hence `cut` in B; nor does `ssh-keygen -i -m PKCS8` read an
  Ed25519 PEM key (9.2: "unsupported pubkey type"). On Windows, which has no `cut`, the
  fingerprint to compare is the one `ssh-keygen -Y verify` prints on its "Good" line
  (checked on 9.2; current OpenSSH source prints it so; 8.1, where -Y came, not checked).
- `openssl pkeyutl -rawin` wants -in to be a regular file: OpenSSL 3.0 fails on a pipe or
  `<(...)` ("Could not allocate 0 bytes for oneshot sign/verify buffer"). The checkpoint's
  body and signature therefore go to a directory made by `mktemp -d`, never into the
  export's folder (it may be a read-only DVD), removed after.
- C was NOT run: there is no Windows here. It is written for cmd.exe on Windows 10/11
  (inbox OpenSSH 8.1 to 9.5, Windows PowerShell 5.1) from documented behaviour: a `^` at
  the end of a line continues the command when each line's quotes are balanced (the tests
  check that, and that no `%` or inner `"` reaches cmd); powershell.exe joins the
  arguments after -Command with spaces; Get-FileHash gives uppercase hex, which PowerShell's
  case-insensitive -eq compares with the lowercase of SHA256SUMS and of the manifest;
  ForEach-Object runs its block in the caller's scope, so `$n` counts the failures.
  PowerShell, the default shell of Windows 11's terminal, has no `<`, rewrites what it pipes
  and would expand `$` inside "...": hence the `cmd` typed first. The signature check is
  `cmd /c "ssh-keygen -Y verify ... < manifest.json"` on one line, so that it works as
  written in PowerShell too (cmd strips the outer quotes, then redirects). Pasted into
  PowerShell without `cmd` first, the other commands fail (a `"..." ^` line does not
  parse) and none prints a "Good", "True" or "OK" it did not earn.
"""

from __future__ import annotations

import base64
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody import merkle
from custody.i18n import _
from custody.keys import der_sha256, ssh_fingerprint
from custody.signatures import SSH_NAMESPACE

if TYPE_CHECKING:
    from custody.note import Checkpoint
    from custody.proofs import InclusionProof

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


def proof_sides(index: int, size: int, count: int) -> list[bool]:
    """Where each of the `count` hashes of an inclusion proof goes, in order: True on the
    left of the hash computed so far, False on its right (RFC 9162 §2.1.3.2: the sibling
    subtree of each step, custody.merkle.inclusion_ranges, lies left of the leaf or right
    of it). ValueError if no proof has that length."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size}")
    ranges = merkle.inclusion_ranges(index, size)
    if len(ranges) != count:
        raise ValueError(f"an inclusion proof of entry {index} of {size} has {len(ranges)} hashes")
    return [high <= index for _low, high in ranges]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _underline(title: str, char: str) -> str:
    return f"{title}\n{char * len(title)}"


def _proof_steps(proof: InclusionProof) -> str:
    """The fold of this export's inclusion proof, one command per hash."""
    sides = proof_sides(proof.index, proof.tree_size, len(proof.hashes))
    steps = []
    for n, (left, h) in enumerate(zip(sides, proof.hashes, strict=True), start=1):
        fr, en = ("à gauche", "on the left") if left else ("à droite", "on the right")
        steps.append(f"   {n}/{len(sides)} : {fr} / {en}")
        pair = f"'{_b64(h)}' \"$h\"" if left else f"\"$h\" '{_b64(h)}'"
        steps.append(f"      h=$(noeud {pair})")
    return "\n".join(steps) if steps else "   (aucun hachage / no hash: the tree has one entry)"


# Written in French and English whatever the user's language (it travels with the export
# to readers of either): its prose is not drawn from the catalog.
def verify_text(
    requisition_id: str,
    key_name: str,
    key: Ed25519PublicKey,
    manifest_sha256: str,
    seq: int,
    proof: InclusionProof,
    checkpoint: Checkpoint,
    stamped: Mapping[str, Any] | None = None,
    witnesses: Sequence[str] | None = None,
) -> str:
    """This export's VERIFY.txt; `proof` is the inclusion proof of its ledger entry `seq`
    in the tree that `checkpoint` (signed by `key_name`) states; `stamped`, what its
    entry records of an RFC 3161 timestamp (None: no TSA configured); `witnesses`, the
    names whose cosignatures its checkpoint carries (None: no witness configured)."""
    if (proof.index, proof.tree_size, proof.root) != (seq, checkpoint.size, checkpoint.root):
        raise ValueError("the inclusion proof is not of this entry in this checkpoint's tree")
    ssh_fp, der_fp = ssh_fingerprint(key), der_sha256(key)
    # One line, whatever its length: cmd /c cannot continue a line inside its quotes.
    windows_sshsig = (
        f'cmd /c "ssh-keygen -Y verify -f keys\\allowed_signers -n {SSH_NAMESPACE} '
        f'-I {key_name} -s manifest.json.sshsig < manifest.json"'
    )
    head = _HEAD.format(requisition_id)
    root = _b64(checkpoint.root)
    return f"""\
{_underline(head, "=")}

Empreintes de la clé de signature du CSV, à comparer avec celles imprimées sur le
procès-verbal de remise signé / Fingerprints of the CSV's signing key, to compare with
those printed on the signed handover sheet (procès-verbal de remise):

{_SSH}{ssh_fp}
  openssl DER sha256  : {der_fp}
  clé / key           : {key_name}

{_SHA}{manifest_sha256}
{_SEQ}{seq}

Une clé fournie dans l'export ne prouve rien tant que son empreinte n'a pas été comparée
avec celle du procès-verbal. / A key shipped inside the export proves nothing until its
fingerprint has been compared with the one on the handover sheet.

Quatre façons de vérifier ; une seule suffit. A, B et D vérifient tout (signatures,
fichiers, registre) ; C, sous Windows, la signature, les fichiers et le bordereau.
Four ways to verify; any one is enough. A, B and D check everything (signatures, files,
ledger); C, on Windows, the signature, the files and the cover sheet.

Les commandes sont en retrait de 6 espaces ; une ligne finie par \\ ou ^ continue sur la
suivante. Les lignes → disent ce qui doit s'afficher. / Commands are indented by 6 spaces;
a line ending in \\ or ^ goes on on the next one. Lines → say what must be printed.


{_underline("A. VERIFY.html — le plus simple / the simplest", "-")}

Ouvrez VERIFY.html (dans ce dossier) dans un navigateur récent (Edge, Chrome, Firefox),
choisissez le dossier de l'export et lisez le verdict ; comparez l'empreinte de clé
affichée avec celle du procès-verbal. Rien à installer, aucun accès au réseau.
Open VERIFY.html (in this folder) in a current browser (Edge, Chrome, Firefox), pick the
export's folder and read the verdict; compare the key fingerprint it shows with the one on
the handover sheet. Nothing to install, no network access.


{_underline("B. Linux (GendBuntu), macOS — outils standard / stock tools", "-")}

Dans un terminal (bash ou zsh), depuis le dossier de l'export ; rien n'y est écrit (ce
peut être un DVD). macOS : shasum -a 256 si sha256sum manque ; OpenSSL 3 (Homebrew).
In a terminal (bash or zsh), from the export's folder; nothing is written there (it may
be a DVD). macOS: shasum -a 256 if sha256sum is missing; OpenSSL 3 (Homebrew).

1. Empreinte de la clé / Key fingerprint
   À comparer avec le procès-verbal / to compare with the handover sheet:
      cut -d' ' -f3- keys/allowed_signers | ssh-keygen -lf -
   → 256 {ssh_fp} no comment (ED25519)
      openssl pkey -pubin -in keys/signer.pub.pem -outform DER | sha256sum
   → {der_fp}  -

2. Signature du manifeste / Manifest signature
   Trois outils vérifient la même signature (en trois formats) : un seul suffit, mais
   chacun de ceux que vous lancez doit réussir. / Three tools check the same signature (in
   three formats): one is enough, but each one you run must succeed.
      openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
        -in manifest.json -sigfile manifest.json.sig
   → Signature Verified Successfully
      ssh-keygen -Y verify -f keys/allowed_signers -n scelle-export \\
        -I {key_name} \\
        -s manifest.json.sshsig < manifest.json
   → Good "scelle-export" signature for {key_name}
     with ED25519 key {ssh_fp}
      minisign -Vm manifest.json -p keys/minisign.pub -x manifest.json.minisig
   → Signature and comment signature verified
   Le manifeste signé est celui du procès-verbal / the signed manifest is the one on the
   handover sheet:
      sha256sum manifest.json
   → {manifest_sha256}  manifest.json

3. Fichiers / Files
      sha256sum -c SHA256SUMS
   → une ligne OK par fichier / one OK line per file
   SHA256SUMS est celui du manifeste : les deux empreintes doivent être les mêmes.
   SHA256SUMS is the manifest's: both hashes must be the same.
      sha256sum SHA256SUMS
      grep -o '"sha256sums":{{[^}}]*}}' manifest.json

4. Bordereau / Cover sheet (documents/)
   Signé, et lié à ce manifeste (../manifest.json) / signed, and bound to this manifest:
      openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
        -in documents/SHA256SUMS -sigfile documents/SHA256SUMS.sig
   → Signature Verified Successfully
      (cd documents && sha256sum -c SHA256SUMS)
   → cover.html: OK, cover.pdf: OK, ../manifest.json: OK
      openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
        -in documents/cover.pdf -sigfile documents/cover.pdf.sig
   → Signature Verified Successfully
   Le PDF porte aussi sa propre signature : le panneau Signatures d'un lecteur PDF la
   montre, ou pdfsig (poppler-utils). / The PDF also carries its own signature: a PDF
   reader's Signatures panel shows it, or pdfsig (poppler-utils).
      pdfsig documents/cover.pdf
   → Signature Validation: Signature is Valid.
   (« Certificate issuer is unknown » : normal, le certificat est celui du CSV, son
   empreinte est sur le procès-verbal / expected: the certificate is the CSV's own, its
   fingerprint is on the handover sheet.)

5. Point de contrôle signé du registre / Signed ledger checkpoint
   ledger/checkpoint.txt : registre / ledger {checkpoint.origin},
   {checkpoint.size} entrées / entries, racine / root {root}
   Corps signé = ses 3 premières lignes ; signature = les 64 derniers octets du bloc
   base64 de la ligne de signature (« — clé bloc »), copiés dans un dossier temporaire,
   jamais dans l'export. / Signed body = its first 3 lines; signature = the last 64 bytes
   of the base64 blob on the signature line ("— key blob"), copied to a temporary
   folder, never into the export.
      t=$(mktemp -d)
      head -n 3 ledger/checkpoint.txt > "$t/body"
      grep -F '— {key_name} ' ledger/checkpoint.txt \\
        | cut -d' ' -f3 | base64 -d | tail -c 64 > "$t/sig"
      openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin \\
        -in "$t/body" -sigfile "$t/sig"
   → Signature Verified Successfully
      rm -r "$t"

6. Entrée du registre, preuve d'inclusion / Ledger entry, inclusion proof
   ledger/entry.json est l'entrée n° {seq} et nomme ce manifeste / is entry {seq} and
   names this manifest:
      grep -o '"manifest_sha256":"[0-9a-f]*"' ledger/entry.json
   → "manifest_sha256":"{manifest_sha256}"
   Feuille = SHA-256(0x00 ‖ entry.json), égale au leaf_hash de ledger/inclusion.json.
   Leaf = SHA-256(0x00 ‖ entry.json), equal to the leaf_hash in ledger/inclusion.json.
      h=$( (printf '\\000'; cat ledger/entry.json) | openssl dgst -sha256 -binary | base64 )
      [ "$h" = '{_b64(proof.leaf_hash)}' ] \\
        && echo 'OK  feuille / leaf' || echo 'ÉCHEC  feuille / leaf'
   Nœud = SHA-256(0x01 ‖ gauche ‖ droite) / node = SHA-256(0x01 ‖ left ‖ right):
      noeud() {{ (printf '\\001'; printf %s "$1" | base64 -d; printf %s "$2" | base64 -d) \\
        | openssl dgst -sha256 -binary | base64; }}
   Chaque hachage de la preuve (« hashes » de ledger/inclusion.json), dans l'ordre, à
   gauche ou à droite selon la place de l'entrée (RFC 9162 §2.1.3.2) / each proof hash
   ("hashes" in ledger/inclusion.json), in order, on the left or on the right as the
   entry's place requires (RFC 9162 §2.1.3.2): index {proof.index}, tree_size {proof.tree_size}.
{_proof_steps(proof)}
   La racine obtenue est celle du point de contrôle signé (sa 3e ligne) / the root reached
   is the signed checkpoint's (its line 3):
      [ "$h" = "$(sed -n 3p ledger/checkpoint.txt)" ] \\
        && echo 'OK  preuve d’inclusion / inclusion proof' \\
        || echo 'ÉCHEC  preuve d’inclusion / inclusion proof'


{_underline("C. Windows 10, 11 (cmd, PowerShell)", "-")}

Rien à installer : ssh-keygen (OpenSSH) et PowerShell sont fournis avec Windows. Ouvrez le
dossier de l'export dans l'Explorateur, tapez cmd dans la barre d'adresse, puis Entrée.
Dans PowerShell ou le Terminal, tapez d'abord cmd : ces commandes sont celles de l'Invite
de commandes. / Nothing to install: ssh-keygen (OpenSSH) and PowerShell come with
Windows. Open the export's folder in File Explorer, type cmd in the address bar, press
Enter. In PowerShell or Terminal, first type cmd: these are Command Prompt commands.
      cmd

1. Signature du manifeste, empreinte de la clé / Manifest signature, key fingerprint
   Sur une seule ligne : cmd /c la fait marcher telle quelle dans cmd comme dans PowerShell
   (qui n'a pas la redirection <). / On one line: cmd /c makes it work as written in cmd
   and in PowerShell alike (which has no < redirection).
      {windows_sshsig}
   → Good "scelle-export" signature for {key_name}
     with ED25519 key {ssh_fp}
   Cette empreinte SHA256:… doit être celle du procès-verbal (ssh-keygen -lf ne lit pas
   keys\\allowed_signers : c'est cette ligne qui la donne). « unknown option -- Y » :
   OpenSSH trop ancien (7.7, anciens Windows 10 ; ssh -V le dit) : utilisez VERIFY.html.
   That SHA256:… fingerprint must be the one on the handover sheet (ssh-keygen -lf does
   not read keys\\allowed_signers: this line gives it). "unknown option -- Y": OpenSSH
   too old (7.7, early Windows 10; ssh -V tells): use VERIFY.html.
      certutil -hashfile manifest.json SHA256
   → {manifest_sha256}

2. Fichiers / Files
   SHA256SUMS est celui du manifeste / SHA256SUMS is the manifest's:
      powershell -NoProfile -Command "(Get-Content -Raw -Encoding UTF8 manifest.json |" ^
        "ConvertFrom-Json).sha256sums.sha256 -eq (Get-FileHash SHA256SUMS).Hash"
   → True
   Chaque fichier : OK ou ECHEC, puis le compte des échecs / every file: OK or ECHEC,
   then the count of failures:
      powershell -NoProfile -Command "$n = 0; Get-Content -Encoding UTF8 SHA256SUMS |" ^
        "ForEach-Object {{ $h, $f = $_ -split '  ', 2;" ^
        "if ((Get-FileHash -LiteralPath $f).Hash -eq $h) {{ 'OK     ' + $f }}" ^
        "else {{ 'ECHEC  ' + $f; $n++ }} }};" ^
        "'Fichiers en echec / files failed: ' + $n"
   → Fichiers en echec / files failed: 0

3. Bordereau / Cover sheet
   Ouvrez documents\\cover.pdf dans un lecteur PDF qui montre les signatures (Adobe
   Acrobat Reader : panneau Signatures) : signé par le CSV, non modifié depuis. / Open
   documents\\cover.pdf in a PDF reader that shows signatures (Adobe Acrobat Reader:
   Signatures panel): signed by the CSV, not modified since.

4. Registre / Ledger
   Pas d'outil standard sous Windows pour la preuve du registre : VERIFY.html (A) ou
   scelle (D) la vérifient. / No stock Windows tool for the ledger proof: VERIFY.html (A)
   or scelle (D) checks it.


{_underline("D. scelle — si le CSV vous l'a fourni / if the CSV gave it to you", "-")}

Demandez scelle au CSV qui a scellé l'export (son adresse figure sur le procès-verbal de
remise). N'installez jamais un paquet nommé scelle depuis un index public (PyPI…) :
n'importe qui peut en publier un. / Ask the CSV that sealed the export for scelle (its
address is on the handover sheet). Never install a package named scelle from a public
index (PyPI…): anyone can publish one.
      scelle verify . --key {ssh_fp}
   Code de sortie / exit code:
   0  = vérifié et complet / verified and complete;
   10 = vérifié mais PARTIEL (lacunes, énumérées sur le bordereau) /
   verified but PARTIAL (gaps, listed on the cover sheet);
   4  = une vérification a échoué / a check failed.

{_timestamp_section(stamped)}
{_witness_section(witnesses)}"""


def _timestamp_section(stamped: Mapping[str, Any] | None) -> str:
    """E: the RFC 3161 token on the manifest, checked with openssl, or why there is none."""
    title = _underline("E. Horodatage RFC 3161 / RFC 3161 timestamp", "-")
    if stamped is None:
        said = (
            "Aucun : le CSV n'avait pas d'autorité d'horodatage configurée. / None: the CSV had"
            " no timestamping authority configured."
        )
        return f"{title}\n\n{textwrap.fill(said, 88)}\n"
    if "failed" in stamped:
        said = (
            f"Aucun : l'autorité {stamped['tsa']} n'a pas pu horodater le manifeste au"
            f" scellement. / None: the authority {stamped['tsa']} could not stamp the manifest"
            " when it was sealed."
        )
        return f"{title}\n\n{textwrap.fill(said, 88)}\n"
    who = textwrap.fill(
        f"L'autorité {stamped['tsa']} atteste que le manifeste existait le {stamped['time']}",
        88,
    )
    return f"""{title}

{who}
(indépendamment de l'horloge du CSV). Vérifiez avec le certificat de l'autorité tel
qu'elle le publie (keys/tsa-ca.pem en est une copie) / The authority attests that the
manifest existed at that time (independently of the CSV's clock). Check it with the
authority's certificate as it publishes it (keys/tsa-ca.pem is a copy):
      openssl ts -verify -data manifest.json -in manifest.json.tsr -CAfile keys/tsa-ca.pem
   → Verification: OK
Une fois le certificat de l'autorité expiré, vérifiez à la date du jeton / Once the
authority's certificate has expired, check as of the token's time:
      openssl ts -verify -attime {_epoch(stamped["time"])} -data manifest.json \\
        -in manifest.json.tsr -CAfile keys/tsa-ca.pem
"""


def _witness_section(witnesses: Sequence[str] | None) -> str:
    """F: which witnesses cosigned the checkpoint, and how to check them against the
    policy the verifier trusts (not the CSV's word)."""
    title = _underline("F. Témoins / Witnesses", "-")
    if witnesses is None:
        said = (
            "Aucun : le CSV n'avait pas de témoins configurés. / None: the CSV had no"
            " witnesses configured."
        )
        return f"{title}\n\n{textwrap.fill(said, 88)}\n"
    if not witnesses:
        said = (
            "Aucun témoin n'a contresigné ce point de contrôle lors du scellement (injoignable)."
            " / No witness cosigned this checkpoint when it was sealed (unreachable)."
        )
        return f"{title}\n\n{textwrap.fill(said, 88)}\n"
    names = ", ".join(witnesses)
    carried = (
        "Le point de contrôle (ledger/checkpoint.txt, et ledger/entry.tlog-proof au format C2SP"
        f" tlog-proof) porte les contresignatures de : {names}. / The checkpoint"
        " (ledger/checkpoint.txt, and ledger/entry.tlog-proof in C2SP tlog-proof form) carries"
        f" the cosignatures of: {names}."
    )
    check = (
        "Vérifiez-les avec la politique de témoins que vous tenez de ces témoins eux-mêmes (pas"
        " celle du CSV) / Check them with the witness policy you hold from the witnesses"
        " themselves (not the CSV's):"
    )
    return f"""{title}

{textwrap.fill(carried, 88)}
{textwrap.fill(check, 88)}
      scelle verify . --policy witnesses.txt
   (ou / or: VERIFY.html, champ « Politique de témoins » / "Witness policy")
"""


def _epoch(utc: str) -> int:
    """A UTC instant as utc_text writes it, in Unix seconds (openssl's -attime)."""
    return int(datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp())


def binding_lines() -> dict[str, str]:
    """The binding lines' shapes, for VERIFY.html's reading of them (as `stated`)."""
    return {"head": _HEAD, "ssh": _SSH, "sha": _SHA, "seq": _SEQ}
