"""Any recorder's layout, described by a path template: real footage (ffmpeg) written in
MKV, MP4 and MPEG-TS under four layouts, with local-time names across the autumn change
and UTC names across the spring change; scan, find, masters and working copies."""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import pytest

from custody.errors import InputError
from custody.site import Site
from custody.timewindow import Window, parse_time, to_us, utc_text
from exporters.ffmpeg import ffmpeg_exe
from exporters.generate import generate_footage
from exporters.index import Coverage, camera_store, coverage_json, find, scan
from exporters.master import extract_master
from exporters.models import Camera
from exporters.stores.clock_change import Basis
from exporters.stores.template import check_template
from exporters.working import make_working_copies
from requisition.cameras import get_camera
from requisition.purge import purge as run_purge
from tests.conftest import ADMIN, SUPERVISOR, SiteEnv, run_cli
from tests.footage_helpers import camera, new_site
from tests.test_requisitions import REGISTER

FRAME_US = 100_000  # generated footage: 10 frames a second
NAS = "{camera}/{YYYY}{MM}{DD}/{hh}{mm}{ss}.mkv"
SHINOBI = "{camera}/{YYYY}-{MM}-{DD}T{hh}-{mm}-{ss}.mp4"
ZONEMINDER = "{camera}/{YY}/{MM}/{DD}/{hh}/{mm}/{ss}/{*}-video.mp4"
DAILY_TS = "{YYYY}-{MM}-{DD}/{camera}_{hh}{mm}{ss}.ts"
# Europe/Paris, 25 October 2026: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
AUTUMN = Window(
    to_us(parse_time("2026-10-25T00:55Z", "UTC")), to_us(parse_time("2026-10-25T01:05Z", "UTC"))
)
# 29 March 2026: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
SPRING = Window(
    to_us(parse_time("2026-03-29T00:55Z", "UTC")), to_us(parse_time("2026-03-29T01:05Z", "UTC"))
)


def template_camera(site: Site, camera_id: str, template: str, clock: str) -> Camera:
    return camera(
        site,
        camera_id,
        store_kind="template",
        store_path=camera_id.lower(),
        store_template=template,
        store_time=clock,
    )


def generated(site: Site, cam: Camera, window: Window, seconds: int) -> list[tuple[str, int, int]]:
    """(path, start, end) of every segment written, from the generator's own times."""
    made = generate_footage(site, cam, window, segment_seconds=seconds)
    step = seconds * 1_000_000
    store = camera_store(cam)
    out = []
    for start in range(window.start, window.end, step):
        path = store.segment_path(cam.store_camera, start, step)
        assert path.is_file(), path
        out.append((str(path.relative_to(store.root)), start, min(start + step, window.end)))
    assert len(out) == made.segments
    return out


def check_extract(coverage: Coverage, tmp_path: Path) -> None:
    """Bit-identical masters; working copies within one frame of each span."""
    master = extract_master(coverage.segments, tmp_path / "master")
    master.check()
    assert master.files
    for copied in master.files:
        assert filecmp.cmp(copied.segment.file, copied.dest, shallow=False)
    made = make_working_copies(coverage, tmp_path / "working")
    assert len(made) == len(coverage.spans)
    for copy in made:
        span = copy.span.end_us - copy.span.start_us
        assert abs(copy.probe.duration_us - span) <= FRAME_US, copy.path.name


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Site:
    return new_site(tmp_path / "site", database_url)


