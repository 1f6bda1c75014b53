"""Holds against the nightly purge, as they meet at a CSV: real processes, paused or killed
at each step between the plan and the deletions, a hold placed meanwhile by another
process; and a Hypothesis state machine interleaving holds, releases, purges, kills and
resumes. Not one held segment is deleted, the certificate counts what happened, the
ledger verifies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import make_url

from custody.timewindow import Window, local_text, now_us, parse_time, to_us
from custody.verify import verify_ledger
from requisition import holds
from requisition.purge import purge
from tests.conftest import (
    ADMIN,
    OPERATOR,
    SUPERVISOR,
    SiteEnv,
    fresh_database,
    make_site,
    run_cli,
)
from tests.footage_helpers import camera, fake_segments

pytestmark = pytest.mark.slow  # real processes; `-m "not slow"` skips them locally, never CI

MIN = 60_000_000
DAY = 86_400_000_000
ROOT = Path(__file__).parent.parent

PURGER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path

    import requisition.purge as purge_module
    from custody.config import load_settings
    from requisition.site import open_site

    home, control, stop_at, nth, mode, batch = sys.argv[1:7]
    purge_module.BATCH = int(batch)
    site = open_site(load_settings({"home": home}))
    passphrase = Path(os.environ["SCELLE_PASSPHRASE_FILE"]).read_bytes().rstrip(b"\\n")
    seen = {}

    def step(name):
        seen[name] = seen.get(name, 0) + 1
        if name != stop_at or seen[name] != int(nth):
            return
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        Path(control, "paused").write_text(name)
        while not Path(control, "go").exists():
            time.sleep(0.02)

    report = purge_module.purge(site, site.login, signer=site.signer(passphrase), step=step)
    print(report.destroyed, report.spared, report.absent)
    """
)
CLI = "import sys; from cli import main; sys.argv[0] = 'scelle'; main()"


@dataclass
class Footage:
    env: SiteEnv
    start: int  # 20 one-minute segments from here, all past the camera's one-day retention

    def window(self, first: int, last: int) -> Window:
        """Segments first..last-1."""
        return Window(self.start + first * MIN, self.start + last * MIN)


@pytest.fixture
def footage(site_env: SiteEnv) -> Footage:
    site = site_env.site
    cam = camera(site, "C-1", retention_days="1")
    start = now_us() // MIN * MIN - 2 * DAY
    fake_segments(site, cam, start, 20)
    return Footage(site_env, start)


def _iso_name(path: Path) -> int:
    stamp = path.name.split("Z_")[0]  # 20261128T013700.000
    return to_us(
        parse_time(
            f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z",
            "UTC",
        )
    )


def present(f: Footage) -> set[int]:
    root = f.env.settings.home / "footage" / "C-1"
    return {(_iso_name(p) - f.start) // MIN for p in root.rglob("*.mp4")}


def start_purge(
    f: Footage, control: Path, stop_at: str, *, nth: int = 1, mode: str = "pause", batch: int = 1000
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            PURGER,
            str(f.env.settings.home),
            str(control),
            stop_at,
            str(nth),
            mode,
            str(batch),
        ],
        cwd=ROOT,
        env={**os.environ, **f.env.env_as(ADMIN)},  # cron's account
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the purge ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path.name} after {timeout} s")
        time.sleep(0.02)


