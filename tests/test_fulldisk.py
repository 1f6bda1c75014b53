"""Full disks, for real (a small tmpfs): a checkpoint that does not fit is not signed and
leaves its file as it was; a destruction certificate that does not fit is made by the
next purge. One line each, a documented exit code, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

from custody.timewindow import now_us
from tests.conftest import ADMIN, OPERATOR, SiteEnv, run_cli
from tests.footage_helpers import camera, fake_segments
from tests.fulldisk import fill, tmpfs
from tests.test_cli_errors import one_line_error

MIN = 60_000_000
DAY = 86_400_000_000


def test_a_checkpoint_that_does_not_fit_is_not_signed(site_env: SiteEnv, tmp_path: Path) -> None:
    """The checkpoint file lives on a full disk: each append either lands whole or leaves
    the file byte for byte as it was (a short write is undone), with one line, exit 6;
    once there is room, signing resumes and the ledger verifies."""
    with tmpfs(tmp_path / "worm", "64k") as disk:
        moved = disk / "checkpoints.txt"
        moved.write_bytes(site_env.settings.checkpoint_file.read_bytes())
        env = {**site_env.env_as(OPERATOR), "SCELLE_CHECKPOINT_FILE": str(moved)}
        filler = fill(disk)
        failed = None
        for _ in range(64):  # appends fit in the file's last page, until one crosses it
            assert run_cli(["ledger", "note", "n", "--reason", "r"], env=env).exit_code == 0
            before = moved.read_bytes()
            signed = run_cli(["ledger", "checkpoint"], env=env)
            if signed.exit_code != 0:
                failed = signed
                break
        assert failed is not None, "the disk never filled"
        assert failed.exit_code == 6
        assert one_line_error(failed.stderr) == (
            f"scelle: error: no room to append the checkpoint to {moved}: nothing was signed "
            "and the file is as it was"
        )
        assert moved.read_bytes() == before  # no half note at the end
        verified = run_cli(["ledger", "verify"], env=env)
        assert verified.exit_code == 0, verified.stderr
        filler.unlink()
        assert run_cli(["ledger", "checkpoint"], env=env).exit_code == 0
        assert run_cli(["ledger", "verify"], env=env).exit_code == 0


def test_a_certificate_that_does_not_fit_is_made_by_the_next_purge(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    site = site_env.site
    cam = camera(site, "C-1", retention_days="1")
    fake_segments(site, cam, now_us() // MIN * MIN - 2 * DAY, 6)
    env = site_env.env_as(ADMIN)
    certificates = site_env.settings.home / "certificates"
    with tmpfs(certificates, "256k"):
        filler = fill(certificates)
        full = run_cli(["purge"], env=env)
        assert full.exit_code == 6
        assert one_line_error(full.stderr) == (
            f"scelle: error: no room in {certificates} for the destruction certificate of purge "
            "1: the destruction is recorded in the ledger, and nothing half-written was kept"
        )
        assert [p.name for p in certificates.iterdir()] == [".filler"]
        assert not list((site_env.settings.home / "footage").rglob("*.mp4"))  # destroyed
        assert run_cli(["ledger", "verify"], env=env).exit_code == 0
        filler.unlink()
        done = run_cli(["purge", "--json"], env=env)
        assert done.exit_code == 0, done.stderr
        (path,) = json.loads(done.stdout)["certificates"]
        body = json.loads((Path(path) / "certificate.json").read_text())
        assert body["purge"] == 1 and body["cameras"][0]["segments"] == 6
        assert run_cli(["verify", path]).exit_code == 0