@pytest.mark.backends("sqlite")  # reading a layout does not touch the database
def test_local_names_across_the_autumn_change(site: Site, tmp_path: Path) -> None:
    """02:55 to 02:59 CEST, then 02:00 to 02:04 CET: the names of the repeated hour are
    placed from when the recorder finished each file, and every export says so."""
    cam = template_camera(site, "NAS-1", NAS, "local")
    written = generated(site, cam, AUTUMN, 60)
    assert [p for p, _s, _e in written][4:6] == [
        "NAS-1/20261025/025900.mkv",
        "NAS-1/20261025/020000.mkv",
    ]
    report = scan(site, [cam], "op", settle_seconds=0)
    assert (report.segments, report.unplaced) == (10, [])
    assert sorted(report.placed) == sorted((p, Basis.WRITTEN) for p, _s, _e in written)
    coverage = find(site, cam, AUTUMN)
    assert [(s.path, s.start_us, s.end_us) for s in coverage.segments] == written
    assert coverage.complete and not coverage.gaps
    shown = coverage_json(coverage)
    assert shown["segments"][4]["name_time_repeated"] == "2026-10-25T02:59:00.000"
    assert shown["segments"][5]["name_time_repeated"] == "2026-10-25T02:00:00.000"
    assert shown["window"]["from"] == "2026-10-25T02:55:00+02:00"
    assert shown["window"]["to"] == "2026-10-25T02:05:00+01:00"
    check_extract(coverage, tmp_path)


@pytest.mark.backends("sqlite")  # reading a layout does not touch the database
def test_written_in_order_by_a_recorder_whose_file_clock_is_off(site: Site) -> None:
    """Modification times three hours off (the recorder's file clock) but written live, one
    a minute: the names fall back once, and the order places both passes."""
    cam = template_camera(site, "NAS-2", NAS, "local")
    written = generated(site, cam, AUTUMN, 60)
    root = camera_store(cam).root
    for path, _start, end in written:
        stamp = (end + 3 * 3_600_000_000) * 1000
        os.utime(root / path, ns=(stamp, stamp))
    report = scan(site, [cam], "op", settle_seconds=0)
    assert sorted(report.placed) == sorted((p, Basis.ORDER) for p, _s, _e in written)
    coverage = find(site, cam, AUTUMN)
    assert [(s.path, s.start_us) for s in coverage.segments] == [(p, s) for p, s, _e in written]


@pytest.mark.backends("sqlite")  # reading a layout does not touch the database
def test_copied_files_are_placed_by_the_media_clock_or_not_at_all(site: Site) -> None:
    """Files copied off the recorder all at once (one modification time): the one whose
    container states its creation time is placed by it; the others are reported, never
    guessed, and their time is a gap."""
    cam = template_camera(site, "NAS-3", NAS, "local")
    written = generated(site, cam, AUTUMN, 60)
    root = camera_store(cam).root
    path, start, _end = written[6]  # 02:01 CET, 01:01 UTC
    stamped = root / (path + ".tmp.mkv")
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(root / path),
            "-c",
            "copy",
            "-metadata",
            f"creation_time={utc_text(start)}",
            str(stamped),
        ],
        check=True,
    )
    stamped.replace(root / path)
    copied = to_us(parse_time("2026-11-01T12:00Z", "UTC")) * 1000
    for p, _s, _e in written:
        os.utime(root / p, ns=(copied, copied))
    report = scan(site, [cam], "op", settle_seconds=0)
    assert report.placed == [(path, Basis.MEDIA)]
    assert sorted(report.unplaced) == sorted(p for p, _s, _e in written if p != path)
    coverage = find(site, cam, AUTUMN)
    assert [(s.path, s.start_us) for s in coverage.segments] == [(path, start)]
    assert not coverage.complete


@pytest.mark.backends("sqlite")  # reading a layout does not touch the database
def test_utc_names_across_the_spring_change(site: Site, tmp_path: Path) -> None:
    """UTC names need no placing: 01:55 CET to 03:05 CEST is ten minutes, no false gap."""
    cam = template_camera(site, "SHI-1", SHINOBI, "utc")
    written = generated(site, cam, SPRING, 30)
    assert written[10][0] == "SHI-1/2026-03-29T01-00-00.mp4"
    report = scan(site, [cam], "op", settle_seconds=0)
    assert (report.segments, report.placed, report.unplaced) == (20, [], [])
    coverage = find(site, cam, SPRING)
    assert [(s.path, s.start_us, s.end_us) for s in coverage.segments] == written
    assert coverage.complete
    shown = coverage_json(coverage)
    assert (shown["window"]["from"], shown["window"]["to"]) == (
        "2026-03-29T01:55:00+01:00",
        "2026-03-29T03:05:00+02:00",
    )
    check_extract(coverage, tmp_path)