def place_hold(f: Footage, window: Window) -> subprocess.Popen[str]:
    """Another agent places a hold, in another process (the operator on duty at 3 a.m.)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "hold",
            "place",
            "--camera",
            "C-1",
            "--from",
            local_text(window.start, "Europe/Paris"),
            "--to",
            local_text(window.end, "Europe/Paris"),
            "--reason",
            "réquisition urgente",
        ],
        cwd=ROOT,
        env={**os.environ, **f.env.env_as(OPERATOR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def certificate(f: Footage, run: int = 1) -> dict[str, object]:
    path = f.env.settings.home / "certificates" / f"purge-{run:06d}" / "certificate.json"
    body: dict[str, object] = json.loads(path.read_text())
    return body


def verified(f: Footage) -> None:
    verify_ledger(f.env.site.db, f.env.settings)


HELD = (5, 10)  # the hold covers segments 5..9


@pytest.mark.parametrize(
    ("stop_at", "nth", "batch"),
    [("planned", 1, 1000), ("intent", 1, 1000), ("batch", 1, 1000), ("batch", 2, 4)],
    ids=["after-plan", "after-intent", "before-the-batch", "between-batches"],
)
def test_a_hold_placed_while_the_purge_is_paused_is_obeyed(
    footage: Footage, tmp_path: Path, stop_at: str, nth: int, batch: int
) -> None:
    proc = start_purge(footage, tmp_path, stop_at, nth=nth, batch=batch)
    wait_for(tmp_path / "paused", proc)
    placer = place_hold(footage, footage.window(*HELD))
    out, err = placer.communicate(timeout=60)
    assert placer.returncode == 0, err
    (tmp_path / "go").write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert present(footage) == set(range(*HELD))
    destroyed, spared, _absent = map(int, out.split())
    assert (destroyed, spared) == (15, 5)
    cert = certificate(footage)
    (cam,) = cert["cameras"]  # type: ignore[misc]
    assert cam["segments"] == 15 and cam["held_segments"] == 5
    verified(footage)
    assert purge(footage.env.site, ADMIN).destroyed == 0  # and no later run takes them
    assert present(footage) == set(range(*HELD))


def test_a_hold_placed_while_a_batch_holds_the_lock_waits_for_it(
    footage: Footage, tmp_path: Path
) -> None:
    """Inside a deletion batch the purge holds the writer lock: a hold placed then cannot
    commit before the batch does, so what the batch deletes was deleted before the hold
    existed; the hold's placement shows it waited."""
    proc = start_purge(footage, tmp_path, "locked")
    wait_for(tmp_path / "paused", proc)
    placer = place_hold(footage, footage.window(*HELD))
    time.sleep(1.5)
    assert placer.poll() is None  # waiting for the batch's transaction
    (tmp_path / "go").write_text("")
    assert proc.wait(timeout=120) == 0
    assert placer.wait(timeout=60) == 0
    with footage.env.site.db.read() as cur:  # rows, or the periods they were compacted into
        destroyed = cur.execute(
            "SELECT COUNT(*), MAX(destroyed_at) FROM segment WHERE destroyed_at IS NOT NULL "
            "UNION ALL SELECT SUM(segments), MAX(last_destroyed_at) FROM destroyed_period"
        ).fetchall()
    (hold,) = holds.list_holds(footage.env.site)
    assert sum(int(n or 0) for n, _at in destroyed) == 20
    assert max(to_us(parse_time(at, "UTC")) for _n, at in destroyed if at) <= to_us(
        parse_time(hold.placed_at, "UTC")
    )
    verified(footage)


@pytest.mark.parametrize("killed_at", ["intent", "unlinked"])
def test_a_purge_killed_then_a_hold_then_the_resume(
    footage: Footage, tmp_path: Path, killed_at: str
) -> None:
    """kill -9 after the intent (nothing deleted yet) or in the middle of a batch (files
    unlinked, not yet recorded); a hold is placed; the next purge finishes the run
    against it: what was still there and is now held stays."""
    proc = start_purge(footage, tmp_path, killed_at, mode="kill")
    assert proc.wait(timeout=120) == -9
    left = present(footage)
    dry = run_cli(["purge", "--dry-run"], env=footage.env.env_as(ADMIN))
    assert dry.exit_code == 0
    assert "interrupted purge 1 will be completed first: 20 segment(s)" in dry.stdout
    placed = place_hold(footage, footage.window(*HELD))
    assert placed.wait(timeout=60) == 0
    resumed = run_cli(["purge"], env=footage.env.env_as(ADMIN))
    assert resumed.exit_code == 0, resumed.stderr
    assert "completed interrupted purge 1" in resumed.stdout
    kept = left & set(range(*HELD))
    assert present(footage) == kept
    (cam,) = certificate(footage)["cameras"]  # type: ignore[misc]
    assert cam["segments"] == 20 - len(kept)
    assert cam["held_segments"] == len(kept)
    assert cam["already_absent"] == 20 - len(left)
    if killed_at == "intent":
        assert kept == set(range(*HELD))
        assert "destroyed 15 segment(s)" in resumed.stdout
    verified(footage)


