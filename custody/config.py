"""One typed configuration object, with a fixed precedence and a record of who won.

Precedence: command-line flag > `SCELLE_*` environment variable > `scelle.toml` in the
site directory > default. `SCELLE_HOME` (or `--home`) selects the site directory; it
cannot come from the file that lives inside it. Passphrases are never configuration:
they come from `SCELLE_PASSPHRASE_FILE`, `SCELLE_PASSPHRASE` or a prompt (cli.py).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from custody.errors import InputError, SiteError
from custody.i18n import _, os_error_text

CONFIG_FILE = "scelle.toml"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    site_name: str
    key_file: Path
    checkpoint_file: Path
    timezone: str
    max_window_hours: int
    csv_name: str  # printed on every document
    csv_authorisation: str  # the prefectoral authorisation of the system
    csv_commune: str  # where the papers are made: "Fait à <commune>, le ..."
    register_article: str  # décret 2023-1102 renumbered R252-11: keep it configurable
    language: str = "en"  # what people read: SCELLE_LANG, `language`, the locale
    # C2SP tlog-policy file naming the witnesses that cosign this site's checkpoints and
    # their quorum (custody/policy.py); None: no witness, and no network access for it.
    witness_policy: Path | None = None
    # RFC 3161 timestamping authority (custody/timestamps.py) and the CA certifying it;
    # None: no timestamp, and no network access for it.
    timestamp_url: str | None = None
    timestamp_ca: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def public_key_file(self) -> Path:
        """The public half, beside the key file, readable without a passphrase."""
        return self.key_file.with_name(self.key_file.stem + ".pub.pem")

    @property
    def document_key_file(self) -> Path:
        """The PDF-signing key (ECDSA P-256 and its certificate), encrypted, beside the site
        key: readers of legal PDFs check ECDSA, not Ed25519 (custody/pdfsign.py)."""
        return self.key_file.with_name("documents.p12")

    @property
    def document_cert_file(self) -> Path:
        """The PDF-signing certificate alone, in PEM, readable without a passphrase."""
        return self.key_file.with_name("documents.crt.pem")

    @property
    def key_agent_socket(self) -> Path:
        """Where `scelle keys agent` answers (custody/key_agent.py)."""
        return self.home / "key-agent.sock"

    @property
    def origin(self) -> str:
        """The checkpoint origin line of this site's ledger."""
        return f"{self.site_name}/ledger"

    def as_recorded(self, site_name: str) -> Settings:
        """These settings with the site's name as ledger entry 0 records it. The name is
        fixed at init (the key's name, every checkpoint's origin): a value configured
        since changes nothing, and `config show` must not claim it does."""
        source = "ledger entry 0, set at init"
        if site_name != self.site_name and "site_name" in self.sources:
            source += f"; {self.sources['site_name']} says {self.site_name!r}, ignored"
        sources = {**self.sources, "site_name": source}
        return dataclasses.replace(self, site_name=site_name, sources=sources)

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for `scelle config show`."""
        names = ["home", "database_url", "site_name", "key_file", "checkpoint_file"]
        names += ["timezone", "max_window_hours", "csv_name", "csv_authorisation"]
        names += ["csv_commune", "register_article", "language", "witness_policy"]
        names += ["timestamp_url", "timestamp_ca"]
        return [(n, self._shown(n), self.sources.get(n, "default")) for n in names]

    def _shown(self, name: str) -> str:
        if getattr(self, name) is None:
            return "-"
        value = str(getattr(self, name))
        if name == "database_url":  # never print a password
            from custody.db import hide_password

            return hide_password(value)
        return value


def check_database_url(url: str, what: str = "database_url") -> str:
    """Refuse a URL whose password holds an unencoded '@' or '/': libpq then reads part
    of the password as the host and prints it in its error ("failed to resolve host
    'ss@db'"), and SQLAlchemy splits it elsewhere. The message never shows the password."""
    from custody.db import hide_password

    _scheme, sep, rest = url.partition("://")
    user, colon, after = (rest if sep else url).partition(":")
    secret = after.rpartition("@")[0]
    port = re.match(r"[0-9]*/", secret)  # host:5432/db?sslcert=/a@b: no password there
    if colon and not port and not any(c in user for c in "/?#@") and any(c in secret for c in "@/"):
        raise InputError(
            _("{what} {url}: the password holds an unencoded '@' or '/'").format(
                what=what, url=hide_password(url)
            ),
            hint=_("percent-encode them in the URL: '@' as %40, '/' as %2F"),
        )
    return url


def _default_home() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "scelle"


def _default_site_name() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
    return f"scelle.{host}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InputError(toml_error(path, exc)) from exc
    except UnicodeDecodeError as exc:  # saved as Windows-1252 ("ANSI" in Notepad)
        raise InputError(
            _("{path} is not UTF-8 text").format(path=path),
            hint=_("save it again as UTF-8 (in Notepad: Save as, Encoding: UTF-8)"),
        ) from exc
    except OSError as exc:
        raise SiteError(
            _("cannot read {path}: {reason}").format(path=path, reason=os_error_text(exc))
        ) from exc


def toml_error(path: Path | str, exc: tomllib.TOMLDecodeError) -> str:
    """Where a TOML file stops being TOML, in our words (tomllib's speak of its grammar)."""
    where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    if where:
        return _("{path}: not valid TOML (line {line}, column {column})").format(
            path=path, line=where[1], column=where[2]
        )
    if "(at end of document)" in str(exc):
        return _("{path}: not valid TOML (at the end of the file)").format(path=path)
    return _("{path}: not valid TOML").format(path=path)


def site_home(flag: str | None, env: Mapping[str, str]) -> tuple[Path, str | None]:
    """The site directory (--home, then SCELLE_HOME, then the default) and which of them
    said it (None: the default)."""
    if flag:
        home, source = Path(flag), "flag --home"
    elif env.get("SCELLE_HOME"):
        home, source = Path(env["SCELLE_HOME"]), "env SCELLE_HOME"
    else:
        home, source = _default_home(), None
    return home.expanduser().absolute(), source


def configured_language(home_flag: str | None) -> str | None:
    """The site's `language` setting, read before anything else is said (the CLI chooses
    its language with it); None when the file or the setting is missing or unreadable
    (load_settings reports a broken file, in that language)."""
    home, _source = site_home(home_flag, os.environ)
    try:
        with (home / CONFIG_FILE).open("rb") as handle:
            value = tomllib.load(handle).get("language")
    except (OSError, ValueError):  # TOMLDecodeError, UnicodeDecodeError: said later
        return None
    return value if isinstance(value, str) else None


def _language(
    toml: Mapping[str, Any], env: Mapping[str, str], sources: dict[str, str], file: Path
) -> str:
    from custody.i18n import choose

    configured = toml.get("language")
    if configured is not None and not isinstance(configured, str):
        raise InputError(_("{file}: language must be a string: fr or en").format(file=file))
    if env.get("SCELLE_LANG"):
        sources["language"] = "env SCELLE_LANG"
    elif configured:
        sources["language"] = f"file {file}"
    else:
        sources["language"] = "locale"
    return choose(configured, env)


def load_settings(
    flags: Mapping[str, str | None] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting from flags, environment, `scelle.toml` and defaults."""
    given: dict[str, str] = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}

    home, source = site_home(given.get("home"), env)
    if source:
        sources["home"] = source
    if env.get("SCELLE_AGENT"):
        # Earlier versions let this name the acting agent; now the login does, and a
        # variable that silently stopped mattering would mislead the person who set it.
        raise InputError(
            _("SCELLE_AGENT is no longer read: the acting agent is your authenticated login"),
            hint=_("unset SCELLE_AGENT; see 'scelle agent list'"),
        )
    toml = _read_toml(home / CONFIG_FILE)
    known = {
        "database_url",
        "site_name",
        "key_file",
        "checkpoint_file",
        "timezone",
        "max_window_hours",
        "csv_name",
        "csv_authorisation",
        "csv_commune",
        "register_article",
        "language",
        "witness_policy",
        "timestamp_url",
        "timestamp_ca",
    }
    unknown = sorted(set(toml) - known)
    if unknown:
        raise InputError(
            _("{file}: unknown setting {name!r}").format(file=home / CONFIG_FILE, name=unknown[0])
        )

    def pick(name: str, default: Callable[[], str]) -> str:
        var = "SCELLE_" + name.upper()
        if name in given:
            sources[name] = f"flag --{name.replace('_', '-')}"
            return given[name]
        if env.get(var):
            sources[name] = f"env {var}"
            return env[var]
        if name in toml:
            if not isinstance(toml[name], (str, int)) or isinstance(toml[name], bool):
                raise InputError(
                    _("{file}: {name} must be a string or a number").format(
                        file=home / CONFIG_FILE, name=name
                    )
                )
            sources[name] = f"file {home / CONFIG_FILE}"
            return str(toml[name])
        return default()

    def path(name: str, default: str) -> Path:
        p = Path(pick(name, lambda: default)).expanduser()
        return p if p.is_absolute() else home / p

    timezone = pick("timezone", lambda: "Europe/Paris")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(_("unknown time zone {zone!r}").format(zone=timezone)) from exc
    max_text = pick("max_window_hours", lambda: "24")
    if not (max_text.isascii() and max_text.isdigit()) or not 1 <= int(max_text) <= 24 * 31:
        raise InputError(
            _("max_window_hours must be a whole number of hours, not {value!r}").format(
                value=max_text
            )
        )
    tsa_url = pick("timestamp_url", lambda: "").strip() or None
    if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
        raise InputError(_("timestamp_url must start with http:// or https://"))
    tsa_ca = pick("timestamp_ca", lambda: "").strip()
    if (tsa_url is None) != (not tsa_ca):
        raise InputError(_("timestamp_url and timestamp_ca are set together: the TSA and its CA"))
    timestamp_ca = None
    if tsa_ca:
        timestamp_ca = Path(tsa_ca).expanduser()
        timestamp_ca = timestamp_ca if timestamp_ca.is_absolute() else home / timestamp_ca
    policy = pick("witness_policy", lambda: "")
    witness_policy = None
    if policy.strip():
        witness_policy = Path(policy).expanduser()
        witness_policy = witness_policy if witness_policy.is_absolute() else home / witness_policy
    return Settings(
        home=home,
        database_url=check_database_url(
            pick("database_url", lambda: f"sqlite:///{home / 'scelle.db'}")
        ),
        site_name=pick("site_name", _default_site_name),
        key_file=path("key_file", "keys/site.p12"),
        checkpoint_file=path("checkpoint_file", "checkpoints.txt"),
        timezone=timezone,
        max_window_hours=int(max_text),
        csv_name=pick("csv_name", lambda: "Centre de supervision vidéo"),
        csv_authorisation=pick(
            "csv_authorisation",
            lambda: "arrêté préfectoral non renseigné (réglage csv_authorisation)",
        ),
        csv_commune=pick("csv_commune", lambda: ""),
        register_article=pick("register_article", lambda: "art. R252-11 CSI"),
        language=_language(toml, env, sources, home / CONFIG_FILE),
        witness_policy=witness_policy,
        timestamp_url=tsa_url,
        timestamp_ca=timestamp_ca,
        sources=sources,
    )
