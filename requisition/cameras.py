"""The camera register: what each camera is, where it records, how far its clock is off.

Every change is written in the same transaction as its ledger entry: a camera is never
in the register without the entry that says who put it there. A CSV import is all or
nothing, and a bad row is named by its line number.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from custody import text
from custody.db import Cursor
from custody.entry import Record, utc_now
from custody.errors import EnvironmentProblemError, InputError, IntegrityError, InvalidStateError
from custody.i18n import _, current, os_error_text
from custody.site import Site
from custody.timewindow import parse_time, stored_utc, to_us, utc_text
from exporters.index import Recorder, ScanReport, hash_new
from exporters.models import ADDED_LATER, CAMERA_COLUMNS, Camera, camera_of
from exporters.store_check import StoreCheck, check_store
from exporters.stores import NameClock, StoreKind
from exporters.stores.template import EXAMPLES, check_template

MAX_RETENTION_DAYS = 30  # CSI L252-5: never more than one month
MAX_INVENTORY_BYTES = 128 << 20  # 100,000 cameras take 20 MB; more is not an inventory
CameraRow = dict[str, Any]  # a checked camera: its column values, as the table holds them
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REQUIRED = ("id", "name", "location", "commune", "authorisation_ref", "authorisation_expires")
OPTIONAL = {
    "retention_days": "30",
    "timezone": "Europe/Paris",
    "store_kind": StoreKind.SCELLE.value,
    "store_path": "footage",
    "store_camera": "",
    "clock_offset_ms": "0",
    "clock_measured_at": "",
    "clock_method": "",
    "store_template": "",
    "store_time": NameClock.UTC.value,
}
# What operators may write for a template's clock, in either language.
_CLOCK_WORDS = {"utc": NameClock.UTC, "local": NameClock.LOCAL, "locale": NameClock.LOCAL}


def check_token(value: str, what: str) -> str:
    """Identifiers that become path components: no separators, no dots in front."""
    if not TOKEN.fullmatch(value) or ".." in value:
        raise InputError(
            _(
                "invalid {what} {value}: letters, digits, '.', '_' and '-' only, starting with a "
                "letter or digit"
            ).format(what=what, value=text.shown(value))
        )
    return value


def store_root(store_path: str, home: Path) -> Path:
    """A store directory: absolute, or relative to the site; never through `..`."""
    path = Path(store_path)
    if not store_path.strip() or ".." in path.parts:
        raise InputError(
            _("invalid store path {path}: '..' is not allowed").format(path=text.shown(store_path))
        )
    return path if path.is_absolute() else home / path


def store_problem(root: Path) -> str | None:
    """Why `root` cannot be a footage store, or None: it must be a directory, or not exist
    yet (the recorder creates it). A file there (`/etc/passwd`) would break every scan."""
    try:
        if root.exists() and not root.is_dir():
            return _("store {root} exists and is not a directory").format(root=root)
    except OSError as exc:  # a path too long, a component that is a file
        return _("store {root} cannot be used: {reason}").format(
            root=root, reason=os_error_text(exc)
        )
    return None


@dataclass(frozen=True)
class CameraSpec:
    """A camera as typed by an operator or read from a CSV row: all text, unchecked."""

    id: str
    name: str
    location: str
    commune: str
    authorisation_ref: str
    authorisation_expires: str
    retention_days: str = OPTIONAL["retention_days"]
    timezone: str = OPTIONAL["timezone"]
    store_kind: str = OPTIONAL["store_kind"]
    store_path: str = OPTIONAL["store_path"]
    store_camera: str = OPTIONAL["store_camera"]
    clock_offset_ms: str = OPTIONAL["clock_offset_ms"]
    clock_measured_at: str = OPTIONAL["clock_measured_at"]
    clock_method: str = OPTIONAL["clock_method"]
    store_template: str = OPTIONAL["store_template"]
    store_time: str = OPTIONAL["store_time"]

    def to_camera(self, home: Path) -> Camera:
        """Validate every field; InputError names the camera and the first bad field."""
        return Camera(**self.row(home))

    def row(
        self, home: Path, created_at: str | None = None, names: dict[str, str] | None = None
    ) -> CameraRow:
        """The camera's column values once every field is valid (InputError naming the
        camera and the first bad field, as `names` calls it: a file's own column names).
        An import builds rows, not ORM objects: pydantic's validation and SQLAlchemy's
        instrumentation cost more than all the checks here.

        `created_at` (default: now) lets an import stamp all its cameras with one time."""
        check_token(self.id, _("camera id"))
        named = names or {}

        def column(name: str) -> str:
            return named.get(name, name)

        def bad(message: str, **values: object) -> InputError:
            return InputError(
                _("camera {camera}: {problem}").format(
                    camera=self.id, problem=message.format(**values)
                )
            )

        label = _("camera {camera}: ").format(camera=self.id)
        for name in _FIELDS:
            check = text.path_text if name == "store_path" else text.line
            check(getattr(self, name), label + column(name))
        for name in ("name", "location", "commune", "authorisation_ref"):
            if not getattr(self, name).strip():
                raise bad(_("{column} is empty"), column=column(name))
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise bad(_("unknown time zone {zone}"), zone=text.shown(self.timezone)) from exc
        expires = _day(self.authorisation_expires)
        if expires is None:
            raise bad(
                _("{column} must be a date (YYYY-MM-DD or DD/MM/YYYY), not {value}"),
                column=column("authorisation_expires"),
                value=text.shown(self.authorisation_expires),
            )
        if expires < datetime.now(zone).date():
            raise bad(
                _(
                    "authorisation {reference} expired on {day}: a camera is registered under "
                    "an authorisation in force"
                ),
                reference=self.authorisation_ref.strip(),
                day=expires.isoformat(),
            )
        retention = text.whole_number(
            self.retention_days, label + column("retention_days"), high=10**6
        )
        if not 1 <= retention <= MAX_RETENTION_DAYS:
            raise bad(
                _(
                    "retention of {days} days is not allowed ({column}): between 1 and {most} "
                    "(CSI L252-5: never more than one month)"
                ),
                days=retention,
                column=column("retention_days"),
                most=MAX_RETENTION_DAYS,
            )
        try:
            kind = StoreKind(self.store_kind)
        except ValueError as exc:
            kinds = ", ".join(k.value for k in StoreKind)
            raise bad(
                _("{column} must be one of {kinds}"), column=column("store_kind"), kinds=kinds
            ) from exc
        root = store_root(self.store_path, home)
        problem = store_problem(root)
        if problem:
            raise bad("{problem}", problem=problem)
        store_camera = check_token(self.store_camera or self.id, _("store camera name"))
        template, clock = self._layout(kind, bad, column)
        offset = text.whole_number(
            self.clock_offset_ms,
            label + column("clock_offset_ms"),
            signed=True,
            low=-(10**12),
            high=10**12,
        )
        if abs(offset) > 86_400_000:
            raise bad(_("a clock offset over a day is not credible"))
        measured = None
        if self.clock_measured_at.strip():
            measured = stored_utc(to_us(parse_time(self.clock_measured_at, self.timezone)))
        return {
            "id": self.id,
            "name": self.name.strip(),
            "location": self.location.strip(),
            "commune": self.commune.strip(),
            "authorisation_ref": self.authorisation_ref.strip(),
            "authorisation_expires": expires.isoformat(),
            "retention_days": retention,
            "timezone": self.timezone,
            "store_kind": kind.value,
            "store_path": str(root),
            "store_camera": store_camera,
            "clock_offset_ms": offset,
            "clock_measured_at": measured,
            "clock_method": self.clock_method.strip() or None,
            "store_template": template,
            "store_time": clock.value,
            "created_at": created_at or utc_now(),
        }

    def _layout(
        self, kind: StoreKind, bad: Callable[..., InputError], column: Callable[[str], str]
    ) -> tuple[str, NameClock]:
        """A template store's path template and clock; the other layouts fix both."""
        template = self.store_template.strip()
        clock = _CLOCK_WORDS.get(self.store_time.strip().lower())
        if clock is None:
            raise bad(
                _("{column} must be utc or local, not {value}"),
                column=column("store_time"),
                value=text.shown(self.store_time),
            )
        if kind is not StoreKind.TEMPLATE:
            if template or clock is not NameClock.UTC:
                raise bad(
                    _("{column} and {clock} are for a store of type template only"),
                    column=column("store_template"),
                    clock=column("store_time"),
                )
            return "", NameClock.UTC
        if not template:
            raise bad(
                _("a store of type template needs its path template ({column}), e.g. {example}"),
                column=column("store_template"),
                example=EXAMPLES["NAS"],
            )
        try:
            check_template(template)
        except InputError as exc:
            raise bad("{problem}", problem=exc.message) from exc
        return template, clock


