"""`scelle demo`: the main job from nothing, so a newcomer sees every part work.

A new site, two cameras (one in scelle's own store with a recorder clock 1.5 s fast, one
in a Frigate layout), a few minutes of real generated footage with a gap, searched by an
operator (a consultation, recorded), a requisition registered by the operator and
approved by a supervisor (each a designated agent; the
operator's attempt to approve is refused and recorded), the signed export built under
the site directory, verified as an investigator would, and an auditor's question
answered from the ledger.

It never touches the operator's own site: the demo's settings ignore `SCELLE_*`
variables (a demo must not write into a production database) and live in a directory
of its own.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from custody.audit import AuditFilter
from custody.audit_query import ask
from custody.checks import PAGE, Report
from custody.config import CONFIG_FILE, load_settings
from custody.errors import InvalidStateError, PermissionDeniedError
from custody.files import write_atomic
from custody.i18n import _, ngettext
from custody.site import Site
from custody.timewindow import parse_span, parse_window
from custody.verify import LedgerReport, verify_ledger
from exporters.generate import generate_footage
from exporters.index import scan
from exporters.package import Built
from exporters.verify_export import verdict, verify_export
from requisition import agents
from requisition.agents import NewAgent
from requisition.cameras import CameraSpec, add_cameras, get_camera
from requisition.consult import consult
from requisition.demo_papers import Papers, issue_papers
from requisition.extract import extract
from requisition.papers import paper_signer
from requisition.requisitions import RequisitionRequest, WindowRequest, decide, register
from requisition.roles import Permission, Role
from requisition.site import init_site

PASSPHRASE_FILE = "demo-passphrase"  # noqa: S105 - a file name; the demo's throwaway key
OPERATOR, SUPERVISOR = "demo-operator", "demo-supervisor"
# (surname, first name), as designated: the access log names every agent so.
NAMES = {OPERATOR: ("DURAND", "Marie"), SUPERVISOR: ("MARTIN", "Paul")}
ADMIN_NAME = ("BERNARD", "Sophie")  # the administrator: whoever runs the demo
DEMO_PV = "PV 2026/004217"
# What a French centre types (the papers print it whatever the language of the run).
DESIGNATION = "arrêté du maire n° 2026-118"
DEMO_CENTRE = """\
# The demo centre, as the legal papers name it.
csv_name = "Centre de supervision urbain de Villeurbanne"
csv_authorisation = "arrêté préfectoral n° 69-2024-117 du 2 mai 2024"
csv_commune = "Villeurbanne"
"""


@dataclass(frozen=True)
class DemoResult:
    home: Path
    passphrase_file: Path
    requisition: str
    day: str  # the footage's date, local
    export: Built
    verified: Report
    ledger: LedgerReport
    papers: Papers


def _demo_home(site: Path | None) -> Path:
    if site is None:
        return Path(tempfile.mkdtemp(prefix="scelle-demo-"))
    if site.exists() and (not site.is_dir() or any(site.iterdir())):
        raise InvalidStateError(_("{site} exists and is not an empty directory").format(site=site))
    site.mkdir(parents=True, exist_ok=True)
    return site


def run_demo(site: Path | None, say: Callable[[str], None]) -> DemoResult:
    """Run the whole job on a new site; `say` narrates each step."""
    home = _demo_home(site).absolute()
    write_atomic(home / CONFIG_FILE, DEMO_CENTRE.encode())
    settings = load_settings({"home": str(home)}, environ={})
    passphrase = secrets.token_urlsafe(24).encode()
    pass_file = home / PASSPHRASE_FILE
    write_atomic(pass_file, passphrase + b"\n", mode=0o600)

    def first_admin(site: Site) -> None:
        surname, first_name = ADMIN_NAME
        agents.bootstrap(
            site, site.login, "", _("demo site"), surname=surname, first_name=first_name
        )

    opened, _first = init_site(settings, passphrase, then=first_admin)
    try:
        admin = opened.login
        say(
            _("site created in {home} (key {key}, 600,000 PBKDF2 rounds)").format(
                home=home, key=settings.key_file
            )
        )
        for login, role in ((OPERATOR, Role.OPERATOR), (SUPERVISOR, Role.SUPERVISOR)):
            surname, first_name = NAMES[login]
            designation = DESIGNATION
            agents.add(
                opened, admin, NewAgent(login, "", role.value, designation, surname, first_name)
            )
        say(
            _(
                "agents designated by {admin} (admin): {operator} as operator, "
                "{supervisor} as supervisor"
            ).format(
                admin=f"{ADMIN_NAME[1]} {ADMIN_NAME[0]}",
                operator=f"{NAMES[OPERATOR][1]} {NAMES[OPERATOR][0]} ({OPERATOR})",
                supervisor=f"{NAMES[SUPERVISOR][1]} {NAMES[SUPERVISOR][0]} ({SUPERVISOR})",
            )
        )

        def may(login: str, permission: Permission, what: str) -> None:
            agents.authorise(opened, login, permission, what)

        cameras = [
            CameraSpec(
                "C-012",
                "Place de la Mairie",
                "Place de la Mairie, angle rue Racine",
                "Villeurbanne",
                "AP-69-2024-117",
                "2029-05-01",
                retention_days="30",
                clock_offset_ms="1500",
                clock_measured_at=f"{date.today()}T08:00",
                clock_method="interrogation NTP de l'enregistreur",
            ).to_camera(home),
            CameraSpec(
                "C-044",
                "Gare routière",
                "Gare routière, quai B",
                "Vaulx-en-Velin",
                "AP-69-2023-052",
                "2028-11-30",
                retention_days="15",
                store_kind="frigate",
                store_path="frigate",
            ).to_camera(home),
        ]
        add_cameras(opened, cameras, admin, _("demo cameras"))
        say(_("cameras C-012 (scelle store, recorder 1.5 s fast) and C-044 (Frigate layout)"))
        day = (date.today() - timedelta(days=1)).isoformat()
        zone = settings.timezone
        c012, c044 = get_camera(opened, "C-012"), get_camera(opened, "C-044")
        generate_footage(opened, c012, parse_window(f"{day}T14:00", f"{day}T14:04", zone, 24))
        generate_footage(
            opened,
            c044,
            parse_window(f"{day}T14:00", f"{day}T14:04", zone, 24),
            gaps=[parse_span(f"{day}T14:02:10/{day}T14:02:30", zone)],
        )
        may(OPERATOR, Permission.FOOTAGE_INDEX, "footage scan")
        indexed = scan(opened, [c012, c044], OPERATOR)
        say(
            ngettext(
                "footage generated with ffmpeg and indexed: {segments} segments hashed",
                "footage generated with ffmpeg and indexed: {segments} segments hashed",
                indexed.segments,
            ).format(segments=indexed.segments)
        )
        may(OPERATOR, Permission.FOOTAGE_FIND, "footage find")
        searched = consult(
            opened,
            OPERATOR,
            c012,
            parse_window(f"{day}T14:00", f"{day}T14:04", zone, 24),
            _("demo: is the snatch theft on camera?"),
        )
        say(
            _(
                "{operator} searches camera C-012's recordings: {segments} segments "
                "(a consultation, recorded in the ledger with its reason)"
            ).format(
                operator=f"{NAMES[OPERATOR][1]} {NAMES[OPERATOR][0]}",
                segments=len(searched.segments),
            )
        )
        may(OPERATOR, Permission.REGISTER, "requisition register")
        registered = register(
            opened,
            RequisitionRequest(
                legal_basis="60-1",
                pv_number=DEMO_PV,
                officer_name="Lieutenant Claire Martin (OPJ)",
                officer_unit="Commissariat de Villeurbanne, brigade de sûreté urbaine",
                reason="vol à l'arraché, place de la Mairie, vers 14 h 01",
                received_via="email",
                windows=(
                    WindowRequest("C-012", f"{day}T14:00:30", f"{day}T14:02:30"),
                    WindowRequest("C-044", f"{day}T14:01:00", f"{day}T14:03:00"),
                ),
            ),
            OPERATOR,
        )
        rid = registered.requisition.id
        say(
            _("requisition {id} registered by {operator}; its footage is held").format(
                id=rid, operator=OPERATOR
            )
        )
        try:
            may(OPERATOR, Permission.DECIDE, "requisition approve")
        except PermissionDeniedError as refused:
            say(
                _("{operator} tries to approve it: {refusal} (recorded in the ledger)").format(
                    operator=OPERATOR, refusal=refused.message
                )
            )
        may(SUPERVISOR, Permission.DECIDE, "requisition approve")
        decide(opened, rid, "approve", SUPERVISOR, _("requisition in order"))
        say(_("approved by {supervisor} (four eyes)").format(supervisor=SUPERVISOR))
        may(OPERATOR, Permission.EXTRACT, "requisition extract")
        signers = paper_signer(opened, passphrase)
        built = extract(opened, rid, home / "exports", signers.signer, OPERATOR, papers=signers)
        if built.complete:
            say(_("export built: {path} (complete)").format(path=built.path))
        else:
            say(
                ngettext(
                    "export built: {path} ({gaps} gap(s) stated)",
                    "export built: {path} ({gaps} gap(s) stated)",
                    built.gaps,
                ).format(path=built.path, gaps=built.gaps)
            )
        verified = verify_export(built.path)
        checks = len(verified.checks)
        say(
            ngettext(
                "export verified: {checks} checks passed; {verdict}",
                "export verified: {checks} checks passed; {verdict}",
                checks,
            ).format(checks=checks, verdict=verdict(verified))
        )
        ledger = verify_ledger(opened.db, settings)
        say(
            ngettext(
                "ledger verified: {entries} entries, {checkpoints} checkpoints",
                "ledger verified: {entries} entries, {checkpoints} checkpoints",
                ledger.checkpoints,
            ).format(entries=ledger.entries, checkpoints=ledger.checkpoints)
        )
        papers = issue_papers(opened, signers, rid, day, OPERATOR, SUPERVISOR, say)
        may(admin, Permission.AUDIT, "audit")
        asked = AuditFilter(camera="C-012", action="footage")
        accesses = ask(opened.ledger, admin, asked, _("demo: who accessed camera C-012"))
        last, who = accesses[-1].row, accesses[-1].access.designation
        say(
            ngettext(
                "audit of camera C-012: {count} footage entries, the last {action} by {agent} "
                "for {procedure} ({unit})",
                "audit of camera C-012: {count} footage entries, the last {action} by {agent} "
                "for {procedure} ({unit})",
                len(accesses),
            ).format(
                count=len(accesses),
                action=last.action,
                agent=f"{who.full_name} ({last.actor})" if who else last.actor,
                procedure=last.procedure,
                unit=last.unit,
            )
        )
    finally:
        opened.close()
    return DemoResult(home, pass_file, rid, day, built, verified, ledger, papers)


def next_steps(result: DemoResult) -> list[str]:
    """What `scelle demo` prints at the end: how to check the export as an investigator
    would, and how to explore the demo site with the other commands."""
    export = result.export.path
    return [
        "",
        _("the export is in {export}; check it as an investigator would:").format(export=export),
        "  "
        + _("in a browser, nothing to install: open {page} and pick the folder").format(
            page=(export / PAGE).as_uri()
        ),
        f"  scelle verify {export} --key {result.verified.fingerprint}",
        f"  cd {export} && sha256sum -c SHA256SUMS",
        "  " + _("(VERIFY.txt there: openssl, ssh-keygen, minisign; on Windows too)"),
        _("explore the site (requisition {id}) with:").format(id=result.requisition),
        f"  export SCELLE_HOME={result.home} SCELLE_PASSPHRASE_FILE={result.passphrase_file}",
        f"  scelle requisition show {result.requisition}",
        "  scelle agent list",
        "  scelle audit --camera C-012",
        f"  scelle audit --procedure '{DEMO_PV}' --json",
        "  scelle ledger verify",
    ]
