"""The library records what it does: a program that calls it directly (no CLI) leaves the
ledger entries `scelle` leaves for the same work.

Two twin sites are built alike; on one the work is done through the CLI, on the other
through the library, each step as the agent the CLI would act as (their own login, their
own database session on PostgreSQL). The entries each appended must be the same actions,
by the same agents, about the same subjects, and the expected ones: equal trails that had
both lost an entry would still fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from custody import checkpoints
from custody.audit import AuditFilter
from custody.audit_query import ask
from custody.bundle import export_bundle
from custody.config import load_settings
from custody.entry import decode_entry
from custody.site import Site
from custody.timewindow import Window, local_text, now_us
from exporters.generate import generate_footage
from exporters.index import scan
from requisition.cameras import CameraSpec, add_cameras, get_camera
from requisition.database import copy_site
from requisition.extract import extract
from requisition.issue import issue_cover, issue_label, issue_register
from requisition.papers import paper_signer
from requisition.purge import purge
from requisition.requisitions import RequisitionRequest, WindowRequest, decide, register
from requisition.site import open_site
from tests.conftest import (
    ADMIN,
    AUDITOR,
    OPERATOR,
    PASSPHRASE,
    SUPERVISOR,
    SiteEnv,
    as_login,
    fresh_database,
    logged_in_as,
    make_site,
    run_cli,
)

MIN = 60_000_000
DAY = 86_400_000_000
ZONE = "Europe/Paris"
PV = "PV 2026/000777"

# What the work below must record, in order (a purge records its intent, then what it
# destroyed; a registration holds its windows at once).
EXPECTED = [
    ("requisition.register", OPERATOR),
    ("hold.place", OPERATOR),
    ("requisition.approve", SUPERVISOR),
    ("footage.extract", OPERATOR),
    ("requisition.export", OPERATOR),  # the sealed manifest
    ("document.issue", OPERATOR),  # the cover sheet inside the export
    ("document.issue", OPERATOR),  # doc cover
    ("document.issue", OPERATOR),  # doc label
    ("document.issue", OPERATOR),  # doc register
    ("ledger.note", OPERATOR),
    ("ledger.export", AUDITOR),
    ("audit.query", AUDITOR),
    ("footage.destroy.intent", ADMIN),
    ("footage.destroy", ADMIN),
]


class Twin:
    """A site with camera C-012 (2-day retention): footage from three days ago, past its
    retention, and from yesterday, which the requisition asks for."""

    def __init__(self, env: SiteEnv, old: Window, recent: Window) -> None:
        self.env = env
        self.root = env.settings.home.parent
        self.recent = recent
        with self.acting(ADMIN) as site:
            camera = CameraSpec(
                "C-012",
                "Place de la Mairie",
                "Place de la Mairie",
                "Villeurbanne",
                "AP-2024-117",
                "2029-05-01",
                retention_days="2",
            ).to_camera(site.settings.home)
            add_cameras(site, [camera], site.login, "camera registered")
            camera = get_camera(site, "C-012")
            for window in (old, recent):
                generate_footage(site, camera, window)
            scan(site, [camera], site.login)
        self.start = env.site.ledger.size()

    @contextmanager
    def acting(self, login: str) -> Iterator[Site]:
        """The site as `login` opens it: their OS login on SQLite, their own database
        role on PostgreSQL, as the CLI would."""
        url = as_login(self.env.settings.database_url, login)["SCELLE_DATABASE_URL"]
        settings = load_settings({"home": str(self.env.settings.home), "database_url": url})
        with logged_in_as(login), open_site(settings) as site:
            yield site

    def trail(self) -> list[tuple[str, str, Any, str | None]]:
        """(action, actor, subject, procedure) of every entry since the twin was built,
        its own paths written as <root>."""
        entries = [decode_entry(body) for _, body in self.env.site.ledger.entries(self.start)]
        shown = [(e["action"], e["actor"], e["subject"], e["procedure"]) for e in entries]
        return json.loads(json.dumps(shown).replace(str(self.root), "<root>"))


@pytest.fixture
def twins(
    site_env: SiteEnv, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Twin, Twin]]:
    url = fresh_database(backend, request, tmp_path / "twin")
    other = make_site(tmp_path / "twin", database_url=url)
    base = now_us() // MIN * MIN
    old = Window(base - 3 * DAY, base - 3 * DAY + 2 * MIN)
    recent = Window(base - DAY, base - DAY + 2 * MIN)
    try:
        yield Twin(site_env, old, recent), Twin(other, old, recent)
    finally:
        other.site.close()
        if backend != "sqlite":
            request.getfixturevalue("pg_server").execute(
                f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)"
            )


def through_the_cli(twin: Twin) -> None:
    def cli(login: str, *args: str) -> str:
        result = run_cli(list(args), env=twin.env.env_as(login))
        assert result.exit_code == 0, (args, result.stderr)
        return result.stdout

    recent = twin.recent
    window = f"C-012={local_text(recent.start, ZONE)}/{local_text(recent.end, ZONE)}"
    registered = cli(
        OPERATOR,
        *("requisition", "register", "--legal-basis", "60-1", "--pv", PV),
        *("--officer", "Brigadier Durand", "--unit", "BSU Villeurbanne", "--reason", "rixe"),
        *("--window", window),
    )
    rid = registered.split()[1]
    cli(SUPERVISOR, "requisition", "approve", rid)
    out = twin.root / "out"
    cli(OPERATOR, "requisition", "extract", rid, "--out", str(out / "exports"), "--stream-copy")
    cli(OPERATOR, "doc", "cover", rid, "--out", str(out / "docs"))
    cli(
        OPERATOR,
        "doc",
        "label",
        rid,
        "--seal",
        "S-1",
        "--medium",
        "usb",
        "--out",
        str(out / "docs"),
    )
    day = local_text(recent.start, ZONE)[:10]
    cli(OPERATOR, "doc", "register", "--from", day, "--to", day, "--out", str(out / "docs"))
    cli(OPERATOR, "ledger", "note", "seal S-1", "--reason", "seal checked", "--procedure", PV)
    cli(ADMIN, "ledger", "checkpoint")
    cli(AUDITOR, "ledger", "export", "--out", str(out / "bundle"), "--reason", "inspection")
    cli(AUDITOR, "audit", "--camera", "C-012", "--reason", "inspection", "--json")
    cli(ADMIN, "purge")


def through_the_library(twin: Twin) -> None:
    out, recent = twin.root / "out", twin.recent
    with twin.acting(OPERATOR) as site:
        request = RequisitionRequest(
            legal_basis="60-1",
            pv_number=PV,
            officer_name="Brigadier Durand",
            officer_unit="BSU Villeurbanne",
            reason="rixe",
            windows=(
                WindowRequest(
                    "C-012", local_text(recent.start, ZONE), local_text(recent.end, ZONE)
                ),
            ),
        )
        rid = register(site, request, site.login).requisition.id
    with twin.acting(SUPERVISOR) as site:
        decide(site, rid, "approve", site.login, "requisition in order")
    with twin.acting(OPERATOR) as site:
        papers = paper_signer(site, PASSPHRASE)
        extract(
            site, rid, out / "exports", papers.signer, site.login, papers=papers, stream_copy=True
        )
        issue_cover(site, rid, site.login, papers, out / "docs")
        issue_label(site, rid, site.login, papers, "S-1", "usb", out / "docs")
        day = local_text(recent.start, ZONE)[:10]
        issue_register(site, day, day, site.login, papers, out / "docs")
        site.ledger.note(site.login, "seal S-1", "seal checked", PV)
    with twin.acting(ADMIN) as site:
        checkpoints.sign(site.db, site.settings.checkpoint_file, site.signer(PASSPHRASE))
    with twin.acting(AUDITOR) as site:
        export_bundle(site.ledger, site.login, out / "bundle", 0, None, "inspection")
        ask(site.ledger, site.login, AuditFilter(camera="C-012"), "inspection")
    with twin.acting(ADMIN) as site:
        purge(site, site.login, signer=site.signer(PASSPHRASE))


def test_the_library_leaves_the_trail_the_cli_leaves(twins: tuple[Twin, Twin]) -> None:
    by_cli, by_library = twins
    through_the_cli(by_cli)
    through_the_library(by_library)
    cli_trail, library_trail = by_cli.trail(), by_library.trail()
    assert [(action, actor) for action, actor, *_ in cli_trail] == EXPECTED
    assert library_trail == cli_trail
    subjects = {action: subject for action, _, subject, _ in cli_trail}
    assert subjects["ledger.note"] == "seal S-1"
    assert subjects["audit.query"] == {"filter": {"camera": "C-012"}}
    assert subjects["ledger.export"]["from"] == 0
    documents = [s for a, _, s, _ in cli_trail if a == "document.issue"]
    assert [d["document"] for d in documents] == ["cover", "cover", "label", "register"]


@pytest.mark.backends("sqlite")
def test_db_copy_through_the_library_records_what_the_cli_records(
    twins: tuple[Twin, Twin], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """`db copy` records itself in the target (`db.copy`, and the target's login made its
    administrator when it is not an agent there): the same whether the CLI or a program
    copies."""
    by_cli, by_library = twins
    targets = [fresh_database("postgresql", request, tmp_path / n) for n in ("cli", "lib")]
    server = request.getfixturevalue("pg_server")
    for url in targets:
        request.addfinalizer(
            lambda url=url: server.execute(
                f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)"
            )
        )
    copied = run_cli(["db", "copy", "--to", targets[0]], env=by_cli.env.env_as(ADMIN))
    assert copied.exit_code == 0, copied.stderr
    with by_library.acting(ADMIN) as site:
        copy_site(site, targets[1])
    trails = []
    for twin, url in zip((by_cli, by_library), targets, strict=True):
        settings = load_settings({"home": str(twin.env.settings.home), "database_url": url})
        with open_site(settings) as moved:
            size = moved.ledger.size()
            entries = [decode_entry(body) for _, body in moved.ledger.entries(twin.start)]
            assert size == twin.env.site.ledger.size() + 1  # the copy, and the db.copy entry
        trails.append(
            [(e["action"], e["actor"], sorted(e["subject"]), e["procedure"]) for e in entries]
        )
    assert trails[0] == trails[1]
    assert trails[0][-1] == ("db.copy", ADMIN, ["database"], None)
