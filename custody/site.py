"""A site: its directory, database, signing key, ledger and checkpoint file.

`init_site` creates all of them or, if anything fails (Ctrl-C included), removes what it
created: a site is complete or absent. Keys, signatures and checkpoints load when a
command uses them: a command that only reads the database never imports them.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from custody.config import Settings
from custody.db import Database
from custody.entry import Record
from custody.errors import InvalidStateError, ScelleError, SiteError
from custody.files import write_atomic
from custody.i18n import _, os_error_text
from custody.ledger import Ledger

if TYPE_CHECKING:
    from custody import checkpoints
    from custody.keys import Signer
    from custody.note import Checkpoint


@dataclass(frozen=True)
class Site:
    """An opened site: settings plus its database."""

    settings: Settings
    db: Database

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.db)

    @cached_property
    def login(self) -> str:
        """The authenticated login acting on this site (see Database.login)."""
        return self.db.login()

    def identity(self) -> checkpoints.Identity:
        """Who signs this site's log, as its ledger entry 0 records it (not as configured)."""
        from custody.checkpoints import read_identity

        with self.db.read() as cur:
            return read_identity(cur)

    @cached_property
    def unlocked(self) -> list[Signer]:
        """The site key, once this process has unlocked it (a command that signs): the
        entries it appends are then covered with it, without the key agent."""
        return []

    def signer(self, passphrase: bytes) -> Signer:
        from custody.keys import load_signer

        signer = load_signer(self.settings.key_file, passphrase)
        self.unlocked[:] = [signer]
        return signer

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Site:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_site(settings: Settings, require: Callable[[Database], None]) -> Site:
    """Open an initialised site; SiteError/DatabaseError if it is absent or unusable
    (`require` refuses a schema this scelle does not speak: the caller knows which)."""
    db = Database(settings.database_url)
    try:
        require(db)
    except BaseException:
        db.dispose()
        raise
    return Site(settings, db)


def recorded_site_name(settings: Settings) -> str | None:
    """The site's name as its ledger entry 0 records it, or None if there is no site (or
    its database cannot be read now): what `config show` reports once a site exists."""
    from custody.checkpoints import read_identity

    url = settings.database_url
    if not url.startswith("sqlite"):  # a server that does not answer must not hang us
        url += ("&" if "?" in url else "?") + "connect_timeout=5"
    try:
        db = Database(url)
    except ScelleError:
        return None
    try:
        with db.read() as cur:
            return read_identity(cur).key_name
    except ScelleError:
        return None
    finally:
        db.dispose()


def init_site(
    settings: Settings,
    passphrase: bytes,
    upgrade: Callable[[Database], object],
    then: Callable[[Site], object] | None = None,
) -> tuple[Site, Checkpoint]:
    """Create the site: database, keys, genesis entry and first checkpoint; `then` runs
    on the new site before it counts as created (the first administrator is designated
    there), so that a failure anywhere leaves no half site. The PDF-signing certificate
    is made here too (O = `csv_name`, the centre named on every document) and recorded
    right after the genesis entry, in the same transaction."""
    from custody import checkpoints, schema
    from custody.document_key import create_document_key, document_key_record
    from custody.keys import (
        create_key,
        der_sha256,
        public_pem,
        public_raw,
        ssh_fingerprint,
    )
    from custody.note import check_key_name, verifier_key

    check_key_name(settings.site_name)
    check_key_name(settings.origin)
    home = settings.home
    targets = [settings.key_file, settings.public_key_file, settings.checkpoint_file]
    targets += [settings.document_key_file, settings.document_cert_file]
    db = Database(settings.database_url, create=True)
    if db.path is not None:
        targets.append(db.path)
    existing = [p for p in targets if p.exists()]
    if existing:
        db.dispose()
        raise InvalidStateError(
            _("a site already exists here ({path})").format(path=existing[0]),
            hint=_("choose another SCELLE_HOME"),
        )
    if db.path is None and schema.version(db) > 0:
        db.dispose()
        raise InvalidStateError(
            _("this database already holds a scelle site"),
            hint=_("on another workstation, copy the site directory instead of running init"),
        )
    created_home = not home.exists()
    made: list[Path] = []
    try:
        try:
            home.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise SiteError(
                _("cannot create {path}: {reason}").format(path=home, reason=os_error_text(exc))
            ) from exc
        made += [p for p in targets] + [Path(f"{db.path}-wal"), Path(f"{db.path}-shm")]
        upgrade(db)
        signer = create_key(settings.key_file, passphrase, settings.site_name)
        write_atomic(settings.public_key_file, public_pem(signer.public_key).encode())
        key = signer.public_key
        documents = create_document_key(settings, passphrase, settings.csv_name)
        genesis = Record(
            action="site.init",
            subject=settings.site_name,
            reason=_("site initialised"),
            data={
                "key_name": settings.site_name,
                "origin": settings.origin,
                "public_key": base64.b64encode(public_raw(key)).decode(),
                "verifier_key": verifier_key(settings.site_name, key),
                "ssh_fingerprint": ssh_fingerprint(key),
                "der_sha256": der_sha256(key),
            },
        )
        Ledger(db).append_many(db.login(), [genesis, document_key_record(settings, documents)])
        if then is not None:
            then(Site(settings, db))
        checkpoint, _note = checkpoints.sign(db, settings.checkpoint_file, signer)
    except BaseException:
        db.dispose()
        if created_home:
            shutil.rmtree(home, ignore_errors=True)
        else:
            for path in made:
                path.unlink(missing_ok=True)
        raise
    return Site(settings, db), checkpoint
