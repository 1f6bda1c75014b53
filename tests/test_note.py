"""Signed notes and checkpoints against Go's note package (tests/vectors/README.md)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.errors import InputError, IntegrityError, SignatureError
from custody.keys import Signer
from custody.note import (
    Checkpoint,
    key_id,
    parse_note,
    parse_verifier_key,
    sign_checkpoint,
    split_notes,
    verifier_key,
    verify_checkpoint,
)

# From the documentation of golang.org/x/mod/sumdb/note (BSD-3-Clause, The Go Authors).
GO_SKEY_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def go_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(GO_SKEY_SEED)[1:])


def test_verifier_key_matches_go() -> None:
    assert verifier_key("PeterNeumann", go_key().public_key()) == GO_VKEY
    name, key = parse_verifier_key(GO_VKEY)
    assert name == "PeterNeumann"
    assert key_id(name, key).hex() == "c74f20a3"


def test_signature_matches_go() -> None:
    key = go_key()
    blob = key_id("PeterNeumann", key.public_key()) + key.sign(GO_TEXT.encode())
    assert base64.b64encode(blob).decode() == GO_SIG
    note = parse_note(f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIG}\n")
    assert note.body == GO_TEXT
    assert note.signatures[0][0] == "PeterNeumann"


def test_checkpoint_round_trip_and_tamper() -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    cp = Checkpoint("csv.test/ledger", 42, bytes(range(32)))
    note = sign_checkpoint(cp, "csv.test", signer)
    assert note.startswith("csv.test/ledger\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n")
    assert verify_checkpoint(note, "csv.test", signer.public_key) == cp
    with pytest.raises(SignatureError):
        verify_checkpoint(note.replace("\n42\n", "\n43\n"), "csv.test", signer.public_key)
    other = Signer(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match="not signed by key"):
        verify_checkpoint(note, "csv.test", other.public_key)


def test_bad_vkeys_are_refused() -> None:
    for bad in ["x", "a+b+c", GO_VKEY.replace("c74f20a3", "00000000"), "a b+c74f20a3+AA=="]:
        with pytest.raises(InputError):
            parse_verifier_key(bad)


def test_split_notes_names_the_bad_line() -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    a = sign_checkpoint(Checkpoint("o", 1, bytes(32)), "k", signer)
    b = sign_checkpoint(Checkpoint("o", 2, bytes(32)), "k", signer)
    assert [n for _, n in split_notes(a + "\n" + b + "\n")] == [a, b]
    assert [line for line, _ in split_notes(a + "\n" + b + "\n")] == [1, 7]
    with pytest.raises(IntegrityError, match="line 7"):
        split_notes(a + "\n" + "garbage\n")
