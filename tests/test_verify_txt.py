"""VERIFY.txt as an investigator uses it: every command of its section B (Linux, macOS)
taken from a real export's VERIFY.txt and run verbatim by bash, which must succeed and
leave the export's folder untouched, then fail on tampered copies; the Windows section
checked for what can be checked without Windows; the by-hand inclusion proof's fold
checked against custody.merkle for every place a leaf can have."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody import merkle
from custody.note import Checkpoint
from custody.proofs import InclusionProof
from exporters.verify_text import proof_sides, stated, verify_text
from requisition.demo import run_demo
from tests.conftest import ADMIN, logged_in_as, require_tool

WIDTH = 92
# The two lines allowed to be longer: a binding line (stated() reads it whole) and the
# Windows signature check, which cmd /c needs on one line.
LONG = ("SHA-256 du manifeste / of the manifest: ", '      cmd /c "ssh-keygen -Y verify ')
STOCK_TOOLS = ("openssl", "ssh-keygen", "minisign", "sha256sum", "pdfsig")
CONTINUED = (" \\", " ^")
RC = re.compile(r"\n@@rc=(\d+)\n")


@dataclass(frozen=True)
class Export:
    path: Path
    fingerprint: str  # as `scelle verify` computed it
    text: str  # its VERIFY.txt


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Export]:
    with logged_in_as(ADMIN):  # the demo site's administrator
        result = run_demo(tmp_path_factory.mktemp("demo") / "site", lambda _line: None)
    assert result.verified.fingerprint is not None
    path = result.export.path
    yield Export(path, result.verified.fingerprint, (path / "VERIFY.txt").read_text())


def key_name(text: str) -> str:
    """The signing key's name, as VERIFY.txt's header states it."""
    return next(
        line.split(": ", 1)[1]
        for line in text.splitlines()
        if line.startswith("  clé / key           : ")
    )


def section(text: str, letter: str) -> list[str]:
    """The lines of section `letter` (A to D), its title included."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{letter}. "))
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"[A-Z]\. ", lines[i])), len(lines)
    )
    return lines[start:end]


def commands(lines: list[str], join: bool = True) -> list[str]:
    """The commands among `lines`: indented by exactly 6 spaces, a continued line (trailing
    ` \\` or ` ^`) followed by lines indented by 8. Joined into one line each, or (`join`
    False) kept as the lines typed, continuation marks and all, less their indent."""
    found: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if current is not None:
            assert re.match(r" {8}\S", line), f"continuation not indented by 8: {line!r}"
            current.append(line)
            if not line.endswith(CONTINUED):
                found.append(
                    " ".join(
                        part.strip().removesuffix("\\").removesuffix("^").rstrip()
                        for part in current
                    )
                    if join
                    else "\n".join(part.strip() for part in current)
                )
                current = None
        elif re.match(r" {6}\S", line):
            if line.endswith(CONTINUED):
                current = [line]
            else:
                found.append(line[6:])
        else:
            assert not line.startswith(" " * 6), f"explanation indented as a command: {line!r}"
    assert current is None, "the last command is continued into nothing"
    return found


@dataclass(frozen=True)
class Ran:
    command: str
    rc: int
    out: str  # stdout and stderr