# -- the state machine ---------------------------------------------------------------


class Killed(BaseException):
    """What a kill -9 leaves: the process stops where it stands (the database rolls back
    the open transaction, the kernel drops the locks)."""


STEPS = ["planned", "intent", "batch", "locked", "unlinked", "deleted"]


class PurgeAgainstHolds(RuleBasedStateMachine):
    """Holds placed and released, purges run, killed anywhere and resumed, in any order."""

    def __init__(self, root: Path, database: str, drop: Callable[[], None]) -> None:
        super().__init__()
        self.drop = drop
        self.root = root
        self.env = make_site(self.root, database_url=database)
        self.site = self.env.site
        cam = camera(self.site, "C-1", retention_days="1")
        self.start = now_us() // MIN * MIN - 2 * DAY
        fake_segments(self.site, cam, self.start, 12)  # all past retention
        self.protected: dict[int, set[int]] = {}  # hold id -> segments there when placed
        self.footage = Footage(self.env, self.start)

    def teardown(self) -> None:
        signer = self.site.signer(self.env.passphrase_file.read_bytes().rstrip(b"\n"))
        purge(self.site, ADMIN, signer=signer)  # finishes any run; certifies every run
        with self.site.db.read() as cur:  # rows, and the periods certified ones became
            (gone,) = cur.execute(
                "SELECT (SELECT COUNT(*) FROM segment WHERE destroyed_at IS NOT NULL) + "
                "(SELECT COALESCE(SUM(segments), 0) FROM destroyed_period)"
            ).fetchone()
        certified = 0
        for path in (self.env.settings.home / "certificates").glob("purge-*"):
            body = json.loads((path / "certificate.json").read_text())
            certified += sum(c["segments"] for c in body["cameras"])
        assert certified == gone
        verify_ledger(self.site.db, self.env.settings)
        self.site.close()
        self.drop()
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(first=st.integers(0, 11), length=st.integers(1, 6))
    def place(self, first: int, length: int) -> None:
        window = Window(self.start + first * MIN, self.start + min(12, first + length) * MIN)
        hold = holds.place(self.site, "C-1", window, "procédure", None, OPERATOR)
        self.protected[hold.id] = present(self.footage) & set(range(first, first + length))

    @precondition(lambda self: bool(self.protected))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.protected)))
        holds.release(self.site, hold_id, "procédure close", SUPERVISOR)
        del self.protected[hold_id]

    @rule(kill_at=st.sampled_from([None, *STEPS]), nth=st.integers(1, 2), batch=st.integers(1, 5))
    def run_purge(self, kill_at: str | None, nth: int, batch: int) -> None:
        import requisition.purge as module

        seen: dict[str, int] = {}

        def step(name: str) -> None:
            seen[name] = seen.get(name, 0) + 1
            if name == kill_at and seen[name] == nth:
                raise Killed(name)

        module.BATCH = batch
        try:
            purge(self.site, ADMIN, step=step)
        except Killed:
            return
        finally:
            module.BATCH = 1000
        # A run that completed leaves nothing expired and unheld.
        held = {
            i
            for h in holds.list_holds(self.site)
            for i in range(12)
            if h.covers(self.start + i * MIN, self.start + (i + 1) * MIN)
        }
        assert present(self.footage) <= held

    @invariant()
    def held_footage_survives(self) -> None:
        there = present(self.footage)
        for hold_id, segments in self.protected.items():
            assert segments <= there, f"hold {hold_id} lost {sorted(segments - there)}"


def test_holds_purges_kills_and_resumes_in_any_order(
    backend: str, request: pytest.FixtureRequest
) -> None:
    def machine() -> PurgeAgainstHolds:
        root = Path(tempfile.mkdtemp(prefix="scelle-machine-"))
        url = fresh_database(backend, request, root)

        def drop() -> None:
            if backend != "sqlite":
                server = request.getfixturevalue("pg_server")
                server.execute(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")

        return PurgeAgainstHolds(root, url, drop)

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25 if backend == "sqlite" else 12,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
