"""VERIFY.html: the verifier page every export and ledger bundle carries.

One self-contained file (no request leaves it; its Content-Security-Policy forbids them):
templates/verifier.html with templates/verifier.js and the vendored libraries of
templates/vendor/ inlined, plus what the page must say exactly as `scelle verify` does,
taken from the one place each is defined: the check ids and titles (in French and
English, from the catalog), the export's fixed files, the gap kinds' words, the binding
lines of VERIFY.txt. The page is the same for every export, so it is listed in the
manifest like any other file: a swapped page fails every other way of verifying.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

from custody.bundle_verify import BUNDLE_BEFORE, BUNDLE_CHECKS, FILES
from custody.bundle_verify import FORMAT as BUNDLE_FORMAT
from custody.checks import PAGE
from custody.errors import IntegrityError
from custody.i18n import _, in_language
from custody.proofs import TLOG_PROOF_HEADER
from custody.signatures import SSH_NAMESPACE
from custody.witness_check import POLICY_CHECKS
from exporters import verify_text
from exporters.french import FILE_ROLES
from exporters.gaps import ENGLISH, FRENCH, WITHHELD
from exporters.manifest import COVER_SUMS, FIXED, FORMAT, MAX_MANIFEST_BYTES, OPTIONAL, TLOG_PROOF
from exporters.verify_export import BEFORE, EXPORT_CHECKS

# The libraries inlined, in the order loaded, with the SHA-256 of each file as copied
# from its npm tarball (templates/vendor/README.md says whence): a changed byte stops
# the page from being made.
VENDOR = {
    "vendor/tweetnacl-1.0.3/nacl-fast.min.js": (
        "3ec535c004aeeb225785d8e93fb33bf99f52e399bd7dfc01969b5629baea5131"
    ),
    "vendor/hash-wasm-4.13.0/sha256.umd.min.js": (
        "0ab0ba5a8242ca02d4403e08a60b9308cb7322a175c3a5c3071c595fad1e65de"
    ),
    "vendor/hash-wasm-4.13.0/blake2b.umd.min.js": (
        "31d7f3fda3819f17685dcab28e1808b3d08edbf1de3aaba8cbeca8c0f3511440"
    ),
}


ENGLISH_ROLES = {
    "master": "original",
    "working": "working copy",
    "attached": "original from another system",
    "verifier": "verifier page",
}


def _titles(table: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each check's title in French (from the catalog) and English, as `scelle verify`
    words it (`check_title`)."""
    return {
        ident: {
            language: in_language(message, language).format(namespace=SSH_NAMESPACE)
            for language in ("fr", "en")
        }
        for ident, message in table.items()
    }


def page_data() -> dict[str, Any]:
    """What the page reads as data: every name and rule it shares with `scelle verify`."""
    return {
        "checks": {
            "export": _titles(EXPORT_CHECKS),
            "bundle": _titles(BUNDLE_CHECKS),
            # run last when a witness policy is given, for an export or a bundle
            "policy": _titles(POLICY_CHECKS),
            # what each reads before any check: the export's `keys` is not the bundle's
            "before": {"export": _titles(BEFORE), "bundle": _titles(BUNDLE_BEFORE)},
        },
        "export_format": FORMAT,
        "bundle_format": BUNDLE_FORMAT,
        "max_manifest_bytes": MAX_MANIFEST_BYTES,
        "export_fixed": sorted(FIXED),
        "export_fixed_with_agents": [COVER_SUMS, f"{COVER_SUMS}.sig"],
        "export_optional": sorted(OPTIONAL),
        "tlog_proof": TLOG_PROOF,
        "tlog_proof_header": TLOG_PROOF_HEADER,
        "bundle_files": sorted(FILES),
        "page": PAGE,
        "ssh_namespace": SSH_NAMESPACE,
        "withheld": sorted(str(kind) for kind in WITHHELD),
        "file_roles": {
            role: {"fr": french_role, "en": ENGLISH_ROLES[role]}
            for role, french_role in FILE_ROLES.items()
        },
        "gap_kinds": {str(kind): {"fr": FRENCH[kind], "en": ENGLISH[kind]} for kind in ENGLISH},
        "verify_txt": verify_text.binding_lines(),
        "ed25519": {
            "webcrypto": "WebCrypto (le navigateur / the browser)",
            "tweetnacl": "tweetnacl 1.0.3 (domaine public / public domain), "
            "WebCrypto Ed25519 absent de ce navigateur / missing from this browser",
        },
    }


def _vendored(name: str) -> str:
    data = (resources.files("templates") / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != VENDOR[name]:
        raise IntegrityError(
            _("{name} is not the vendored file it should be").format(name=f"templates/{name}")
        )
    return _script(data.decode("utf-8"))


def _script(text: str) -> str:
    """Text safe inside an inline <script> element."""
    if "</script" in text.lower():
        raise ValueError("a script holds </script>")
    return text


@cache
def page_bytes() -> bytes:
    """The page, byte for byte the same for a given version of scelle."""
    root = resources.files("templates")
    shell = (root / "verifier.html").read_text(encoding="utf-8")
    # Key order is the checks' order: not sorted.
    data = json.dumps(page_data(), ensure_ascii=False).replace("</", "<\\/")
    vendor = "\n".join(_vendored(name) for name in VENDOR)
    page = (
        shell.replace("/*DATA*/", data, 1)
        .replace("/*VENDOR*/", vendor, 1)
        .replace("/*VERIFIER*/", _script((root / "verifier.js").read_text(encoding="utf-8")), 1)
    )
    return page.encode("utf-8")
