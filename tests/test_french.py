"""An operator's mistakes, said in French with what to do next: exact message, exact
exit code, nothing written. And what French spreadsheets and editors produce is read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from custody.render import audit_csv
from tests.conftest import ADMIN, AUDITOR, SUPERVISOR, SiteEnv, run_cli
from tests.test_cameras import ADD
from tests.test_cli_errors import snapshot
from tests.test_requisitions import REGISTER, filmed, register  # noqa: F401 - a fixture

FRENCH = {"LANG": "fr_FR.UTF-8"}
YESTERDAY = date.today() - timedelta(days=1)
FR_DAY = YESTERDAY.strftime("%d/%m/%Y")


def french(env: dict[str, str]) -> dict[str, str]:
    return {**env, **FRENCH}


def said(stderr: str) -> tuple[str, str | None]:
    """The error line and the hint line (French), and nothing else on stderr."""
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert lines[0].startswith("scelle : erreur : "), stderr
    hints = [line for line in lines[1:] if line.startswith("conseil : ")]
    assert len(lines) == 1 + len(hints) and len(hints) <= 1, stderr
    return lines[0], hints[0] if hints else None


def refused(
    env: SiteEnv, args: list[str], code: int, login: str | None = None
) -> tuple[str, str | None]:
    """Run a mistaken command in French: its exit code, nothing written, its words."""
    before = snapshot(env.settings.home)
    size = env.site.ledger.size()
    result = run_cli(args, env=french(env.env_as(login) if login else env.env))
    assert result.exit_code == code, result.stderr
    assert snapshot(env.settings.home) == before
    assert env.site.ledger.size() == size
    return said(result.stderr)


@pytest.fixture
def approved(filmed: SiteEnv) -> Iterator[tuple[SiteEnv, str]]:  # noqa: F811
    rid = register(filmed.env)
    assert run_cli(["requisition", "approve", rid], env=filmed.env_as(SUPERVISOR)).exit_code == 0
    yield filmed, rid


def test_a_mistyped_camera_id(filmed: SiteEnv) -> None:  # noqa: F811
    line, hint = refused(
        filmed,
        ["footage", "find", "C-12", "--from", f"{FR_DAY} 10h00", "--to", "10h02"],
        3,
    )
    assert line == "scelle : erreur : caméra inconnue 'C-12'"
    assert hint == (
        "conseil : vouliez-vous dire C-012 ? 'scelle camera list' affiche toutes les caméras"
    )


def test_a_window_without_its_camera(filmed: SiteEnv) -> None:  # noqa: F811
    args = [*REGISTER[:-1], "29/11/2026 14h00/29/11/2026 14h10"]
    line, _hint = refused(filmed, args, 3)
    assert line == (
        "scelle : erreur : plage horaire illisible '29/11/2026 14h00/29/11/2026 14h10' : "
        "attendu CAMÉRA=DÉBUT/FIN, par exemple C-012=29/11/2026 14:00/29/11/2026 14:10"
    )


def test_a_window_as_the_operator_types_it_registers(filmed: SiteEnv) -> None:  # noqa: F811
    args = [*REGISTER[:-1], f"C-012={FR_DAY} 10h00/{FR_DAY} 10h02"]
    result = run_cli(args, env=french(filmed.env))
    assert result.exit_code == 0, result.stderr
    rid = result.stdout.split()[1]
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)
    assert shown["windows"][0]["from_utc"].endswith("T09:00:00Z")
    short = [*REGISTER[:-1], f"C-012={FR_DAY} 10h/10h02", "--force"]
    assert run_cli(short, env=french(filmed.env)).exit_code == 0


def test_no_passphrase_then_a_wrong_one(approved: tuple[SiteEnv, str], tmp_path: Path) -> None:
    env, rid = approved
    args = ["requisition", "extract", rid, "--out", str(tmp_path / "out")]
    no_key = {k: v for k, v in env.env.items() if k != "SCELLE_PASSPHRASE_FILE"}
    before, size = snapshot(env.settings.home), env.site.ledger.size()
    missing = run_cli(args, env=french(no_key))
    assert missing.exit_code == 7
    assert said(missing.stderr) == (
        "scelle : erreur : aucune phrase secrète : scelle ne tourne pas dans un terminal et ne "
        "peut pas la demander",
        "conseil : définissez SCELLE_PASSPHRASE_FILE (fichier contenant la phrase secrète) ou "
        "SCELLE_PASSPHRASE",
    )
    wrong = run_cli(args, env=french({**no_key, "SCELLE_PASSPHRASE": "pas la bonne"}))
    assert wrong.exit_code == 7
    line, hint = said(wrong.stderr)
    assert line == (
        f"scelle : erreur : impossible d'ouvrir la clé de signature {env.settings.key_file} : "
        "phrase secrète erronée ou fichier endommagé"
    )
    assert hint is not None and "retapez la phrase secrète" in hint
    assert snapshot(env.settings.home) == before and env.site.ledger.size() == size
    assert not (tmp_path / "out").exists()


def test_extracting_twice_names_the_export_and_export_copy(
    approved: tuple[SiteEnv, str], tmp_path: Path
) -> None:
    env, rid = approved
    out = tmp_path / "out"
    assert run_cli(["requisition", "extract", rid, "--out", str(out)], env=env.env).exit_code == 0
    line, hint = refused(env, ["requisition", "extract", rid, "--out", str(tmp_path / "b")], 5)
    assert line.startswith(
        f"scelle : erreur : la réquisition {rid} a déjà été extraite (traitée) : son export "
        f"est {out / rid} (SHA-256 du manifeste "
    )
    assert hint == (
        "conseil : copiez cet export (scelle export copy) ; une nouvelle extraction ne "
        "constitue pas un nouveau scellé"
    )


def test_a_time_in_the_autumn_repeated_hour(filmed: SiteEnv) -> None:  # noqa: F811
    line, _ = refused(
        filmed,
        ["footage", "find", "C-012", "--from", "25/10/2026 02h30", "--to", "25/10/2026 02h40"],
        3,
    )
    assert line == (
        "scelle : erreur : 25/10/2026 02h30 existe deux fois en Europe/Paris (passage à "
        "l'heure d'hiver : les horloges ont reculé) : ajoutez le décalage UTC, "
        "25/10/2026 02:30+02:00 ou 25/10/2026 02:30+01:00"
    )


def test_legal_bases_as_written_and_77_1_1_without_its_authorisation(
    filmed: SiteEnv,  # noqa: F811
) -> None:
    written = [*REGISTER[:2], "--legal-basis", "art. 60-1", *REGISTER[4:]]
    result = run_cli(written, env=french(filmed.env))
    assert result.exit_code == 0, result.stderr
    rid = result.stdout.split()[1]
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=filmed.env).stdout)
    assert shown["legal_basis"] == "60-1"
    line, hint = refused(
        filmed, [*REGISTER[:2], "--legal-basis", "art. 77-1-1", *REGISTER[4:], "--force"], 3
    )
    assert line == (
        "scelle : erreur : la réquisition n'indique pas l'autorisation du procureur "
        "(exigée par l'art. 77-1-1)"
    )
    assert hint == (
        'conseil : ajoutez --prosecutor-authorisation "RÉFÉRENCE" '
        "(prosecutor_authorisation dans un fichier de réquisition)"
    )


def test_verify_pointed_at_the_folder_above_the_export(
    approved: tuple[SiteEnv, str], tmp_path: Path
) -> None:
    env, rid = approved
    out = tmp_path / "out"
    assert run_cli(["requisition", "extract", rid, "--out", str(out)], env=env.env).exit_code == 0
    result = run_cli(["verify", str(out)], env=FRENCH)
    assert result.exit_code == 3
    assert said(result.stderr) == (
        f"scelle : erreur : {out} n'est pas un export scelle (manifest.json absent)",
        f"conseil : l'export est le dossier qu'il contient : scelle verify {out / rid}",
    )


FRENCH_EXCEL = (
    "Identifiant;Nom;Emplacement;Commune;Autorisation;Fin d'autorisation;"
    "Durée de conservation (jours)\r\n"
    "C-101;Place de l'Hôtel de Ville;Façade nord, côté église;Évry-Courcouronnes;"
    "AP-2025-118;31/12/2030;15\r\n"
    'C-102;"Rue Gambetta; angle Émile-Zola";Carrefour;Évry-Courcouronnes;AP-2025-118;'
    "31/12/2030;30\r\n"
)


def test_a_camera_inventory_saved_by_french_excel_imports(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    path = tmp_path / "caméras.csv"
    path.write_bytes(FRENCH_EXCEL.encode("cp1252"))
    result = run_cli(["camera", "import", str(path)], env=french(site_env.env_as(ADMIN)))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"2 caméras importées depuis {path}\n"
    shown = json.loads(run_cli(["camera", "list", "--json"], env=site_env.env).stdout)
    by_id = {c["id"]: c for c in shown}
    assert by_id["C-101"]["location"] == "Façade nord, côté église"
    assert by_id["C-102"]["name"] == "Rue Gambetta; angle Émile-Zola"
    assert by_id["C-101"]["retention_days"] == 15
    assert by_id["C-101"]["authorisation_expires"] == "2030-12-31"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig"])
def test_a_french_inventory_with_a_real_error_names_line_and_column(
    site_env: SiteEnv, tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "caméras.csv"
    path.write_bytes(FRENCH_EXCEL.replace(";30\r\n", ";45\r\n").encode(encoding))
    line, _ = refused(site_env, ["camera", "import", str(path)], 3, login=ADMIN)
    assert line == (
        f"scelle : erreur : {path} ligne 3 : caméra C-102 : une conservation de 45 jours n'est "
        "pas permise (Durée de conservation (jours)) : entre 1 et 30 (CSI L252-5 : jamais plus "
        "d'un mois)"
    )


def test_a_file_that_is_not_text_is_refused_in_words(site_env: SiteEnv, tmp_path: Path) -> None:
    path = tmp_path / "cameras.csv"
    path.write_bytes(b"\xef\xbb\xbfid,name\n\xff\xfe\x81\n")  # says UTF-8, is not
    line, _hint = refused(site_env, ["camera", "import", str(path)], 3, login=ADMIN)
    assert line == (
        f"scelle : erreur : {path} ligne 2 : ce n'est pas du texte enregistré par un tableur "
        "(UTF-8 ou Windows-1252)"
    )
    assert "codec" not in line and "byte" not in line and "position" not in line


def test_the_camera_template_imports_as_it_is(site_env: SiteEnv, tmp_path: Path) -> None:
    for environ in (FRENCH, {"LANG": "C"}):
        printed = run_cli(["camera", "template"], env=environ)
        assert printed.exit_code == 0
        assert printed.stdout.startswith("\ufeff# ")
        if environ is FRENCH:
            (header,) = [
                x for x in printed.stdout.splitlines() if not x.lstrip("\ufeff").startswith("#")
            ][:1]
            assert header.startswith("identifiant;nom;emplacement")
        path = tmp_path / f"template-{environ['LANG']}.csv"
        path.write_text(printed.stdout.replace("C-012", f"C-{len(environ['LANG'])}"))
        result = run_cli(["camera", "import", str(path)], env=site_env.env_as(ADMIN))
        assert result.exit_code == 0, result.stderr


def test_the_requisition_template_registers_once_its_camera_exists(
    site_env: SiteEnv, tmp_path: Path
) -> None:
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    printed = run_cli(["requisition", "template"], env=french(site_env.env))
    assert printed.exit_code == 0
    assert "# Réquisition pour 'scelle requisition register --file FICHIER'." in printed.stdout
    path = tmp_path / "req.toml"
    path.write_text(printed.stdout)
    result = run_cli(["requisition", "register", "--file", str(path)], env=site_env.env)
    assert result.exit_code == 0, result.stderr


def test_earlier_requisition_files_still_register(site_env: SiteEnv, tmp_path: Path) -> None:
    assert run_cli(ADD, env=site_env.env_as(ADMIN)).exit_code == 0
    day = YESTERDAY.isoformat()
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "legal_basis": "60-1",
                "pv_number": "PV 1",
                "officer_name": "Brigadier Durand",
                "officer_unit": "BSU",
                "reason": "rixe",
                "windows": [{"camera": "C-012", "from": f"{day}T10:00", "to": f"{day}T10:02"}],
            }
        )
    )
    result = run_cli(["requisition", "register", "--file", str(path)], env=site_env.env)
    assert result.exit_code == 0, result.stderr


def test_the_audit_csv_reads_the_same_in_excel_and_rfc4180_forms(
    approved: tuple[SiteEnv, str],
) -> None:
    env, _ = approved
    auditor = french(env.env_as(AUDITOR))
    excel = run_cli(["audit", "--csv"], env=auditor)
    script = run_cli(["audit", "--csv", "--rfc4180"], env=auditor)
    assert excel.exit_code == 0 and script.exit_code == 0, excel.stderr + script.stderr
    assert excel.stdout.startswith("\ufeff")  # UTF-8's mark: Excel then reads UTF-8
    assert audit_csv([], "Europe/Paris").endswith("\r\n")  # (the runner reads CRLF as LF)
    body = io.StringIO(excel.stdout.removeprefix("\ufeff"), newline="")
    as_excel = list(csv.reader(body, dialect="excel", delimiter=";"))
    as_rfc = list(csv.reader(io.StringIO(script.stdout, newline="")))
    assert len(as_rfc) > 2
    assert as_excel[0][:4] == ["n°", "opération", "nom", "prénom"]  # for people, in French
    assert as_rfc[0][:4] == ["seq", "operation", "surname", "first_name"]  # for scripts
    # The second query also sees the first (an audit is recorded): one row more, its own.
    assert as_excel[1:] == as_rfc[1:-1]
    assert as_rfc[-1][as_rfc[0].index("action")] == "audit.query"


def test_audit_periods_as_people_write_them(approved: tuple[SiteEnv, str]) -> None:
    env, _ = approved
    auditor = env.env_as(AUDITOR)
    today = date.today()
    iso = run_cli(["audit", "--from", YESTERDAY.isoformat(), "--json"], env=auditor)
    french_day = run_cli(["audit", "--from", FR_DAY, "--json"], env=french(auditor))
    assert iso.exit_code == 0 and french_day.exit_code == 0, french_day.stderr
    rows = json.loads(french_day.stdout)
    assert [r["seq"] for r in json.loads(iso.stdout)] == [r["seq"] for r in rows][:-1]
    assert rows and rows[-1]["action"] == "audit.query"  # the first question, recorded
    until = run_cli(["audit", "--to", today.strftime("%d/%m/%Y") + " 00h00", "--json"], env=auditor)
    assert until.exit_code == 0, until.stderr


def test_review_findings_stay_fixed(site_env: SiteEnv, tmp_path: Path) -> None:
    """What a review of the French interface found: a Windows-1252 scelle.toml, an empty or
    UTF-16 inventory, /dev/zero, a garbled --key, a folder that is not there, midnight."""
    home = site_env.settings.home
    (home / "scelle.toml").write_bytes('csv_name = "Centre de vidéo"\n'.encode("cp1252"))
    broken = run_cli(["config", "show"], env=french(site_env.env))
    assert broken.exit_code == 3
    assert (
        said(broken.stderr)[0]
        == f"scelle : erreur : {home / 'scelle.toml'} n'est pas un texte en UTF-8"
    )
    (home / "scelle.toml").unlink()
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    line, _hint = refused(site_env, ["camera", "import", str(empty)], 3, login=ADMIN)
    assert line == f"scelle : erreur : {empty} : le fichier est vide"
    wide = tmp_path / "wide.csv"
    wide.write_bytes("identifiant;nom\n".encode("utf-16-le"))
    line, _hint = refused(site_env, ["camera", "import", str(wide)], 3, login=ADMIN)
    assert "ce n'est pas du texte enregistré par un tableur" in line
    line, _hint = refused(site_env, ["camera", "import", "/dev/zero"], 3, login=ADMIN)
    assert (
        line == "scelle : erreur : /dev/zero dépasse 128 Mo : ce n'est pas un inventaire de caméras"
    )
    garbled = run_cli(["verify", str(tmp_path), "--key", "AB:CD"], env=FRENCH)
    assert garbled.exit_code == 3
    missing = run_cli(["verify", str(tmp_path / "nowhere")], env=FRENCH)
    assert missing.exit_code == 3
    assert said(missing.stderr)[0].endswith("nowhere n'existe pas ou n'est pas un dossier")


def test_windows_across_midnight() -> None:
    from custody.timewindow import parse_window, utc_text

    late = parse_window("29/11/2026 23h50", "00h10", "Europe/Paris", 24)
    assert (utc_text(late.start), utc_text(late.end)) == (
        "2026-11-29T22:50:00Z",
        "2026-11-29T23:10:00Z",
    )
    evening = parse_window("29/11/2026 22h", "24h", "Europe/Paris", 24)
    assert utc_text(evening.end) == "2026-11-29T23:00:00Z"


def test_times_that_cannot_be_true_are_refused(
    approved: tuple[SiteEnv, str], tmp_path: Path
) -> None:
    """A typo in a year must not stand on a legal paper: no receipt or handover in the
    future, no deadline before the receipt, no handover before the approval."""
    env, rid = approved
    later = (date.today() + timedelta(days=400)).strftime("%d/%m/%Y")
    line, hint = refused(env, [*REGISTER, "--force", "--received-at", f"{later} 10h"], 3)
    assert line.startswith("scelle : erreur : la réception ne peut pas être dans le futur (")
    assert hint == "conseil : vérifiez la date et l'heure : 29/11/2026 14:00"
    early = (YESTERDAY - timedelta(days=2)).strftime("%d/%m/%Y")
    line, _hint = refused(
        env,
        [*REGISTER, "--force", "--received-at", f"{FR_DAY} 10h", "--deadline", f"{early} 10h"],
        3,
    )
    assert line.startswith("scelle : erreur : l'échéance (")
    assert (
        run_cli(["requisition", "extract", rid, "--out", str(tmp_path)], env=env.env).exit_code == 0
    )
    hand = ["requisition", "handover", rid, "--officer", "Brigadier Durand", "--unit", "BSU"]
    hand += ["--medium", "clé USB", "--seal", "S-1"]
    line, _hint = refused(env, [*hand, "--at", f"{later} 10h"], 3)
    assert line.startswith("scelle : erreur : la remise ne peut pas être dans le futur (")
    line, hint = refused(env, [*hand, "--at", f"{early} 10h"], 3)
    assert line.startswith("scelle : erreur : la remise (") and "précéderait l'approbation" in line
    assert hint == "conseil : vérifiez la date et l'heure données à --at"
    done = run_cli(hand, env=french(env.env))
    assert done.exit_code == 0, done.stderr
    shown = json.loads(run_cli(["requisition", "show", rid, "--json"], env=env.env).stdout)
    assert shown["medium"] == "usb"