_FIELDS = tuple(f.name for f in fields(CameraSpec))
_FRENCH_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})", re.ASCII)


def _day(written: str) -> date | None:
    """A calendar day written YYYY-MM-DD or DD/MM/YYYY (as French spreadsheets save it)."""
    value = written.strip()
    french = _FRENCH_DAY.fullmatch(value)
    try:
        if french:
            return date(int(french[3]), int(french[2]), int(french[1]))
        return date.fromisoformat(value)
    except ValueError:
        return None


def camera_record(camera: Camera | CameraRow, action: str, reason: str) -> Record:
    row = camera.row() if isinstance(camera, Camera) else camera
    data = {k: v for k, v in row.items() if k != "created_at"}
    return Record(action, {"camera": row["id"]}, reason, data=data)


def _insert(cur: Cursor, rows: Sequence[CameraRow]) -> None:
    columns = CAMERA_COLUMNS
    cur.insert(f"camera ({', '.join(columns)})", [[r[name] for name in columns] for r in rows])


def _existing(cur: Cursor, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        cur.execute(f"SELECT id FROM camera WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        found |= {row[0] for row in cur.fetchall()}
    return found


def add_cameras(site: Site, cameras: Sequence[Camera], actor: str, reason: str) -> None:
    """Register cameras and their ledger entries in one transaction."""
    add_rows(site, [c.row() for c in cameras], actor, reason)


def add_rows(site: Site, rows: Sequence[CameraRow], actor: str, reason: str) -> None:
    """Register checked cameras (`CameraSpec.row`) and one `camera.add` entry each, in one
    transaction: all of them, or none."""
    records = [camera_record(r, "camera.add", reason) for r in rows]
    with site.db.write() as cur:
        taken = _existing(cur, [r["id"] for r in rows])
        if taken:
            raise InvalidStateError(
                _("camera {camera} is already registered").format(camera=sorted(taken)[0])
            )
        _insert(cur, rows)
        site.ledger.append_in(cur, actor, records)


# The columns as French spreadsheets name them (accents, case, spaces and punctuation do
# not matter: "Durée de conservation (jours)" is duree_de_conservation_jours). These are
# part of the file format: an import reads them whatever language the operator speaks.
FRENCH_COLUMNS = {
    "id": "identifiant",
    "name": "nom",
    "location": "emplacement",
    "commune": "commune",
    "authorisation_ref": "autorisation",
    "authorisation_expires": "fin d'autorisation",
    "retention_days": "durée de conservation (jours)",
    "timezone": "fuseau horaire",
    "store_kind": "type de stockage",
    "store_path": "chemin du stockage",
    "store_camera": "nom dans le stockage",
    "clock_offset_ms": "décalage d'horloge (ms)",
    "clock_measured_at": "horloge mesurée le",
    "clock_method": "méthode de mesure",
    "store_template": "modèle de chemin",
    "store_time": "heure des noms",
}
_MORE_FRENCH = {
    "id": ("id_camera", "identifiant_camera", "code_camera", "code", "numero", "n"),
    "name": ("nom_camera", "libelle", "designation"),
    "location": ("localisation", "lieu", "adresse"),
    "commune": ("ville",),
    "authorisation_ref": ("reference_autorisation", "ref_autorisation", "arrete", "numero_arrete"),
    "authorisation_expires": (
        "fin_autorisation",
        "date_fin_autorisation",
        "date_de_fin_d_autorisation",
        "autorisation_valable_jusqu_au",
        "expiration_autorisation",
        "echeance_autorisation",
    ),
    "retention_days": ("duree_de_conservation", "duree_conservation", "conservation_jours"),
    "timezone": ("fuseau",),
    "clock_offset_ms": ("decalage_horloge_ms", "decalage_d_horloge"),
}


def _normal(name: str) -> str:
    """A column name without accents, case, spaces or punctuation."""
    bare = unicodedata.normalize("NFKD", name.replace("\ufeff", ""))
    bare = "".join(c for c in bare if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", bare).strip("_")


_COLUMNS: dict[str, str] = {}
for _field in (f.name for f in fields(CameraSpec)):
    _COLUMNS[_field] = _field
    _COLUMNS[_normal(FRENCH_COLUMNS[_field])] = _field
    for _alias in _MORE_FRENCH.get(_field, ()):
        _COLUMNS[_alias] = _field


def _decode(data: bytes, path: Path) -> str:
    """A spreadsheet's CSV as text: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's
    "Unicode text"), else Windows-1252 (French Excel's "CSV (séparateur: point-virgule)")."""
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if data.count(b"\x00") > len(data) // 4 and not utf16:  # UTF-16 without its mark, binary
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(
            _(
                "{path} line {line}: this is not text a spreadsheet saves (UTF-8 or Windows-1252)"
            ).format(path=path, line=line),
            hint=_("save the file again from the spreadsheet as CSV"),
        )
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, body = "utf-16", data
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            encoding, body = "cp1252", data
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InputError(
            _(
                "{path} line {line}: this is not text a spreadsheet saves (UTF-8 or Windows-1252)"
            ).format(path=path, line=line),
            hint=_("save the file again from the spreadsheet as CSV"),
        ) from None


def _separator(first_line: str) -> str:
    """The separator the header line uses: semicolon (French Excel), comma or tab."""
    counts = {sep: first_line.count(sep) for sep in (";", ",", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > counts[","] else ","


def read_csv(path: Path, home: Path) -> list[CameraRow]:
    """Parse a camera inventory as spreadsheets save it (comma or semicolon, UTF-8 or
    Windows-1252, English or French column names, lines starting with # skipped); one bad
    row rejects the file, naming its line and column."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INVENTORY_BYTES + 1)
    except FileNotFoundError as exc:
        raise InputError(_("no file {path}").format(path=path)) from exc
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {reason}").format(path=path, reason=os_error_text(exc))
        ) from exc
    if len(data) > MAX_INVENTORY_BYTES:
        raise InputError(
            _("{path} is larger than {limit} MB: not a camera inventory").format(
                path=path, limit=MAX_INVENTORY_BYTES >> 20
            )
        )
    if not data.strip():
        raise InputError(_("{path}: the file is empty").format(path=path))
    content = _decode(data, path)
    csv.field_size_limit(max(csv.field_size_limit(), len(content)))  # long cells: text rules say
    first = next((ln for ln in content.splitlines() if ln.strip() and not ln.startswith("#")), "")
    # newline="": the csv module splits lines itself (str.splitlines would also split
    # at \x1c-\x1e and U+2028, inside a field).
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=_separator(first))
    header: list[str] = []
    try:
        for row in reader:
            if row and not row[0].startswith("#") and any(cell.strip() for cell in row):
                header = row
                break
    except csv.Error:
        raise _broken_quotes(path, reader.line_num) from None
    head = reader.line_num or 1
    written = {}
    columns = []
    for cell in header:
        field = _COLUMNS.get(_normal(cell), cell.strip())
        if field in written:
            raise InputError(
                _("{path} line {line}: column {column} appears twice").format(
                    path=path, line=head, column=text.shown(cell.strip())
                )
            )
        written[field] = cell.strip()
        columns.append(field)
    missing = [c for c in REQUIRED if c not in written]
    if missing:
        raise InputError(
            _("{path} line {line}: missing column {column!r}").format(
                path=path, line=head, column=_column_name(missing[0], written)
            ),
            hint=_("the first line names the columns; 'scelle camera template' prints them"),
        )
    unknown = [c for c in columns if c not in _FIELDS]
    if unknown:
        raise InputError(
            _("{path} line {line}: unknown column {column}").format(
                path=path, line=head, column=text.shown(written[unknown[0]])
            ),
            hint=_("'scelle camera template' prints the columns scelle reads"),
        )
    cameras: list[CameraRow] = []
    seen: set[str] = set()
    created_at = utc_now()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            raise _broken_quotes(path, reader.line_num) from None
        line = reader.line_num
        if not row or row[0].startswith("#") or not any(cell.strip() for cell in row):
            continue  # a blank line (as DictReader skips it), a comment, an empty row
        if len(row) != len(columns):
            raise InputError(
                _("{path} line {line}: wrong number of fields").format(path=path, line=line),
                hint=_("{count} columns are named on line {head}, this line has {found}").format(
                    count=len(columns), head=head, found=len(row)
                ),
            )
        values: dict[str, Any] = {
            k: v for k, v in zip(columns, row, strict=True) if v != "" or k in REQUIRED
        }
        try:
            camera = CameraSpec(**values).row(home, created_at, names=written)
        except InputError as exc:
            raise InputError(
                _("{path} line {line}: {problem}").format(
                    path=path, line=line, problem=exc.message
                ),
                hint=exc.hint,
            ) from exc
        if camera["id"] in seen:
            raise InputError(
                _("{path} line {line}: camera {camera} appears twice").format(
                    path=path, line=line, camera=camera["id"]
                )
            )
        seen.add(camera["id"])
        cameras.append(camera)
    if not cameras:
        raise InputError(_("{path}: no camera in the file").format(path=path))
    return cameras


def _column_name(field: str, written: dict[str, str]) -> str:
    """How the user's file names (or would name) a column: French if its header is, or if
    the user reads French."""
    french = current() == "fr" or any(written.get(f) and written[f] != f for f in written)
    return FRENCH_COLUMNS[field] if french else field


def _broken_quotes(path: Path, line: int) -> InputError:
    return InputError(
        _("{path} line {line}: a quoted field is not closed").format(path=path, line=line),
        hint=_('each " that opens a field must close it'),
    )


def camera_template() -> str:
    """A camera inventory to fill in, in the user's language: the columns (French names
    and `;` under French, as French Excel writes them), one example camera, and comments a
    spreadsheet keeps as first lines; UTF-8 with its mark and CRLF, so that a double-click
    opens it right. `scelle camera import` reads it as it is."""
    french = current() == "fr"

    def column_name(field: str) -> str:
        return FRENCH_COLUMNS[field] if french else field

    names = [column_name(f) for f in _FIELDS]
    sep = ";" if french else ","
    example = {
        "id": "C-012",
        "name": _("Town hall square, north"),
        "location": _("Town hall square, facing the main door"),
        "commune": "Exempleville",
        "authorisation_ref": "AP-2025-118",
        "authorisation_expires": "31/12/2030" if french else "2030-12-31",
        **OPTIONAL,  # the defaults, shown
    }
    out = io.StringIO()
    out.write("\ufeff")  # UTF-8's mark: a spreadsheet opening the file reads accents right
    for comment in (
        _("Camera inventory for 'scelle camera import': one camera a line."),
        _("Required: {columns}.").format(columns=", ".join(names[: len(REQUIRED)])),
        _("Retention: 1 to 30 days (CSI L252-5). Dates: DD/MM/YYYY or YYYY-MM-DD."),
        _(
            "Store: scelle, frigate or template; a template store also takes {template} "
            "(e.g. {example}, see the README) and {clock} (utc or local)."
        ).format(
            template=column_name("store_template"),
            clock=column_name("store_time"),
            example=EXAMPLES["NAS"],
        ),
        _("Lines starting with # are ignored; replace the example camera with yours."),
    ):
        out.write(f"# {comment}\r\n")
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")
    writer.writerow(names)
    writer.writerow([example[f] for f in _FIELDS])
    return out.getvalue()


def import_csv(site: Site, path: Path, actor: str) -> list[str]:
    """Import a CSV inventory: every camera or none. Returns the ids imported."""
    rows = read_csv(path, site.settings.home)
    try:
        add_rows(site, rows, actor, _("imported from {file}").format(file=path.name))
    except InvalidStateError as exc:
        raise InvalidStateError(
            _("{path}: {problem}; nothing imported").format(path=path, problem=exc.message)
        ) from exc
    return [r["id"] for r in rows]


def scan_all(
    site: Site,
    cameras: Sequence[Camera],
    actor: str,
    progress: Callable[[Camera], None] | None = None,
) -> tuple[ScanReport, list[tuple[str, str]]]:
    """Index every camera whose store can be read, and name the others with why (a file
    where the store directory should be, a directory scelle may not read): one unusable
    store must not stop the night's scan of all the other cameras."""
    report = ScanReport()
    skipped: list[tuple[str, str]] = []
    with Recorder(site, actor, report) as recorder:
        for camera in cameras:
            problem = store_problem(Path(camera.store_path))
            if problem is None:
                try:
                    hashed = hash_new(site, camera, report)
                except OSError as exc:  # reading its store: nothing of it is recorded
                    where = f" ({exc.filename})" if exc.filename else ""
                    problem = _("store {store} cannot be read: {reason}").format(
                        store=camera.store_path, reason=f"{os_error_text(exc)}{where}"
                    )
                else:
                    recorder.add(hashed)
            if problem is not None:
                skipped.append((camera.id, problem))
            if progress:
                progress(camera)
    return report, skipped


def check_camera(site: Site, camera: Camera, hours: int, actor: str) -> StoreCheck:
    """Read what the camera's store holds as its layout reads it (exporters.store_check),
    and record the check: it opened the camera's footage files (headers only)."""
    if not 1 <= hours <= 24 * MAX_RETENTION_DAYS:
        raise InputError(
            _("--hours must be between 1 and {most}").format(most=24 * MAX_RETENTION_DAYS)
        )
    problem = store_problem(Path(camera.store_path))
    if problem is not None:
        raise EnvironmentProblemError(problem)
    try:
        check = check_store(camera, hours)
    except OSError as exc:
        raise EnvironmentProblemError(
            _("store {store} cannot be read: {reason}").format(
                store=camera.store_path, reason=os_error_text(exc)
            )
        ) from exc
    site.ledger.append(
        actor,
        Record(
            "camera.check",
            {"camera": camera.id},
            _("the camera's store read before relying on it"),
            data={
                "segments": check.segments,
                "bytes": check.bytes,
                "first": utc_text(check.first_us) if check.first_us is not None else None,
                "last": utc_text(check.last_us) if check.last_us is not None else None,
                "probed": len(check.read),
                "gaps": len(check.gaps),
                "unreadable": len(check.unreadable),
                "unplaced": len(check.unplaced),
                "other_files": check.others,
            },
        ),
    )
    return check


def _recorded(cur: Cursor, camera_id: str | None = None) -> dict[str, dict[str, Any]]:
    """What each camera's `camera.add` entry recorded (its bytes are proven by
    `ledger verify`; here they are only read)."""
    where, params = "a.action = 'camera.add'", []
    if camera_id is not None:
        where += " AND c.camera = ?"
        params.append(camera_id)
    cur.execute(
        "SELECT c.camera, e.body FROM ledger_audit_camera c JOIN ledger_audit a ON a.seq = c.seq "
        f"JOIN ledger_entry e ON e.seq = a.seq WHERE {where} ORDER BY a.seq",
        params,
    )
    found: dict[str, dict[str, Any]] = {}
    for named, body in cur.fetchall():
        data = json.loads(bytes(body)).get("data")
        if isinstance(data, dict) and data.get("id") == named:
            found[named] = data
    return found


def _vouched(camera: Camera, recorded: dict[str, dict[str, Any]]) -> Camera:
    """The camera, if its register row is what its ledger entry recorded: a row planted
    or edited around scelle (another store, another authorisation) is never used."""
    data = recorded.get(camera.id)
    if data is None:
        raise IntegrityError(
            _(
                "camera {camera} is in the register but no camera.add entry of the ledger put "
                "it there: a row planted around scelle"
            ).format(camera=camera.id),
            hint=_("the database owner removes it; run 'scelle ledger verify'"),
        )
    row = {k: v for k, v in camera.row().items() if k != "created_at"}
    differs = sorted(k for k in row if row[k] != data.get(k, ADDED_LATER.get(k)))
    if differs:
        raise IntegrityError(
            _(
                "camera {camera}: its register row differs from its camera.add ledger entry "
                "({fields}): edited around scelle"
            ).format(camera=camera.id, fields=", ".join(differs)),
            hint=_("the database owner restores it; run 'scelle ledger verify'"),
        )
    return camera


def list_cameras(site: Site, problems: list[str] | None = None) -> list[Camera]:
    """The register: cameras whose row is what their camera.add entry recorded. A row
    planted or edited around scelle is left out, and said in `problems`."""
    with site.db.read() as cur:
        cur.execute(f"SELECT {', '.join(CAMERA_COLUMNS)} FROM camera ORDER BY id")
        cameras = [camera_of(row) for row in cur.fetchall()]
        recorded = _recorded(cur)
    vouched = []
    for camera in cameras:
        try:
            vouched.append(_vouched(camera, recorded))
        except IntegrityError as exc:
            if problems is not None:
                problems.append(exc.message)
    return vouched


def get_camera(site: Site, camera_id: str) -> Camera:
    check_token(camera_id, _("camera id"))
    with site.db.read() as cur:
        cur.execute(f"SELECT {', '.join(CAMERA_COLUMNS)} FROM camera WHERE id = ?", [camera_id])
        row = cur.fetchone()
        if row is not None:
            return _vouched(camera_of(row), _recorded(cur, camera_id))
        known = [k for (k,) in cur.execute("SELECT id FROM camera").fetchall()]
    close = difflib.get_close_matches(camera_id.upper(), [k.upper() for k in known], n=3)
    near = [k for k in known if k.upper() in close]
    raise InputError(
        _("unknown camera {camera!r}").format(camera=camera_id),
        hint=_("did you mean {names}? 'scelle camera list' shows every camera").format(
            names=", ".join(near)
        )
        if near
        else _("see 'scelle camera list'"),
    )
