"""Custody of another system's own export (`scelle requisition attach`): a vendor's MKV
clip, its player (an .exe-like binary) and its signature file, taken in, delivered bit
for bit in the signed export, verified by scelle and the stock tools, named on the
papers and in the ledger; bad input refused with nothing kept."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from custody.errors import InputError, IntegrityError
from exporters.attached import AttachedFile, Attachment, deliver
from exporters.ffmpeg import ffmpeg_exe, probe
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_export import stock_checks
from tests.test_requisitions import REGISTER, filmed

__all__ = ["filmed"]

YESTERDAY = (date.today() - timedelta(days=1)).isoformat()
FRAME_US = 100_000  # the vendor clip: 10 frames a second


def vendor_export(root: Path) -> Path:
    """What a VMS client writes on export: the clip, its player, its own signature."""
    folder = root / "Export-4471"
    folder.mkdir(parents=True)
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=10",
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(folder / "clip.mkv"),
        ],
        check=True,
    )
    (folder / "Player.exe").write_bytes(b"MZ\x90\x00" + os.urandom(300_000))
    (folder / "clip.mkv.sig").write_bytes(os.urandom(256))
    return folder


def attach_args(rid: str, *paths: Path) -> list[str]:
    return [
        "requisition", "attach", rid, *map(str, paths),
        "--system", "Milestone XProtect", "--system-version", "2023 R2",
        "--exported-by", "J. Martin", "--exported-at", f"{YESTERDAY}T15:10",
        "--export-id", "EXP-4471", "--camera", "Parvis nord",
        "--from", f"{YESTERDAY}T10:00", "--to", f"{YESTERDAY}T10:05",
    ]  # fmt: skip


def approved(env: SiteEnv) -> str:
    registered = run_cli(REGISTER, env=env.env)
    assert registered.exit_code == 0, registered.stderr
    rid = registered.stdout.split()[1]
    assert run_cli(["requisition", "approve", rid], env=env.env_as(SUPERVISOR)).exit_code == 0
    return rid


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_attached_export_is_delivered_bit_for_bit_with_its_provenance(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    rid = approved(filmed)
    vendor = vendor_export(tmp_path / "usb")
    taken = run_cli(attach_args(rid, vendor), env=filmed.env)
    assert taken.exit_code == 0, taken.stderr
    assert f"3 files taken into custody for requisition {rid}" in taken.stdout
    assert sha256(vendor / "Player.exe") in taken.stdout
    assert "not readable as video by ffmpeg" in taken.stdout  # the player, the signature

    entries = json.loads(run_cli(["ledger", "show", "--json"], env=filmed.env_as(AUDITOR)).stdout)
    (entry,) = [e for e in entries if e["action"] == "requisition.attach"]
    assert entry["subject"] == {"requisition": rid}
    assert entry["procedure"] == "PV 2026/000123"
    data = entry["data"]
    assert (data["system"], data["system_version"], data["exported_by"], data["export_id"]) == (
        "Milestone XProtect", "2023 R2", "J. Martin", "EXP-4471",
    )  # fmt: skip
    assert {f["path"]: f["sha256"] for f in data["files"]} == {
        f"Export-4471/{name}": sha256(vendor / name)
        for name in ("clip.mkv", "Player.exe", "clip.mkv.sig")
    }

    out = tmp_path / "out"
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    export = out / rid
    delivered = export / "attached" / "01-milestone-xprotect" / "Export-4471"
    for name in ("clip.mkv", "Player.exe", "clip.mkv.sig"):
        assert filecmp.cmp(vendor / name, delivered / name, shallow=False), name
    working = export / "working" / "attached-01-milestone-xprotect" / "Export-4471" / "clip.mkv.mp4"
    assert abs(probe(working).duration_us - 6_000_000) <= FRAME_US
    assert not (
        export / "working" / "attached-01-milestone-xprotect" / "Export-4471" / "Player.exe.mp4"
    ).exists()

    manifest = json.loads((export / "manifest.json").read_bytes())
    (attachment,) = manifest["attachments"]
    assert attachment["ledger_seq"] == entry["seq"]
    roles = {f["path"]: f["role"] for f in manifest["files"]}
    assert roles["attached/01-milestone-xprotect/Export-4471/Player.exe"] == "attached"
    assert run_cli(["verify", str(export)], env=filmed.env).exit_code == 0
    assert stock_checks(export, manifest["site"]["name"]) == {
        "openssl": 0, "ssh-keygen": 0, "minisign": 0, "sha256sum": 0,
    }  # fmt: skip

    cover = (export / "documents" / "cover.html").read_text().replace("<wbr>", "")
    assert "Images remises par un autre système" in cover
    assert (
        "Images exportées par Milestone XProtect 2023 R2 le "
        f"{date.fromisoformat(YESTERDAY):%d/%m/%Y} à 15:10:00"
    ) in cover
    assert "par J. Martin (export n° EXP-4471), prises en charge par scelle le" in cover
    assert "Export-4471/Player.exe : non lisible comme vidéo par ffmpeg" in cover
    assert "Export-4471/clip.mkv : vidéo lisible (h264, 320×240, 6\u202fs)" in cover

    # The PV de remise states it too.
    handed = run_cli(
        [
            "requisition", "handover", rid, "--officer", "Brigadier Durand",
            "--unit", "BSU Villeurbanne", "--medium", "usb", "--seal", "S-1",
        ],
        env=filmed.env,
    )  # fmt: skip
    assert handed.exit_code == 0, handed.stderr
    (pv,) = (filmed.settings.home / "documents").rglob("*remise*.html")
    assert "Images exportées par Milestone XProtect 2023 R2" in pv.read_text().replace("<wbr>", "")


@pytest.mark.backends("sqlite")  # the copy and its check do not touch the database
def test_a_kept_copy_altered_before_extraction_is_withheld_and_named(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    rid = approved(filmed)
    vendor = vendor_export(tmp_path / "usb")
    assert run_cli(attach_args(rid, vendor), env=filmed.env).exit_code == 0
    kept = filmed.settings.home / "attachments" / rid / "01-milestone-xprotect"
    player = kept / "Export-4471" / "Player.exe"
    assert player.stat().st_mode & 0o777 == 0o444  # kept read-only
    player.chmod(0o644)
    with player.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)[0]
        handle.seek(1000)
        handle.write(bytes([byte ^ 0xFF]))
    out = tmp_path / "out"
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    assert "PARTIAL" in done.stdout
    export = out / rid
    assert not list(export.rglob("Player.exe"))
    manifest = json.loads((export / "manifest.json").read_bytes())
    states = {f["sha256"]: f["state"] for f in manifest["attachments"][0]["files"]}
    assert states[sha256(vendor / "Player.exe")] == "altered"
    assert manifest["complete"] is False
    cover = (export / "documents" / "cover.html").read_text().replace("<wbr>", "")
    assert "écarté, non remis : il ne correspond plus à l&#39;empreinte" in cover
    verified = run_cli(["verify", str(export)], env=filmed.env)
    assert verified.exit_code == 10
    assert (
        "WITHHELD  Milestone XProtect  attached/01-milestone-xprotect/Export-4471/Player.exe: "
        "no longer the bytes taken into custody, not delivered"
    ) in verified.stdout


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("link", "is a link or a special file: not taken in"),
        ("future", "cannot be in the future"),
        ("missing", "no such file or folder"),
        ("backwards", "--to must be after --from"),
    ],
)
def test_bad_attachments_are_refused_and_nothing_is_kept(
    filmed: SiteEnv, tmp_path: Path, case: str, message: str
) -> None:
    rid = approved(filmed)
    vendor = vendor_export(tmp_path / "usb")
    args = attach_args(rid, vendor)
    if case == "link":
        (vendor / "secret").symlink_to("/etc/passwd")
    elif case == "future":
        args[args.index("--exported-at") + 1] = f"{date.today() + timedelta(days=2)}T10:00"
    elif case == "missing":
        args[3] = str(tmp_path / "nowhere")
    elif case == "backwards":
        args[args.index("--to") + 1] = f"{YESTERDAY}T09:00"
    size = filmed.site.ledger.size()
    refused = run_cli(args, env=filmed.env)
    assert refused.exit_code == 3, refused.stderr
    assert message in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2  # one line (and a hint), no traceback
    assert filmed.site.ledger.size() == size
    kept = filmed.settings.home / "attachments"
    assert not kept.exists() or not any(p.is_file() for p in kept.rglob("*"))


@pytest.mark.backends("sqlite")
def test_no_attachment_after_the_extraction(filmed: SiteEnv, tmp_path: Path) -> None:
    rid = approved(filmed)
    done = run_cli(["requisition", "extract", rid, "--out", str(tmp_path / "out")], env=filmed.env)
    assert done.exit_code == 0, done.stderr
    late = run_cli(attach_args(rid, vendor_export(tmp_path / "usb")), env=filmed.env)
    assert late.exit_code == 5
    assert "files are attached before its extraction" in late.stderr


def test_attachments_of_a_cancelled_requisition_go_once_past_any_retention(
    filmed: SiteEnv, tmp_path: Path
) -> None:
    """No export will deliver them: files covering 40 days ago go at the next purge once
    the requisition is cancelled and its holds released; files of a still-live requisition
    stay, whatever their age."""
    old = (date.today() - timedelta(days=40)).isoformat()
    rids = []
    for n in range(2):
        registered = run_cli([*REGISTER, "--force"], env=filmed.env)
        assert registered.exit_code == 0, registered.stderr
        rid = registered.stdout.split()[1]
        args = attach_args(rid, vendor_export(tmp_path / f"usb{n}"))
        args[args.index("--from") + 1] = f"{old}T10:00"
        args[args.index("--to") + 1] = f"{old}T10:05"
        assert run_cli(args, env=filmed.env).exit_code == 0
        rids.append(rid)
    cancelled = run_cli(
        ["requisition", "cancel", rids[0], "--reason", "retirée par l'officier"],
        env=filmed.env_as(SUPERVISOR),
    )
    assert cancelled.exit_code == 0, cancelled.stderr
    purged = run_cli(["purge", "--json"], env=filmed.env_as(ADMIN))
    assert json.loads(purged.stdout)["attachments_destroyed"] == [rids[0]], purged.stderr
    kept = filmed.settings.home / "attachments"
    assert not (kept / rids[0]).exists()
    assert (kept / rids[1]).is_dir()  # its requisition is still to be answered
    entries = json.loads(run_cli(["ledger", "show", "--json"], env=filmed.env_as(AUDITOR)).stdout)
    (gone,) = [e for e in entries if e["action"] == "attachment.destroy"]
    assert gone["subject"] == {"requisition": rids[0]}
    assert len(gone["data"]["files"]) == 3


@pytest.mark.parametrize("path", ["../../outside", "/etc/passwd", "Export/../../x"])
def test_a_path_from_an_entry_never_leads_out_of_the_export(tmp_path: Path, path: str) -> None:
    """The kept copies are found from ledger entries: a path in one that would climb out of
    the export being built (a forged entry) is refused before anything is written."""
    taken = AttachedFile(path, 1, "0" * 64, None, "not video")
    attachment = Attachment(tmp_path / "kept", "01-x", {}, (taken,))
    with pytest.raises(IntegrityError, match="refused"):
        deliver([attachment], tmp_path / "export")
    assert not (tmp_path / "export").exists() and not (tmp_path / "outside").exists()


def test_a_folder_given_as_dot_dot_is_named_by_what_it_means(tmp_path: Path) -> None:
    """`attach ID ..` names the folder it means, never `..` (which would climb out of the
    intake folder and stand in the ledger for ever)."""
    from exporters.attached import sources

    folder = tmp_path / "Export-4471"
    (folder / "sub").mkdir(parents=True)
    (folder / "clip.bin").write_bytes(b"x")
    names = [name for _path, name in sources([folder / "sub" / ".."])]
    assert names == ["Export-4471/clip.bin"]
    (folder / "bad\nname").write_bytes(b"y")
    with pytest.raises(InputError, match="not a plain file name"):
        sources([folder])