@pytest.mark.backends("sqlite")  # reading a layout does not touch the database
@pytest.mark.parametrize(
    ("template", "clock", "first"),
    [
        (ZONEMINDER, "local", "ZM-1/26/11/20/10/00/00/1795165200-video.mp4"),
        (DAILY_TS, "utc", "2026-11-20/ZM-1_090000.ts"),
    ],
    ids=["zoneminder-local-mp4", "daily-utc-ts"],
)
def test_event_folders_and_daily_folders(
    site: Site, tmp_path: Path, template: str, clock: str, first: str
) -> None:
    cam = template_camera(site, "ZM-1", template, clock)
    window = Window(
        to_us(parse_time("2026-11-20T10:00", "Europe/Paris")),
        to_us(parse_time("2026-11-20T10:01:30", "Europe/Paris")),
    )
    # A gap of 30 s in the middle, stated exactly.
    hole = Window(window.start + 30_000_000, window.start + 60_000_000)
    generate_footage(site, cam, window, segment_seconds=15, gaps=[hole])
    report = scan(site, [cam], "op", settle_seconds=0)
    assert report.segments == 4
    coverage = find(site, cam, window)
    assert coverage.segments[0].path == first
    assert [(g.start_us, g.end_us) for g in coverage.gaps] == [(hole.start, hole.end)]
    check_extract(coverage, tmp_path)