def run_in_bash(cmds: list[str], cwd: Path, tmp: Path) -> list[Ran]:
    """Each command verbatim, in order, in one bash as a person types them into one
    terminal (the proof's steps carry `$h`), each one's exit status kept."""
    script = "exec 2>&1\n" + "".join(f"{c}\nprintf '\\n@@rc=%d\\n' \"$?\"\n" for c in cmds)
    env = dict(os.environ, TMPDIR=str(tmp))
    result = subprocess.run(
        [shutil.which("bash") or "bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    parts = RC.split(result.stdout)  # output, status, output, status, ..., ""
    assert len(parts) == 2 * len(cmds) + 1, result.stdout
    return [Ran(cmd, int(parts[2 * i + 1]), parts[2 * i]) for i, cmd in enumerate(cmds)]


def section_b(text: str) -> list[str]:
    for tool in STOCK_TOOLS:
        require_tool(tool)
    return commands(section(text, "B"))


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every file and directory under `root`: kind, size, modification time."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in [root, *root.rglob("*")]
    }


def one(ran: list[Ran], prefix: str) -> Ran:
    matching = [r for r in ran if r.command.startswith(prefix)]
    assert len(matching) == 1, (prefix, [r.command for r in ran])
    return matching[0]


def test_every_stock_command_succeeds_and_writes_nothing(export: Export, tmp_path: Path) -> None:
    cmds = section_b(export.text)
    says = stated(export.text)
    der = next(
        line.split(": ")[1]
        for line in export.text.splitlines()
        if line.startswith("  openssl DER sha256  : ")
    )
    manifest_sha = hashlib.sha256((export.path / "manifest.json").read_bytes()).hexdigest()
    assert says.ssh_fingerprint == export.fingerprint and says.manifest_sha256 == manifest_sha
    before = snapshot(export.path)
    (tmp_path / "tmp").mkdir()
    ran = run_in_bash(cmds, export.path, tmp_path / "tmp")
    assert snapshot(export.path) == before  # a read-only DVD would do
    assert not any((tmp_path / "tmp").iterdir())  # the temporary directory was removed
    for r in ran:
        assert r.rc == 0, (r.command, r.out)

    expected = {
        "cut -d' ' -f3- keys/allowed_signers | ssh-keygen -lf -": f"256 {says.ssh_fingerprint} ",
        "openssl pkey -pubin -in keys/signer.pub.pem -outform DER | sha256sum": f"{der}  -",
        "ssh-keygen -Y verify": (
            f'Good "scelle-export" signature for {key_name(export.text)} '
            f"with ED25519 key {says.ssh_fingerprint}"
        ),
        "minisign -Vm manifest.json": "Signature and comment signature verified",
        "sha256sum manifest.json": f"{manifest_sha}  manifest.json",
        "sha256sum -c SHA256SUMS": "VERIFY.html: OK",
        "(cd documents && sha256sum -c SHA256SUMS)": "../manifest.json: OK",
        "pdfsig documents/cover.pdf": "Signature Validation: Signature is Valid.",
        'grep -o \'"manifest_sha256"': f'"manifest_sha256":"{manifest_sha}"',
        '[ "$h" = \'': "OK  feuille / leaf",
        '[ "$h" = "$(sed -n 3p ledger/checkpoint.txt)" ]': "OK  preuve d’inclusion",
    }
    for prefix, output in expected.items():
        assert output in one(ran, prefix).out, (prefix, one(ran, prefix).out)
    signatures = [r for r in ran if r.command.startswith("openssl pkeyutl -verify")]
    assert len(signatures) == 4  # manifest, documents/SHA256SUMS, cover.pdf, checkpoint
    assert all(r.out.strip() == "Signature Verified Successfully" for r in signatures)
    sums = one(ran, "sha256sum SHA256SUMS").out.split()[0]
    assert f'"sha256":"{sums}"' in one(ran, 'grep -o \'"sha256sums"').out
    lines = one(ran, "sha256sum -c SHA256SUMS").out.splitlines()
    assert len(lines) == len((export.path / "SHA256SUMS").read_text().splitlines())
    assert all(line.endswith(": OK") for line in lines)


def tampered(export: Export, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(export.path, copy)
    (tmp_path / "tmp").mkdir()
    return copy


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_changed_ledger_entry_fails_the_proof(export: Export, tmp_path: Path) -> None:
    copy = tampered(export, tmp_path)
    entry = copy / "ledger" / "entry.json"
    flip(entry, entry.read_bytes().index(b'"reason":"') + 12)  # the entry's stated reason
    ran = run_in_bash(section_b(export.text), copy, tmp_path / "tmp")
    assert "ÉCHEC  feuille / leaf" in one(ran, '[ "$h" = \'').out
    final = one(ran, '[ "$h" = "$(sed -n 3p ledger/checkpoint.txt)" ]')
    assert "ÉCHEC  preuve d’inclusion" in final.out and "OK" not in final.out


def test_another_proof_hash_fails_the_proof(export: Export, tmp_path: Path) -> None:
    """A proof hash swapped for another (here the leaf's own) leads to another root."""
    copy = tampered(export, tmp_path)
    proof = InclusionProof.from_json(json.loads((copy / "ledger" / "inclusion.json").read_text()))
    first = base64.b64encode(proof.hashes[0]).decode()
    assert export.text.count(first) == 1
    text = export.text.replace(first, base64.b64encode(proof.leaf_hash).decode())
    ran = run_in_bash(section_b(text), copy, tmp_path / "tmp")
    assert "OK  feuille / leaf" in one(ran, '[ "$h" = \'').out
    final = one(ran, '[ "$h" = "$(sed -n 3p ledger/checkpoint.txt)" ]')
    assert "ÉCHEC  preuve d’inclusion" in final.out and "OK" not in final.out


def test_another_checkpoint_root_fails_its_signature_and_the_proof(
    export: Export, tmp_path: Path
) -> None:
    copy = tampered(export, tmp_path)
    note = copy / "ledger" / "checkpoint.txt"
    lines = note.read_text().split("\n")
    lines[2] = base64.b64encode(hashlib.sha256(b"another tree").digest()).decode()
    note.write_text("\n".join(lines))
    ran = run_in_bash(section_b(export.text), copy, tmp_path / "tmp")
    checkpoint = [
        r for r in ran if r.command.startswith("openssl pkeyutl") and "$t/body" in r.command
    ]
    assert len(checkpoint) == 1 and checkpoint[0].rc != 0
    assert "Signature Verified Successfully" not in checkpoint[0].out
    assert "ÉCHEC  preuve d’inclusion" in one(ran, '[ "$h" = "$(sed -n 3p').out


def test_a_changed_cover_sheet_fails(export: Export, tmp_path: Path) -> None:
    copy = tampered(export, tmp_path)
    pdf = copy / "documents" / "cover.pdf"
    flip(pdf, len(pdf.read_bytes()) // 3)
    ran = run_in_bash(section_b(export.text), copy, tmp_path / "tmp")
    signed = one(
        ran,
        "openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin -in documents/cover.pdf",
    )
    assert signed.rc != 0 and "Signature Verified Successfully" not in signed.out
    listed = one(ran, "(cd documents && sha256sum -c SHA256SUMS)")
    assert listed.rc != 0 and "cover.pdf: FAILED" in listed.out
    # pdfsig exits 0 whatever it finds: what it prints is the verdict, as VERIFY.txt says
    assert "Signature is Valid." not in one(ran, "pdfsig documents/cover.pdf").out
    # what the cover sheet does not touch still passes
    assert one(ran, "minisign -Vm manifest.json").rc == 0
    assert "OK  preuve d’inclusion" in one(ran, '[ "$h" = "$(sed -n 3p').out


def test_the_text_reads_back_and_keeps_its_promises(export: Export) -> None:
    text = export.text
    says = stated(text)
    assert says.requisition_id == export.path.name and says.ssh_fingerprint == export.fingerprint
    assert "pip install" not in text
    for line in text.splitlines():
        # The manifest's binding line is kept byte for byte: a SHA-256 is 64 characters.
        assert len(line) <= WIDTH or line.startswith(LONG), line
    titles = [line for line in text.splitlines() if re.match(r"[A-D]\. ", line)]
    assert [t[:2] for t in titles] == ["A.", "B.", "C.", "D."]
    for letter in "ABCD":
        commands(section(text, letter))  # no explanation line is indented as a command
        steps = [line for line in section(text, letter) if re.match(r"\d+\. ", line)]
        assert all(" / " in step for step in steps)  # "n. Français / English"
    assert not any(line.startswith(" " * 6) for line in text[: text.index("\nA. ")].split("\n"))
    for printed in (
        "Signature Verified Successfully",
        'Good "scelle-export" signature for',
        "Signature and comment signature verified",
    ):
        assert f"   → {printed}" in text  # what each of the three tools prints on success
    scelle = commands(section(text, "D"))
    assert scelle == [f"scelle verify . --key {export.fingerprint}"]
    assert "0  = " in text and "10 = " in text and "4  = " in text


def test_the_windows_commands_are_for_cmd(export: Export) -> None:
    """Not run (no Windows here): what cmd.exe needs of them, checked as text."""
    lines = section(export.text, "C")
    typed = commands(lines, join=False)
    assert typed[0] == "cmd"  # PowerShell users switch to cmd first
    for command in typed:
        for line in command.split("\n"):
            assert line.count('"') % 2 == 0, line  # a ^ outside quotes continues the line
            assert "%" not in line and not line.endswith(" \\"), line
    joined = commands(lines)
    # Through cmd /c, as Windows' own OpenSSH needs from PowerShell (no `<` there, and
    # its pipes break -Y verify); the same line works in cmd.
    assert [c for c in joined if "ssh-keygen -Y verify" in c] == [
        'cmd /c "ssh-keygen -Y verify -f keys\\allowed_signers -n scelle-export '
        f"-I {key_name(export.text)} "
        '-s manifest.json.sshsig < manifest.json"'
    ]
    # Pasted into PowerShell without `cmd` first, a line ending in ` ^` fails to parse
    # there, and a last line that is a bare "string" is merely echoed: none may echo a
    # verdict.
    for command in typed:
        assert not re.search(r"OK|True|Good", command.split("\n")[-1]), command
    scripts = [c for c in typed if c.startswith("powershell -NoProfile -Command ")]
    # Only whole "..." arguments, each line's own: powershell.exe joins them with spaces.
    for script in scripts:
        assert re.fullmatch(r'powershell -NoProfile -Command ("[^"^%]*"( \^\n|$))+', script)
    codes = [" ".join(re.findall(r'"([^"]*)"', script)) for script in scripts]
    assert codes == [
        "(Get-Content -Raw -Encoding UTF8 manifest.json | ConvertFrom-Json).sha256sums.sha256"
        " -eq (Get-FileHash SHA256SUMS).Hash",
        "$n = 0; Get-Content -Encoding UTF8 SHA256SUMS | ForEach-Object {"
        " $h, $f = $_ -split '  ', 2;"
        " if ((Get-FileHash -LiteralPath $f).Hash -eq $h) { 'OK     ' + $f }"
        " else { 'ECHEC  ' + $f; $n++ } }; 'Fichiers en echec / files failed: ' + $n",
    ]
    assert "certutil -hashfile manifest.json SHA256" in joined


def test_the_fold_is_the_one_of_verify_inclusion() -> None:
    """For every leaf of trees of 1 to 40 entries: the sides VERIFY.txt gives fold the
    proof to the root, as custody.merkle.verify_inclusion does."""
    for size in range(1, 41):
        leaves = [merkle.leaf_hash(b"entry %d" % i) for i in range(size)]
        levels = merkle.tree_levels(leaves)
        root = merkle.levels_root(levels, size)

        def get(
            keys: Sequence[merkle.NodeKey], levels: list[list[bytes]] = levels
        ) -> dict[merkle.NodeKey, bytes]:
            return {(lv, i): levels[lv][i] for lv, i in keys}

        for index in range(size):
            proof = merkle.inclusion_proof(index, size, get)
            merkle.verify_inclusion(index, size, leaves[index], proof, root)
            h = leaves[index]
            for left, p in zip(proof_sides(index, size, len(proof)), proof, strict=True):
                h = merkle.node_hash(p, h) if left else merkle.node_hash(h, p)
            assert h == root, (index, size)
            with pytest.raises(ValueError):
                proof_sides(index, size, len(proof) + 1)
            if proof:
                with pytest.raises(ValueError):
                    proof_sides(index, size, len(proof) - 1)


def synthetic(index: int, size: int, name: str = "scelle.vm") -> tuple[str, list[bytes]]:
    """A VERIFY.txt for entry `index` of a tree of `size` made-up entries."""
    entries = [b'{"data":{"manifest_sha256":"%s"},"seq":%d}' % (b"ab" * 32, i) for i in range(size)]
    leaves = [merkle.leaf_hash(e) for e in entries]
    levels = merkle.tree_levels(leaves)

    def get(keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        return {(lv, i): levels[lv][i] for lv, i in keys}

    root = merkle.levels_root(levels, size)
    proof = InclusionProof(
        index, size, leaves[index], tuple(merkle.inclusion_proof(index, size, get)), root
    )
    return text_for(proof, name), entries


def text_for(proof: InclusionProof, name: str = "scelle.vm") -> str:
    key = Ed25519PrivateKey.generate().public_key()
    checkpoint = Checkpoint("o/ledger", proof.tree_size, proof.root)
    return verify_text("2026-00042", name, key, "ab" * 32, proof.index, proof, checkpoint)


def test_the_proof_steps_run_for_left_and_right(tmp_path: Path) -> None:
    """Entry 1 of 5: its proof goes left, then right twice: step 6 run by bash."""
    require_tool("openssl")
    index, size = 1, 5
    assert proof_sides(index, size, 3) == [True, False, False]
    text, entries = synthetic(index, size)
    root = text.split("racine / root ")[1].split()[0]
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "entry.json").write_bytes(entries[index])
    (tmp_path / "ledger" / "checkpoint.txt").write_text(f"o/ledger\n{size}\n{root}\n\n— x y\n")
    lines = section(text, "B")
    step6 = lines[next(i for i, line in enumerate(lines) if line.startswith("6. ")) :]
    ran = run_in_bash(commands(step6), tmp_path, tmp_path)
    assert all(r.rc == 0 for r in ran), ran
    assert "OK  preuve d’inclusion" in ran[-1].out
    assert sum('h=$(noeud "$h" ' in r.command for r in ran) == 2  # right: $h first
    assert sum(r.command.startswith("h=$(noeud '") for r in ran) == 1  # left: $h second


def test_long_names_and_numbers_keep_lines_short() -> None:
    name = "csu-villeurbanne.example.fr-2026"
    index, size = 12345, 1_234_567  # a proof of the right length, made-up hashes
    count = len(merkle.inclusion_ranges(index, size))
    hashes = tuple(hashlib.sha256(b"%d" % i).digest() for i in range(count + 2))
    text = text_for(InclusionProof(index, size, hashes[-1], hashes[:count], hashes[-2]), name)
    assert stated(text).ledger_seq == "12345"
    for line in text.splitlines():
        assert len(line) <= WIDTH or line.startswith(LONG), line
    assert f"-I {name} \\" in text and f"-I {name} -s manifest.json.sshsig <" in text


def test_a_proof_of_another_tree_is_refused() -> None:
    leaf = merkle.leaf_hash(b"x")
    proof = InclusionProof(1, 5, leaf, (leaf, leaf, leaf), leaf)
    key = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ValueError, match="not of this entry"):
        verify_text("R", "k", key, "ab" * 32, 1, proof, Checkpoint("o", 6, leaf))