def test_the_purge_destroys_expired_footage_named_in_either_pass(site: Site) -> None:
    """Footage of 25 October is past its 30 days: the purge reads the rows against the
    names, in either instant a repeated local name says, and destroys all of it."""
    cam = template_camera(site, "NAS-4", NAS, "local")
    generated(site, cam, AUTUMN, 60)
    scan(site, [cam], "op", settle_seconds=0)
    report = run_purge(site, ADMIN)
    assert (report.destroyed, report.failures) == (10, [])
    assert not list(camera_store(cam).root.rglob("*.mkv"))


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("/abs/{YYYY}{MM}{DD}{hh}{mm}.mp4", "relative path"),
        ("{camera}/../{YYYY}{MM}{DD}{hh}{mm}.mp4", "relative path"),
        ("{camera}/{YYYY}{MM}{DD}{hour}{mm}.mp4", "unknown field {hour}"),
        ("{camera}/{YYYY}{MM}{DD}.mp4", "to the minute"),
        ("{camera}/{YYYY}{MM}{DD}{hh}{mm.mp4", "unknown field {"),
    ],
)
def test_bad_templates_are_refused_with_why(template: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        check_template(template)


@pytest.mark.backends("sqlite")  # the layout is read the same on either backend
def test_an_operator_imports_checks_scans_and_extracts_across_the_autumn_change(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    """Through the commands, in French: a French inventory with the layout's columns,
    `camera check` before relying on it, `footage scan`, then a requisition over the
    clock change, extracted and verified; its cover sheet says which files were placed."""
    fr = {**site_env.env_as(ADMIN), "SCELLE_LANG": "fr"}
    nas = tmp_path / "nas"
    inventory = tmp_path / "cameras.csv"
    inventory.write_text(
        "identifiant;nom;emplacement;commune;autorisation;fin d'autorisation;"
        "type de stockage;chemin du stockage;modèle de chemin;heure des noms\n"
        f"NAS-9;Parvis;Parvis de la gare;Villeurbanne;AP-2024-117;01/05/2029;template;{nas};"
        f"{NAS};locale\n",
        encoding="utf-8",
    )
    imported = run_cli(["camera", "import", str(inventory)], env=fr)
    assert imported.exit_code == 0, imported.stderr
    empty = run_cli(["camera", "check", "NAS-9"], env=fr)
    assert empty.exit_code == 6
    assert "aucun segment de la caméra NAS-9" in empty.stderr
    cam = get_camera(site_env.site, "NAS-9")
    assert (cam.store_template, cam.store_time) == (NAS, "local")
    written = generated(site_env.site, cam, AUTUMN, 60)
    (nas / "NAS-9" / "20261025" / "Thumbs.db").write_bytes(b"\0")
    checked = run_cli(["camera", "check", "NAS-9"], env={**fr, **site_env.env})
    assert checked.exit_code == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert "  10 segments" in lines[2]
    assert lines[3].startswith(
        "  premier : 25/10/2026 02:55:00 (UTC+02:00)  NAS-9/20261025/025500.mkv"
    )
    assert lines[4].startswith(
        "  dernier : 25/10/2026 02:04:00 (UTC+01:00)  NAS-9/20261025/020400.mkv"
    )
    assert "aucune interruption d'une seconde ou plus" in checked.stdout
    assert "NAS-9/20261025/Thumbs.db" in checked.stdout
    scanned = run_cli(["footage", "scan"], env={**fr, **site_env.env})
    assert scanned.exit_code == 0, scanned.stderr
    assert "changement d'heure : 10 fichiers" in scanned.stdout
    window = "NAS-9=2026-10-25T02:56+02:00/2026-10-25T02:03+01:00"
    registered = run_cli([*REGISTER[:-2], "--window", window], env=site_env.env)
    assert registered.exit_code == 0, registered.stderr
    rid = registered.stdout.split()[1]
    assert run_cli(["requisition", "approve", rid], env=site_env.env_as(SUPERVISOR)).exit_code == 0
    out = tmp_path / "out"
    done = run_cli(["requisition", "extract", rid, "--out", str(out)], env=site_env.env)
    assert done.exit_code in (0, 10), done.stderr
    export = out / rid
    assert len(list((export / "master").rglob("*.mkv"))) == 7  # 02:56 CEST to 02:03 CET
    for path, _start, _end in written[1:8]:
        (master,) = export.rglob(path.replace("/", "_"))
        assert filecmp.cmp(nas / path, master, shallow=False)
    assert run_cli(["verify", str(export)], env=site_env.env).exit_code == 0
    cover = (export / "documents" / "cover.html").read_text().replace("<wbr>", "")
    assert "7 fichier(s) nommé(s) dans l'heure que le changement d'heure répète" in cover
    assert (
        "NAS-9/20261025/020000.mkv : nommé 02:00:00 (heure locale du 25/10/2026), heure que "
        "le retour à l&#39;heure d&#39;hiver fait vivre deux fois ; placé au 25/10/2026 à "
        "02:00:00 (UTC+01:00)"
    ) in cover


def test_a_file_stamped_before_it_could_end_is_not_placed_by_its_time() -> None:
    """A NAS sync at 01:05 UTC stamps the first pass's 02:10 file (really 00:10 UTC): its
    time is 6 min from the second pass's end, but before it: no placement, not an hour off."""
    from exporters.stores.base import SegmentName
    from exporters.stores.clock_change import Ambiguous, place

    early = to_us(parse_time("2026-10-25T00:10Z", "UTC"))
    name = SegmentName(early, None, others=(early + 3_600_000_000,))
    synced = to_us(parse_time("2026-10-25T01:05Z", "UTC"))
    assert place([Ambiguous("NAS/20261025/021000.mkv", name, 60_000_000, None, synced)]) == {}
    written = early + 60_000_000 + 3_000_000  # closed 3 s after its end: placed
    assert place([Ambiguous("NAS/20261025/021000.mkv", name, 60_000_000, None, written)]) == {
        "NAS/20261025/021000.mkv": (early, Basis.WRITTEN)
    }
